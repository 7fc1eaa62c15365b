#pragma once

#include "metrics/snapshot.h"
#include "tsdb/db.h"

namespace llmscope::tsdb {

// Thread-safety: Collect may run concurrently (Db's accessors are thread-safe).
//
// The store's own health as metrics, computed at scrape time from Db::stats(),
// memory_usage() and blocks():
//   llmscope_tsdb_series                       gauge    series in memory
//   llmscope_tsdb_memory_bytes{part}           gauge    chunks | chunk_overhead | series
//   llmscope_tsdb_samples_appended_total       counter
//   llmscope_tsdb_samples_rejected_total{reason}  counter  out_of_order | duplicate |
//                                                  series_limit | invalid | too_old
//   llmscope_tsdb_blocks                       gauge    block files in use
//   llmscope_tsdb_corrupt_blocks_total         counter  block files that could not be used
//   llmscope_tsdb_block_write_errors_total     counter
class DbCollector final : public metrics::Collector {
 public:
  // `db` is borrowed and must outlive the collector's registry use.
  explicit DbCollector(const Db& db) : db_(db) {}
  void Collect(std::vector<metrics::FamilySnapshot>& out) const override;

 private:
  const Db& db_;
};

}  // namespace llmscope::tsdb
