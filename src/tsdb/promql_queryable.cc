#include "tsdb/promql_queryable.h"

#include <optional>
#include <string_view>

namespace llmscope::tsdb {

namespace {

// The metric name an equality matcher fixes (the store's index), if any.
std::optional<std::string_view> IndexedName(const std::vector<promql::LabelMatcher>& matchers) {
  std::optional<std::string_view> name;
  for (const auto& m : matchers) {
    if (m.type() == promql::MatchType::kEqual && m.name() == "__name__") name = m.value();
  }
  return name;
}

SeriesFilter MatcherFilter(const std::vector<promql::LabelMatcher>& matchers) {
  return [&matchers](const Labels& labels) {
    for (const auto& m : matchers) {
      if (!m.Matches(GetLabel(labels, m.name()))) return false;
    }
    return true;
  };
}

promql::Labels ToPromql(Labels labels) {
  std::vector<promql::Label> out;
  out.reserve(labels.size());
  // Both sides keep labels sorted by name with unique names: the order carries over.
  for (auto& l : labels) out.push_back({std::move(l.name), std::move(l.value)});
  return promql::Labels::FromSorted(std::move(out));
}

}  // namespace

core::Result<std::vector<promql::Labels>> DbQueryable::SelectSeries(
    const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms, int64_t max_ms) const {
  std::vector<promql::Labels> out;
  for (auto& l : db_.Series(IndexedName(matchers), MatcherFilter(matchers), min_ms, max_ms)) {
    out.push_back(ToPromql(std::move(l)));
  }
  return out;
}

core::Result<std::vector<promql::Series>> DbQueryable::Select(
    const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms, int64_t max_ms) const {
  auto found = db_.Select(IndexedName(matchers), MatcherFilter(matchers), min_ms, max_ms);
  if (!found.ok()) return found.status();
  std::vector<promql::Series> out;
  out.reserve(found->size());
  for (auto& s : *found) {
    promql::Series series;
    series.labels = ToPromql(std::move(s.labels));
    series.points.reserve(s.samples.size());
    for (const auto& p : s.samples) series.points.push_back({p.t_ms, p.v});
    out.push_back(std::move(series));
  }
  return out;
}

}  // namespace llmscope::tsdb
