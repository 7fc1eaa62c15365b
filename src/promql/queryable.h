#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "promql/labels.h"
#include "promql/value.h"

namespace llmscope::promql {

// The engine's only view of stored data: the seam the TSDB is adapted to.
// Thread-safety: implementations must allow concurrent Select calls.
class Queryable {
 public:
  virtual ~Queryable() = default;

  // Every series whose labels satisfy all `matchers`, each with its samples in
  // [min_ms, max_ms] (inclusive, sorted by time, stale markers included as StaleNaN()).
  // Series without samples in the range may be left out. An error fails the query.
  virtual core::Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers,
                                                   int64_t min_ms, int64_t max_ms) const = 0;

  // Select, one series at a time: calls `fn(labels, points)` for each series Select would
  // return, in the same order, with the same samples. `points` is only valid during the call
  // and `fn` may modify it (an implementation may reuse one buffer for every series). `fn`
  // returns false to stop early. The default runs Select; an implementation that can decode
  // series one by one overrides it to spare a sample vector per series.
  using SeriesFn = std::function<bool(const Labels& labels, std::vector<Point>* points)>;
  virtual core::Status SelectEach(const std::vector<LabelMatcher>& matchers, int64_t min_ms,
                                  int64_t max_ms, const SeriesFn& fn) const;

  // The label sets of the series matching all `matchers` with data in [min_ms, max_ms],
  // without their samples (the series and label APIs). An implementation may decide "data
  // in the range" at a coarser grain, such as whole chunks, as Prometheus does. The default
  // runs Select and keeps the series with a sample other than a stale marker.
  virtual core::Result<std::vector<Labels>> SelectSeries(const std::vector<LabelMatcher>& matchers,
                                                         int64_t min_ms, int64_t max_ms) const;
};

// An in-memory Queryable for tests, the promqltest runner and small embedded uses.
// Samples are kept sorted per series; an equality matcher on __name__ uses an index.
// Thread-safety: all methods may be called concurrently (one mutex).
class MemoryStorage : public Queryable {
 public:
  // Appends a sample; a sample at an existing timestamp replaces the old one.
  void Add(const Labels& labels, int64_t t_ms, double v);
  // Removes every series.
  void Clear();
  size_t NumSeries() const;

  core::Result<std::vector<Series>> Select(const std::vector<LabelMatcher>& matchers,
                                           int64_t min_ms, int64_t max_ms) const override;

 private:
  mutable std::mutex mu_;
  std::vector<Series> series_;                                    // GUARDED_BY(mu_)
  std::unordered_map<Labels, size_t, LabelsHash> index_;          // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<size_t>> by_name_;  // GUARDED_BY(mu_)
};

}  // namespace llmscope::promql
