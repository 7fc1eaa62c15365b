#pragma once

#include <vector>

#include "promql/queryable.h"
#include "tsdb/db.h"

namespace llmscope::tsdb {

// Thread-safety: as Db::Select: any number of concurrent Select calls, also while the
// scraper appends.
//
// The PromQL engine's view of the store: promql::Queryable over a Db. An equality matcher on
// __name__ selects through the store's metric-name index; every matcher is then applied to
// each series' labels (an absent label matches as "", as Prometheus defines). Stale markers
// pass through, so the engine ends series exactly as Prometheus does.
class DbQueryable final : public promql::Queryable {
 public:
  // `db` is borrowed and must outlive this object.
  explicit DbQueryable(const Db& db) : db_(db) {}

  core::Result<std::vector<promql::Series>> Select(
      const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms,
      int64_t max_ms) const override;
  // Decodes the selected series one by one into one reused buffer.
  core::Status SelectEach(const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms,
                          int64_t max_ms, const SeriesFn& fn) const override;
  // Through the store's index, without decoding samples: a series counts when one of its
  // chunks overlaps the range (Db::Series).
  core::Result<std::vector<promql::Labels>> SelectSeries(
      const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms,
      int64_t max_ms) const override;

 private:
  const Db& db_;
};

}  // namespace llmscope::tsdb
