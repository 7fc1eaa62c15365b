#include "tsdb/promql_queryable.h"

#include <optional>
#include <string_view>

namespace llmscope::tsdb {

namespace {

// The equality matcher on __name__ that selects through the store's name index, if any (the
// last one: every matcher must hold, so any of them would do).
const promql::LabelMatcher* IndexedMatcher(const std::vector<promql::LabelMatcher>& matchers) {
  const promql::LabelMatcher* found = nullptr;
  for (const auto& m : matchers) {
    if (m.type() == promql::MatchType::kEqual && m.name() == kMetricNameLabel) found = &m;
  }
  return found;
}

std::optional<std::string_view> NameOf(const promql::LabelMatcher* m) {
  if (m == nullptr) return std::nullopt;
  return std::string_view(m->value());
}

// Every matcher but the one the index answers already (`indexed`: the __name__ equality
// matcher that selected through the name index, or null).
SeriesFilter MatcherFilter(const std::vector<promql::LabelMatcher>& matchers,
                           const promql::LabelMatcher* indexed) {
  std::vector<const promql::LabelMatcher*> rest;
  for (const auto& m : matchers) {
    if (&m != indexed) rest.push_back(&m);
  }
  if (rest.empty()) return {};
  return [rest = std::move(rest)](const Labels& labels) {
    for (const promql::LabelMatcher* m : rest) {
      if (!m->Matches(GetLabel(labels, m->name()))) return false;
    }
    return true;
  };
}

promql::Labels ToPromql(Labels labels) {
  // Both sides keep labels sorted by name with unique names: the order carries over.
  return promql::Labels::FromSorted(std::move(labels));
}

}  // namespace

core::Result<std::vector<promql::Labels>> DbQueryable::SelectSeries(
    const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms, int64_t max_ms) const {
  const promql::LabelMatcher* indexed = IndexedMatcher(matchers);
  std::vector<promql::Labels> out;
  for (auto& l : db_.Series(NameOf(indexed), MatcherFilter(matchers, indexed), min_ms, max_ms)) {
    out.push_back(ToPromql(std::move(l)));
  }
  return out;
}

core::Result<std::vector<promql::Series>> DbQueryable::Select(
    const std::vector<promql::LabelMatcher>& matchers, int64_t min_ms, int64_t max_ms) const {
  const promql::LabelMatcher* indexed = IndexedMatcher(matchers);
  ChunkSelection sel =
      db_.SelectChunks(NameOf(indexed), MatcherFilter(matchers, indexed), min_ms, max_ms);
  // Samples are decoded straight into the engine's points, and label sets are shared with
  // the store rather than copied.
  std::vector<promql::Series> out;
  out.reserve(sel.size());
  promql::Series series;
  for (size_t i = 0; i < sel.size(); ++i) {
    series.points.reserve(sel.EstimateSamples(i));
    if (!sel.Decode(i, &series.points)) {
      return core::Internal("malformed chunk in series " + LabelsToString(*sel.labels(i)));
    }
    if (series.points.empty()) continue;  // chunks overlap the range, no sample falls in it
    series.labels = promql::Labels::FromShared(sel.TakeLabels(i));
    out.push_back(std::move(series));
    series = promql::Series();
  }
  return out;
}

namespace {

// A selection and a sample buffer per thread, reused by SelectEach from query to query: the
// rule engine makes several selections per rule every evaluation, and each would otherwise
// allocate its buffers anew. Released after a query that grew them past kKeepBytes, so one
// large query does not pin its memory to the thread.
struct Scratch {
  static constexpr size_t kKeepBytes = size_t{4} << 20;
  ChunkSelection sel;
  std::vector<promql::Point> points;
  bool busy = false;  // a SelectEach on this thread is using it (fn may select again)
};

}  // namespace

core::Status DbQueryable::SelectEach(const std::vector<promql::LabelMatcher>& matchers,
                                     int64_t min_ms, int64_t max_ms, const SeriesFn& fn) const {
  thread_local Scratch scratch;
  Scratch local;
  Scratch& s = scratch.busy ? local : scratch;
  s.busy = true;
  struct Done {
    Scratch& s;
    ~Done() {
      s.sel.Clear();  // drop the references to chunks and labels now, not at the next query
      if (s.sel.BufferBytes() + s.points.capacity() * sizeof(promql::Point) > Scratch::kKeepBytes) {
        s.sel = ChunkSelection();
        s.points = std::vector<promql::Point>();
      }
      s.busy = false;
    }
  } done{s};
  const promql::LabelMatcher* indexed = IndexedMatcher(matchers);
  db_.SelectChunksInto(NameOf(indexed), MatcherFilter(matchers, indexed), min_ms, max_ms, &s.sel);
  for (size_t i = 0; i < s.sel.size(); ++i) {
    s.points.clear();
    if (!s.sel.Decode(i, &s.points)) {
      return core::Internal("malformed chunk in series " + LabelsToString(*s.sel.labels(i)));
    }
    if (s.points.empty()) continue;  // as Select: no sample in the range
    if (!fn(promql::Labels::FromShared(s.sel.TakeLabels(i)), &s.points)) break;
  }
  return core::Status::Ok();
}

}  // namespace llmscope::tsdb
