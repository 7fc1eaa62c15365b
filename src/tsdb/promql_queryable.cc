#include "tsdb/promql_queryable.h"

#include <optional>
#include <string_view>

namespace llmscope::tsdb {

core::Result<std::vector<promql::Series>> DbQueryable::Select(
    const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms, int64_t max_ms) const {
  std::optional<std::string_view> name;
  for (const auto& m : matchers) {
    if (m.type() == promql::MatchType::kEqual && m.name() == "__name__") name = m.value();
  }
  auto filter = [&matchers](const Labels& labels) {
    for (const auto& m : matchers) {
      if (!m.Matches(GetLabel(labels, m.name()))) return false;
    }
    return true;
  };
  auto found = db_.Select(name, filter, min_ms, max_ms);
  if (!found.ok()) return found.status();
  std::vector<promql::Series> out;
  out.reserve(found->size());
  for (auto& s : *found) {
    std::vector<promql::Label> labels;
    labels.reserve(s.labels.size());
    // Both sides keep labels sorted by name with unique names: the order carries over.
    for (auto& l : s.labels) labels.push_back({std::move(l.name), std::move(l.value)});
    promql::Series series;
    series.labels = promql::Labels::FromSorted(std::move(labels));
    series.points.reserve(s.samples.size());
    for (const auto& p : s.samples) series.points.push_back({p.t_ms, p.v});
    out.push_back(std::move(series));
  }
  return out;
}

}  // namespace llmscope::tsdb
