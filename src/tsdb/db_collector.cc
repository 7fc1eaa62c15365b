#include "tsdb/db_collector.h"

#include <string>
#include <utility>

namespace llmscope::tsdb {

void DbCollector::Collect(std::vector<metrics::FamilySnapshot>& out) const {
  using metrics::MetricType;
  const DbStats s = db_.stats();
  const MemoryUsage m = db_.memory_usage();
  auto d = [](uint64_t v) { return static_cast<double>(v); };
  metrics::AppendSingleValueFamily(out, "llmscope_tsdb_series",
                                   "Series in the embedded time-series store.", MetricType::kGauge,
                                   d(s.series));
  metrics::FamilySnapshot mem{"llmscope_tsdb_memory_bytes",
                              "Estimated heap of the time-series store, by part.",
                              MetricType::kGauge,
                              {}};
  for (auto [part, v] :
       {std::pair{"chunks", m.chunk_bytes}, std::pair{"chunk_overhead", m.chunk_overhead_bytes},
        std::pair{"series", m.series_overhead_bytes},
        std::pair{"open_chunk_cache", m.open_cache_bytes}}) {
    mem.samples.push_back({"", {{"part", part}}, d(v), std::nullopt});
  }
  out.push_back(std::move(mem));
  metrics::AppendSingleValueFamily(out, "llmscope_tsdb_samples_appended",
                                   "Samples stored in the time-series store.", MetricType::kCounter,
                                   d(s.samples_appended));
  metrics::FamilySnapshot rejected{"llmscope_tsdb_samples_rejected",
                                   "Samples the time-series store refused, by reason.",
                                   MetricType::kCounter,
                                   {}};
  for (auto [reason, v] :
       {std::pair{"out_of_order", s.out_of_order}, std::pair{"duplicate", s.duplicate},
        std::pair{"series_limit", s.series_limit_rejected}, std::pair{"invalid", s.invalid},
        std::pair{"too_old", s.too_old}}) {
    rejected.samples.push_back({"", {{"reason", reason}}, d(v), std::nullopt});
  }
  out.push_back(std::move(rejected));
  metrics::AppendSingleValueFamily(out, "llmscope_tsdb_blocks",
                                   "Block files of the time-series store in use.",
                                   MetricType::kGauge, d(db_.blocks().size()));
  metrics::AppendSingleValueFamily(out, "llmscope_tsdb_corrupt_blocks",
                                   "Block files of the time-series store that could not be used.",
                                   MetricType::kCounter, d(s.corrupt_blocks));
  metrics::AppendSingleValueFamily(out, "llmscope_tsdb_block_write_errors",
                                   "Failed writes of time-series block files.",
                                   MetricType::kCounter, d(s.block_write_errors));
}

}  // namespace llmscope::tsdb
