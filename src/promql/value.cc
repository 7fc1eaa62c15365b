#include "promql/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "promql/queryable.h"

namespace llmscope::promql {

const char* ValueTypeName(const Value& v) {
  switch (v.index()) {
    case 0:
      return "scalar";
    case 1:
      return "string";
    case 2:
      return "vector";
    default:
      return "matrix";
  }
}

std::string FormatFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

core::Status Queryable::SelectEach(const std::vector<LabelMatcher>& matchers, int64_t min_ms,
                                   int64_t max_ms, const SeriesFn& fn) const {
  auto series = Select(matchers, min_ms, max_ms);
  if (!series.ok()) return series.status();
  for (auto& s : *series) {
    if (!fn(s.labels, &s.points)) break;
  }
  return core::Status::Ok();
}

core::Result<std::vector<Labels>> Queryable::SelectSeries(const std::vector<LabelMatcher>& matchers,
                                                          int64_t min_ms, int64_t max_ms) const {
  auto series = Select(matchers, min_ms, max_ms);
  if (!series.ok()) return series.status();
  std::vector<Labels> out;
  for (auto& s : *series) {
    for (const auto& p : s.points) {
      if (!IsStaleNaN(p.v)) {
        out.push_back(std::move(s.labels));
        break;
      }
    }
  }
  return out;
}

void MemoryStorage::Add(const Labels& labels, int64_t t_ms, double v) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = index_.try_emplace(labels, series_.size());
  if (inserted) {
    series_.push_back(Series{labels, {}});
    by_name_[std::string(labels.Get(kMetricName))].push_back(it->second);
  }
  auto& pts = series_[it->second].points;
  if (pts.empty() || pts.back().t < t_ms) {
    pts.push_back({t_ms, v});
    return;
  }
  auto pos = std::lower_bound(pts.begin(), pts.end(), t_ms,
                              [](const Point& p, int64_t t) { return p.t < t; });
  if (pos != pts.end() && pos->t == t_ms) {
    pos->v = v;
  } else {
    pts.insert(pos, {t_ms, v});
  }
}

void MemoryStorage::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  series_.clear();
  index_.clear();
  by_name_.clear();
}

size_t MemoryStorage::NumSeries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_.size();
}

core::Result<std::vector<Series>> MemoryStorage::Select(const std::vector<LabelMatcher>& matchers,
                                                        int64_t min_ms, int64_t max_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Series> out;
  auto consider = [&](const Series& s) {
    if (!MatchesAll(matchers, s.labels)) return;
    auto lo = std::lower_bound(s.points.begin(), s.points.end(), min_ms,
                               [](const Point& p, int64_t t) { return p.t < t; });
    auto hi = std::upper_bound(s.points.begin(), s.points.end(), max_ms,
                               [](int64_t t, const Point& p) { return t < p.t; });
    if (lo >= hi) return;
    out.push_back(Series{s.labels, std::vector<Point>(lo, hi)});
  };
  for (const auto& m : matchers) {
    if (m.name() == kMetricName && m.type() == MatchType::kEqual) {
      auto it = by_name_.find(m.value());
      if (it == by_name_.end()) return out;
      for (size_t i : it->second) consider(series_[i]);
      return out;
    }
  }
  for (const auto& s : series_) consider(s);
  return out;
}

}  // namespace llmscope::promql
