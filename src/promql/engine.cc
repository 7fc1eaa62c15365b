#include "promql/engine.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <unordered_map>
#include <utility>

#include "promql/functions.h"

namespace llmscope::promql {
namespace {

// Evaluation errors unwind through the recursive evaluator as this private exception and
// are turned back into a Status in Engine::Eval*, the module boundary (the same shape as
// Prometheus' evaluator, which panics and recovers). Nothing else in the module throws.
struct EvalError {
  core::Status status;
};

[[noreturn]] void Throw(std::string msg) { throw EvalError{core::InvalidArgument(std::move(msg))}; }

constexpr const char* kDupLabelset = "vector cannot contain metrics with the same labelset";

// The evaluation timestamps: start, start+step, ..., up to end.
struct Grid {
  int64_t start;
  int64_t end;
  int64_t step;
  int64_t n() const { return (end - start) / step + 1; }
  int64_t At(int64_t i) const { return start + i * step; }
  size_t Index(int64_t t) const { return static_cast<size_t>((t - start) / step); }
};

const Expr& Unwrap(const Expr& e) {
  const Expr* p = &e;
  while (p->kind == Expr::Kind::kParen) p = p->args[0].get();
  return *p;
}

// Builds an output matrix keyed by label set. Different inputs that end up with equal
// labels share one output series; two points at one timestamp are Prometheus' "same
// labelset" error. Series keep first-appearance order (instant results rely on it).
class Collector {
 public:
  size_t Get(Labels labels) {
    uint64_t h = labels.Hash();
    auto [it, inserted] = head_.try_emplace(h, out_.size());
    if (!inserted) {
      // Walk the chain of series sharing this hash.
      for (size_t i = it->second; i != SIZE_MAX; i = next_[i]) {
        if (out_[i].labels == labels) return i;
      }
      next_.push_back(it->second);
      it->second = out_.size();
    } else {
      next_.push_back(SIZE_MAX);
    }
    out_.push_back(Series{std::move(labels), {}});
    return out_.size() - 1;
  }
  void Add(size_t i, int64_t t, double v) {
    auto& p = out_[i].points;
    if (!p.empty()) {
      if (p.back().t == t) Throw(kDupLabelset);
      if (p.back().t > t) unsorted_ = true;
    }
    p.push_back({t, v});
  }
  Matrix Finish() {
    if (unsorted_) {
      for (auto& s : out_) {
        std::stable_sort(s.points.begin(), s.points.end(),
                         [](const Point& a, const Point& b) { return a.t < b.t; });
        for (size_t k = 1; k < s.points.size(); ++k) {
          if (s.points[k].t == s.points[k - 1].t) Throw(kDupLabelset);
        }
      }
    }
    std::erase_if(out_, [](const Series& s) { return s.points.empty(); });
    return std::move(out_);
  }

 private:
  Matrix out_;
  std::unordered_map<uint64_t, size_t> head_;
  std::vector<size_t> next_;
  bool unsorted_ = false;
};

// 64-bit keys (already hashes) to dense indexes: open addressing in one table sized for at
// most `n` keys, so a lookup per input series allocates nothing.
class KeyIndex {
 public:
  explicit KeyIndex(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    slots_.assign(cap, Slot{0, kEmpty});
    mask_ = cap - 1;
  }
  // The index stored for `key`, or `next`, stored now (then `inserted` is true).
  // REQUIRES: at most n distinct keys inserted, `next` != UINT32_MAX.
  std::pair<uint32_t, bool> FindOrInsert(uint64_t key, uint32_t next) {
    for (size_t i = (key ^ (key >> 29)) & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.index == kEmpty) {
        s = Slot{key, next};
        ++size_;
        return {next, true};
      }
      if (s.key == key) return {s.index, false};
    }
  }
  // As FindOrInsert, for any number of keys: the table doubles when it would be more than
  // half full.
  std::pair<uint32_t, bool> FindOrInsertGrowing(uint64_t key, uint32_t next) {
    if (2 * (size_ + 1) > slots_.size()) {
      std::vector<Slot> old(2 * slots_.size(), Slot{0, kEmpty});
      old.swap(slots_);
      mask_ = slots_.size() - 1;
      size_ = 0;
      for (const Slot& o : old) {
        if (o.index != kEmpty) FindOrInsert(o.key, o.index);
      }
    }
    return FindOrInsert(key, next);
  }

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;
  struct Slot {
    uint64_t key;
    uint32_t index;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

// True when no two series can collide once __name__ is dropped: all share one name.
bool SameMetricName(const Matrix& m) {
  if (m.empty()) return true;
  const std::string_view first = m[0].labels.Get(kMetricName);
  for (size_t i = 1; i < m.size(); ++i) {
    if (m[i].labels.Get(kMetricName) != first) return false;
  }
  return true;
}

// Walks a grid-aligned matrix step by step.
class StepCursor {
 public:
  explicit StepCursor(const Matrix& m) : m_(m), pos_(m.size(), 0) {}
  // Fills `out` with (series index, value) of the series that have a point at t.
  void At(int64_t t, std::vector<std::pair<uint32_t, double>>* out) {
    out->clear();
    for (size_t i = 0; i < m_.size(); ++i) {
      const auto& p = m_[i].points;
      size_t& c = pos_[i];
      if (c < p.size() && p[c].t == t) {
        out->emplace_back(static_cast<uint32_t>(i), p[c].v);
        ++c;
      }
    }
  }

 private:
  const Matrix& m_;
  std::vector<size_t> pos_;
};

double ScalarBinop(BinOp op, double l, double r) {
  switch (op) {
    case BinOp::kAdd:
      return l + r;
    case BinOp::kSub:
      return l - r;
    case BinOp::kMul:
      return l * r;
    case BinOp::kDiv:
      return l / r;
    case BinOp::kMod:
      return std::fmod(l, r);
    case BinOp::kPow:
      return std::pow(l, r);
    case BinOp::kAtan2:
      return std::atan2(l, r);
    case BinOp::kEql:
      return l == r;
    case BinOp::kNeq:
      return l != r;
    case BinOp::kGtr:
      return l > r;
    case BinOp::kLss:
      return l < r;
    case BinOp::kGte:
      return l >= r;
    case BinOp::kLte:
      return l <= r;
    default:
      return 0;
  }
}

// Arithmetic result, or for a comparison the left value and whether the pair is kept.
double ElemBinop(BinOp op, double l, double r, bool* keep) {
  *keep = true;
  if (IsComparison(op)) {
    *keep = ScalarBinop(op, l, r) != 0;
    return l;
  }
  return ScalarBinop(op, l, r);
}

bool DropsName(BinOp op) { return !IsComparison(op) && !IsSetOp(op); }

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

class Evaluator {
 public:
  Evaluator(const Queryable& q, const EngineOptions& opt, int64_t qstart, int64_t qend)
      : q_(q), opt_(opt), query_start_(qstart), query_end_(qend) {}

  Matrix Eval(const Expr& e, const Grid& g) {
    Matrix m;
    auto shared = shared_node_.empty() ? shared_node_.end() : shared_node_.find(&e);
    if (shared != shared_node_.end()) {
      // A common subexpression: evaluated once per grid, then answered from the copy.
      auto [it, inserted] =
          shared_value_.try_emplace(SharedKey{shared->second, g.start, g.end, g.step});
      if (inserted) it->second = EvalNode(e, g);
      m = it->second;
    } else {
      m = EvalNode(e, g);
    }
    int64_t pts = 0;
    for (const auto& s : m) pts += static_cast<int64_t>(s.points.size());
    Account(pts);
    return m;
  }

  // Finds the aggregations and function calls that occur more than once in `root` with the
  // same text, such as `sum(rate(x[1h] offset 1d))` written twice in one rule: Eval then
  // evaluates each once per grid. Equal text means equal results: a PromQL expression's
  // value depends only on the data, the grid and the query's start and end, all fixed within
  // one Evaluator. Only the outermost repeated node is cached (its inner nodes are never
  // evaluated again); a repeated node inside a non-repeated one is found on its own.
  void FindCommonSubexpressions(const Expr& root) {
    std::vector<const Expr*> candidates;
    Collect(root, &candidates);
    if (candidates.size() < 2) return;
    std::unordered_map<std::string, std::vector<const Expr*>> by_text;
    for (const Expr* e : candidates) by_text[e->ToString()].push_back(e);
    std::unordered_map<const Expr*, uint32_t> repeated;
    uint32_t id = 0;
    for (const auto& [text, nodes] : by_text) {
      if (nodes.size() < 2) continue;
      for (const Expr* e : nodes) repeated.emplace(e, id);
      ++id;
    }
    if (!repeated.empty()) MarkOutermost(root, repeated);
  }

 private:
  static void Collect(const Expr& e, std::vector<const Expr*>* out) {
    if (e.kind == Expr::Kind::kAggregate || e.kind == Expr::Kind::kCall) out->push_back(&e);
    for (const auto& a : e.args) Collect(*a, out);
    if (e.param) Collect(*e.param, out);
  }

  void MarkOutermost(const Expr& e, const std::unordered_map<const Expr*, uint32_t>& repeated) {
    if (auto it = repeated.find(&e); it != repeated.end()) {
      shared_node_.emplace(&e, it->second);
      return;
    }
    for (const auto& a : e.args) MarkOutermost(*a, repeated);
    if (e.param) MarkOutermost(*e.param, repeated);
  }

 public:
  // A scalar-typed expression as one value per step.
  std::vector<double> EvalScalar(const Expr& e, const Grid& g) {
    Matrix m = Eval(e, g);
    std::vector<double> out(static_cast<size_t>(g.n()), std::nan(""));
    if (!m.empty()) {
      for (const auto& p : m[0].points) out[g.Index(p.t)] = p.v;
    }
    return out;
  }

  // Raw samples of a range-vector expression at time t (an instant query of `x[5m]`).
  Matrix EvalRangeVectorAt(const Expr& e, int64_t t) {
    Grid g{t, t, 1};
    RangeSource src = LoadRange(Unwrap(e), g);
    int64_t ref = RefTime(src, t);
    Matrix out;
    for (auto& s : src.series) {
      Series o{s.labels, {}};
      for (const auto& p : s.points) {
        if (p.t > ref - src.range_ms && p.t <= ref) o.points.push_back(p);
      }
      if (!o.points.empty()) out.push_back(std::move(o));
    }
    return out;
  }

 private:
  struct RangeSource {
    Matrix series;  // sorted points, stale markers removed
    int64_t range_ms = 0;
    int64_t offset_ms = 0;
    bool has_at = false;
    int64_t at_ms = 0;
  };

  void Account(int64_t n) {
    samples_ += n;
    if (samples_ > opt_.max_samples) {
      throw EvalError{core::Status(
          core::StatusCode::kResourceExhausted,
          "query processing would load too many samples into memory in query execution")};
    }
  }

  int64_t ResolveAt(const Expr& e) const {
    switch (e.at) {
      case AtKind::kStart:
        return query_start_;
      case AtKind::kEnd:
        return query_end_;
      default:
        return e.at_ms;
    }
  }

  int64_t RefTime(const RangeSource& s, int64_t ts) const {
    return (s.has_at ? s.at_ms : ts) - s.offset_ms;
  }

  std::vector<Series> Select(const Expr& e, int64_t min_ms, int64_t max_ms) {
    auto r = q_.Select(e.matchers, min_ms, max_ms);
    if (!r.ok()) throw EvalError{r.status()};
    int64_t pts = 0;
    for (const auto& s : *r) pts += static_cast<int64_t>(s.points.size());
    Account(pts);
    return std::move(*r);
  }

  Matrix Constant(double v, const Grid& g) {
    Series s;
    s.points.reserve(static_cast<size_t>(g.n()));
    for (int64_t i = 0; i < g.n(); ++i) s.points.push_back({g.At(i), v});
    Matrix m;
    m.push_back(std::move(s));
    return m;
  }

  Matrix FromDense(const std::vector<double>& v, const Grid& g, Labels labels = {}) {
    Series s{std::move(labels), {}};
    s.points.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) s.points.push_back({g.At(static_cast<int64_t>(i)), v[i]});
    Matrix m;
    m.push_back(std::move(s));
    return m;
  }

  Matrix EvalNode(const Expr& e, const Grid& g) {
    switch (e.kind) {
      case Expr::Kind::kNumber:
        return Constant(e.number, g);
      case Expr::Kind::kParen:
        return Eval(*e.args[0], g);
      case Expr::Kind::kVectorSelector:
        return EvalSelector(e, g, false);
      case Expr::Kind::kUnary:
        return EvalUnary(e, g);
      case Expr::Kind::kBinary:
        return EvalBinary(e, g);
      case Expr::Kind::kAggregate:
        return EvalAggregate(e, g);
      case Expr::Kind::kCall:
        return EvalCall(e, g);
      default:
        Throw("unexpected " + std::string(ValueTypeDocName(e.type())) + " in expression");
    }
  }

  Matrix EvalSelector(const Expr& e, const Grid& g, bool timestamps) {
    const bool has_at = e.at != AtKind::kNone;
    const int64_t at = has_at ? ResolveAt(e) : 0;
    auto ref = [&](int64_t ts) { return (has_at ? at : ts) - e.offset_ms; };
    const int64_t lb = opt_.lookback_delta_ms;
    int64_t lo = has_at ? ref(0) : ref(g.start);
    int64_t hi = has_at ? ref(0) : ref(g.At(g.n() - 1));
    std::vector<Series> series = Select(e, lo - lb + 1, hi);
    Matrix out;
    out.reserve(series.size());
    for (auto& s : series) {
      Series o;
      size_t j = 0;
      const auto& pts = s.points;
      for (int64_t i = 0; i < g.n(); ++i) {
        int64_t ts = g.At(i);
        int64_t r = ref(ts);
        while (j < pts.size() && pts[j].t <= r) ++j;
        if (j == 0) continue;
        const Point& p = pts[j - 1];
        if (p.t <= r - lb || IsStaleNaN(p.v)) continue;
        if (o.points.empty()) o.points.reserve(static_cast<size_t>(g.n() - i));
        o.points.push_back({ts, timestamps ? static_cast<double>(p.t) / 1000.0 : p.v});
      }
      if (o.points.empty()) continue;
      o.labels = timestamps ? s.labels.WithoutMetricName() : std::move(s.labels);
      out.push_back(std::move(o));
    }
    if (timestamps) {
      Collector c;
      for (auto& s : out) {
        size_t idx = c.Get(std::move(s.labels));
        for (const auto& p : s.points) c.Add(idx, p.t, p.v);
      }
      return c.Finish();
    }
    return out;
  }

  Matrix EvalUnary(const Expr& e, const Grid& g) {
    Matrix in = Eval(*e.args[0], g);
    if (e.args[0]->type() == ValueType::kScalar) {
      for (auto& p : in[0].points) p.v = -p.v;
      return in;
    }
    Collector c;
    for (auto& s : in) {
      size_t idx = c.Get(s.labels.WithoutMetricName());
      for (const auto& p : s.points) c.Add(idx, p.t, -p.v);
    }
    return c.Finish();
  }

  // ---- Range vectors -----------------------------------------------------------------

  RangeSource LoadRange(const Expr& e, const Grid& g) {
    RangeSource src;
    src.range_ms = e.range_ms;
    src.offset_ms = e.offset_ms;
    src.has_at = e.at != AtKind::kNone;
    if (src.has_at) src.at_ms = ResolveAt(e);
    if (e.kind == Expr::Kind::kMatrixSelector) {
      int64_t lo = RefTime(src, g.start) - src.range_ms + 1;
      int64_t hi = RefTime(src, g.At(g.n() - 1));
      std::vector<Series> series = Select(e, lo, hi);
      for (auto& s : series) {
        std::erase_if(s.points, [](const Point& p) { return IsStaleNaN(p.v); });
        if (!s.points.empty()) src.series.push_back(std::move(s));
      }
      return src;
    }
    // Subquery: evaluate the inner expression on its own step grid, aligned to multiples of
    // the step, covering every window the outer steps will ask for.
    int64_t outer_start = src.has_at ? src.at_ms : g.start;
    int64_t outer_end = src.has_at ? src.at_ms : g.At(g.n() - 1);
    int64_t step = e.step_ms > 0 ? e.step_ms : opt_.default_subquery_step_ms;
    int64_t first = outer_start - src.offset_ms - src.range_ms;
    int64_t start = step * (first / step);
    if (start <= first) start += step;
    int64_t end = outer_end - src.offset_ms;
    if (end < start) return src;
    int64_t steps = (end - start) / step + 1;
    if (steps > opt_.max_subquery_steps) {
      throw EvalError{core::Status(
          core::StatusCode::kResourceExhausted,
          "subquery would evaluate " + std::to_string(steps) + " steps, more than the limit of " +
              std::to_string(opt_.max_subquery_steps) + "; use a coarser subquery step")};
    }
    src.series = Eval(*e.args[0], Grid{start, end, step});
    return src;
  }

  // Calls `fn(step index, window, reference time)` for every non-empty window of series si.
  template <typename Fn>
  void ForEachWindowOf(const RangeSource& src, size_t si, const Grid& g, Fn&& fn) {
    ForEachWindowIn(src, src.series[si].points, g, std::forward<Fn>(fn));
  }

  // As ForEachWindowOf, over the samples `pts` (sorted, stale markers removed).
  template <typename Fn>
  void ForEachWindowIn(const RangeSource& src, const std::vector<Point>& pts, const Grid& g,
                       Fn&& fn) {
    size_t lo = 0, hi = 0;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t ref = RefTime(src, g.At(i));
      int64_t min = ref - src.range_ms;
      while (hi < pts.size() && pts[hi].t <= ref) ++hi;
      while (lo < hi && pts[lo].t <= min) ++lo;
      if (lo >= hi) continue;
      fn(i, std::span<const Point>(pts.data() + lo, hi - lo), ref);
    }
  }

  // Calls `fn(series index, step index, window, reference time)` for every non-empty window.
  template <typename Fn>
  void ForEachWindow(const RangeSource& src, const Grid& g, Fn&& fn) {
    for (size_t si = 0; si < src.series.size(); ++si) {
      ForEachWindowOf(src, si, g,
                      [&](int64_t i, std::span<const Point> w, int64_t ref) { fn(si, i, w, ref); });
    }
  }

  Matrix EvalRangeFunction(const Expr& e, const Grid& g) {
    const std::string_view name = e.func->name;
    // Scalar arguments (quantile_over_time's q, predict_linear's t) are evaluated per step.
    int matrix_arg = -1;
    std::vector<std::vector<double>> scalars(e.args.size());
    for (size_t i = 0; i < e.args.size(); ++i) {
      if (e.args[i]->type() == ValueType::kMatrix) {
        matrix_arg = static_cast<int>(i);
      } else {
        scalars[i] = EvalScalar(*e.args[i], g);
      }
    }
    RangeSource src = LoadRange(Unwrap(*e.args[matrix_arg]), g);

    if (name == "absent_over_time") {
      std::vector<char> seen(static_cast<size_t>(g.n()), 0);
      ForEachWindow(src, g, [&](size_t, int64_t i, std::span<const Point>, int64_t) {
        seen[static_cast<size_t>(i)] = 1;
      });
      Series s{AbsentLabels(Unwrap(*e.args[0])), {}};
      for (int64_t i = 0; i < g.n(); ++i) {
        if (!seen[static_cast<size_t>(i)]) s.points.push_back({g.At(i), 1});
      }
      Matrix m;
      if (!s.points.empty()) m.push_back(std::move(s));
      return m;
    }

    RangeFunction fn = LookupRangeFunction(name);
    const bool keep_name = name == "last_over_time";
    RangeArgs args;
    args.range_ms = src.range_ms;
    // Each series' results replace its samples once its windows are done, reusing their
    // storage: the input matrix becomes the output without an allocation per series.
    Matrix& series = src.series;
    std::vector<Point> results;
    for (size_t si = 0; si < series.size(); ++si) {
      results.clear();
      ForEachWindowOf(src, si, g, [&](int64_t i, std::span<const Point> w, int64_t ref) {
        args.range_start_ms = ref - src.range_ms;
        args.range_end_ms = ref;
        args.eval_ms = g.At(i);
        args.param = matrix_arg == 1 ? scalars[0][static_cast<size_t>(i)]
                     : scalars.size() > 1 && !scalars[1].empty()
                         ? scalars[1][static_cast<size_t>(i)]
                         : 0;
        std::optional<double> v = fn(w, args);
        if (v) results.push_back({g.At(i), *v});
      });
      series[si].points.assign(results.begin(), results.end());
    }
    // Prometheus rejects equal output label sets from different inputs outright here.
    // Dropping the name cannot create a clash when every input has the same name (the
    // common `rate(metric[5m])`), so that case skips the label-set index.
    const bool uniform = keep_name || SameMetricName(series);
    if (uniform) {
      size_t n = 0;
      for (size_t si = 0; si < series.size(); ++si) {
        if (series[si].points.empty()) continue;
        if (!keep_name) series[si].labels = series[si].labels.WithoutMetricName();
        if (n != si) series[n] = std::move(series[si]);
        ++n;
      }
      series.erase(series.begin() + static_cast<std::ptrdiff_t>(n), series.end());
      return std::move(series);
    }
    Collector c;
    std::vector<char> used;
    for (size_t si = 0; si < series.size(); ++si) {
      if (series[si].points.empty()) continue;
      size_t idx = c.Get(series[si].labels.WithoutMetricName());
      if (idx < used.size() && used[idx]) Throw(kDupLabelset);
      used.resize(std::max(used.size(), idx + 1), 0);
      used[idx] = 1;
      for (const auto& p : series[si].points) c.Add(idx, p.t, p.v);
    }
    return c.Finish();
  }

  static Labels AbsentLabels(const Expr& e) {
    if (e.kind != Expr::Kind::kVectorSelector && e.kind != Expr::Kind::kMatrixSelector) {
      return {};
    }
    std::vector<Label> out;
    std::vector<std::string> seen;
    for (const auto& m : e.matchers) {
      if (m.name() == kMetricName) continue;
      bool dup = std::find(seen.begin(), seen.end(), m.name()) != seen.end();
      if (m.type() == MatchType::kEqual && !dup) {
        out.push_back({m.name(), m.value()});
        seen.push_back(m.name());
      } else {
        std::erase_if(out, [&](const Label& l) { return l.name == m.name(); });
      }
    }
    return Labels::FromVector(std::move(out));
  }

  // ---- Functions ---------------------------------------------------------------------

  Matrix EvalCall(const Expr& e, const Grid& g) {
    const std::string_view name = e.func->name;
    for (const auto& a : e.args) {
      if (a->type() == ValueType::kMatrix) return EvalRangeFunction(e, g);
    }
    if (name == "time") {
      std::vector<double> v(static_cast<size_t>(g.n()));
      for (int64_t i = 0; i < g.n(); ++i) v[static_cast<size_t>(i)] = g.At(i) / 1000.0;
      return FromDense(v, g);
    }
    if (name == "pi") return Constant(M_PI, g);
    if (name == "vector") return FromDense(EvalScalar(*e.args[0], g), g);
    if (name == "scalar") return EvalScalarFn(e, g);
    if (name == "timestamp") {
      const Expr& arg = *e.args[0];
      if (arg.kind == Expr::Kind::kVectorSelector) return EvalSelector(arg, g, true);
      return MapSeries(Eval(arg, g), true, [](double, int64_t t) { return t / 1000.0; });
    }
    if (name == "absent") return EvalAbsent(e, g);
    if (name == "sort" || name == "sort_desc") return EvalSort(e, g, name == "sort_desc");
    if (name == "label_replace") return EvalLabelReplace(e, g);
    if (name == "label_join") return EvalLabelJoin(e, g);
    if (name == "histogram_quantile") return EvalHistogramQuantile(e, g);
    if (name == "round") {
      std::vector<double> to =
          e.args.size() > 1 ? EvalScalar(*e.args[1], g) : std::vector<double>(g.n(), 1.0);
      return MapSeries(Eval(*e.args[0], g), true, [&](double v, int64_t t) {
        double inv = 1.0 / to[g.Index(t)];
        return std::floor(v * inv + 0.5) / inv;
      });
    }
    if (name == "clamp" || name == "clamp_min" || name == "clamp_max") {
      std::vector<double> lo(static_cast<size_t>(g.n()), -HUGE_VAL);
      std::vector<double> hi(static_cast<size_t>(g.n()), HUGE_VAL);
      if (name == "clamp") {
        lo = EvalScalar(*e.args[1], g);
        hi = EvalScalar(*e.args[2], g);
      } else if (name == "clamp_min") {
        lo = EvalScalar(*e.args[1], g);
      } else {
        hi = EvalScalar(*e.args[1], g);
      }
      return MapSeriesFiltered(Eval(*e.args[0], g), true,
                               [&](double v, int64_t t) -> std::optional<double> {
                                 size_t i = g.Index(t);
                                 if (hi[i] < lo[i]) return std::nullopt;
                                 return std::max(lo[i], std::min(hi[i], v));
                               });
    }
    if (auto date = LookupDateFunction(name)) {
      Matrix in = e.args.empty() ? EvalCall(TimeVector(), g) : Eval(*e.args[0], g);
      return MapSeries(std::move(in), true, [&](double v, int64_t) { return date(v); });
    }
    if (auto math = LookupMathFunction(name)) {
      return MapSeries(Eval(*e.args[0], g), true, [&](double v, int64_t) { return math(v); });
    }
    Throw("function " + std::string(name) + " is not implemented");
  }

  // vector(time()), the default argument of the date functions.
  const Expr& TimeVector() {
    if (!time_vector_) {
      auto parsed = ParseExpr("vector(time())");
      time_vector_ = std::move(*parsed);
    }
    return *time_vector_;
  }

  template <typename F>
  Matrix MapSeries(Matrix in, bool drop_name, F&& f) {
    return MapSeriesFiltered(std::move(in), drop_name,
                             [&](double v, int64_t t) -> std::optional<double> { return f(v, t); });
  }

  template <typename F>
  Matrix MapSeriesFiltered(Matrix in, bool drop_name, F&& f) {
    if (!drop_name || SameMetricName(in)) {
      // Output label sets stay distinct: transform in place.
      Matrix out;
      out.reserve(in.size());
      for (auto& s : in) {
        size_t n = 0;
        for (const auto& p : s.points) {
          if (auto v = f(p.v, p.t)) s.points[n++] = {p.t, *v};
        }
        if (n == 0) continue;
        s.points.resize(n);
        if (drop_name) s.labels = s.labels.WithoutMetricName();
        out.push_back(std::move(s));
      }
      return out;
    }
    Collector c;
    for (auto& s : in) {
      size_t idx = c.Get(s.labels.WithoutMetricName());
      for (const auto& p : s.points) {
        if (auto v = f(p.v, p.t)) c.Add(idx, p.t, *v);
      }
    }
    return c.Finish();
  }

  Matrix EvalScalarFn(const Expr& e, const Grid& g) {
    Matrix in = Eval(*e.args[0], g);
    std::vector<double> v(static_cast<size_t>(g.n()), std::nan(""));
    std::vector<int> count(static_cast<size_t>(g.n()), 0);
    for (const auto& s : in) {
      for (const auto& p : s.points) {
        size_t i = g.Index(p.t);
        if (++count[i] == 1) v[i] = p.v;
      }
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (count[i] != 1) v[i] = std::nan("");
    }
    return FromDense(v, g);
  }

  Matrix EvalAbsent(const Expr& e, const Grid& g) {
    Matrix in = Eval(*e.args[0], g);
    std::vector<char> seen(static_cast<size_t>(g.n()), 0);
    for (const auto& s : in) {
      for (const auto& p : s.points) seen[g.Index(p.t)] = 1;
    }
    Series out{AbsentLabels(Unwrap(*e.args[0])), {}};
    for (int64_t i = 0; i < g.n(); ++i) {
      if (!seen[static_cast<size_t>(i)]) out.points.push_back({g.At(i), 1});
    }
    Matrix m;
    if (!out.points.empty()) m.push_back(std::move(out));
    return m;
  }

  Matrix EvalSort(const Expr& e, const Grid& g, bool desc) {
    Matrix in = Eval(*e.args[0], g);
    if (g.n() != 1) return in;  // a range query's result is ordered by labels anyway
    // NaN sorts last either way, as Prometheus' sort/sort_desc.
    std::stable_sort(in.begin(), in.end(), [desc](const Series& a, const Series& b) {
      double x = a.points[0].v, y = b.points[0].v;
      if (std::isnan(x)) return false;
      if (std::isnan(y)) return true;
      return desc ? x > y : x < y;
    });
    return in;
  }

  static const std::string& StringArg(const Expr& e) { return Unwrap(e).str; }

  Matrix EvalLabelReplace(const Expr& e, const Grid& g) {
    const std::string& dst = StringArg(*e.args[1]);
    const std::string& repl = StringArg(*e.args[2]);
    const std::string& src = StringArg(*e.args[3]);
    const std::string& pattern = StringArg(*e.args[4]);
    auto re = Regex::Compile(pattern);
    if (!re.ok()) Throw("invalid regular expression in label_replace(): " + pattern);
    if (!IsValidLabelName(dst)) Throw("invalid destination label name in label_replace(): " + dst);
    Matrix in = Eval(*e.args[0], g);
    Collector c;
    std::vector<int> caps;
    for (auto& s : in) {
      std::string src_val(s.labels.Get(src));
      Labels l = std::move(s.labels);
      if ((*re)->FullMatchCaptures(src_val, &caps)) {
        l = l.With(dst, (*re)->Expand(repl, src_val, caps));
      }
      size_t idx = c.Get(std::move(l));
      for (const auto& p : s.points) c.Add(idx, p.t, p.v);
    }
    return c.Finish();
  }

  Matrix EvalLabelJoin(const Expr& e, const Grid& g) {
    const std::string& dst = StringArg(*e.args[1]);
    const std::string& sep = StringArg(*e.args[2]);
    std::vector<std::string> srcs;
    for (size_t i = 3; i < e.args.size(); ++i) {
      const std::string& s = StringArg(*e.args[i]);
      if (!IsValidLabelName(s)) Throw("invalid source label name in label_join(): " + s);
      srcs.push_back(s);
    }
    if (!IsValidLabelName(dst)) Throw("invalid destination label name in label_join(): " + dst);
    Matrix in = Eval(*e.args[0], g);
    Collector c;
    for (auto& s : in) {
      std::string joined;
      for (size_t i = 0; i < srcs.size(); ++i) {
        if (i > 0) joined += sep;
        joined += s.labels.Get(srcs[i]);
      }
      size_t idx = c.Get(s.labels.With(dst, joined));
      for (const auto& p : s.points) c.Add(idx, p.t, p.v);
    }
    return c.Finish();
  }

  Matrix EvalHistogramQuantile(const Expr& e, const Grid& g) {
    std::vector<double> q = EvalScalar(*e.args[0], g);
    Matrix in = Eval(*e.args[1], g);
    // Series are grouped by all labels but `le`; the output drops __name__ and `le`.
    std::vector<double> upper(in.size());
    std::vector<int> group(in.size(), -1);
    std::unordered_map<uint64_t, int> by_sig;
    std::vector<Labels> group_labels;
    static const std::vector<std::string> kLe = {"le"};
    for (size_t i = 0; i < in.size(); ++i) {
      std::string le(in[i].labels.Get("le"));
      char* endp = nullptr;
      double ub = std::strtod(le.c_str(), &endp);
      if (le.empty() || endp != le.c_str() + le.size()) continue;  // not a bucket: ignored
      upper[i] = ub;
      uint64_t sig = in[i].labels.HashFor(kLe, false);
      auto [it, inserted] = by_sig.try_emplace(sig, static_cast<int>(group_labels.size()));
      if (inserted) {
        group_labels.push_back(in[i].labels.WithoutNames({std::string(kMetricName), "le"}));
      }
      group[i] = it->second;
    }
    Collector c;
    std::vector<size_t> out_idx;
    for (auto& l : group_labels) out_idx.push_back(c.Get(l));
    std::vector<std::vector<Bucket>> buckets(group_labels.size());
    StepCursor cur(in);
    std::vector<std::pair<uint32_t, double>> step;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t t = g.At(i);
      cur.At(t, &step);
      for (auto& b : buckets) b.clear();
      for (const auto& [si, v] : step) {
        if (group[si] >= 0) buckets[group[si]].push_back({upper[si], v});
      }
      for (size_t k = 0; k < buckets.size(); ++k) {
        if (buckets[k].empty()) continue;
        c.Add(out_idx[k], t, BucketQuantile(q[static_cast<size_t>(i)], &buckets[k]));
      }
    }
    return c.Finish();
  }

  // ---- Binary operators --------------------------------------------------------------

  Matrix EvalBinary(const Expr& e, const Grid& g) {
    const Expr& lhs = *e.args[0];
    const Expr& rhs = *e.args[1];
    ValueType lt = lhs.type(), rt = rhs.type();
    if (lt == ValueType::kScalar && rt == ValueType::kScalar) {
      std::vector<double> l = EvalScalar(lhs, g);
      std::vector<double> r = EvalScalar(rhs, g);
      for (size_t i = 0; i < l.size(); ++i) l[i] = ScalarBinop(e.bin, l[i], r[i]);
      return FromDense(l, g);
    }
    if (lt == ValueType::kVector && rt == ValueType::kVector) {
      Matrix l = Eval(lhs, g);
      Matrix r = Eval(rhs, g);
      if (IsSetOp(e.bin)) return SetOp(e, std::move(l), std::move(r), g);
      return VectorBinop(e, std::move(l), std::move(r), g);
    }
    const bool swap = lt == ValueType::kScalar;
    Matrix vec = Eval(swap ? rhs : lhs, g);
    std::vector<double> sc = EvalScalar(swap ? lhs : rhs, g);
    const bool drop = DropsName(e.bin) || e.return_bool;
    return MapSeriesFiltered(std::move(vec), drop,
                             [&](double v, int64_t t) -> std::optional<double> {
                               double s = sc[g.Index(t)];
                               double l = swap ? s : v, r = swap ? v : s;
                               bool keep;
                               double out = ElemBinop(e.bin, l, r, &keep);
                               if (IsComparison(e.bin))
                                 out = v;  // a comparison filters the vector's own value
                               if (e.return_bool) return keep ? 1.0 : 0.0;
                               if (!keep) return std::nullopt;
                               return out;
                             });
  }

  // Per-series join signatures for vector matching, as dense ordinals shared by both sides.
  static std::vector<uint32_t> Signatures(const VectorMatching& vm, const Matrix& l,
                                          const Matrix& r, size_t* num_sigs,
                                          std::vector<uint32_t>* rsig) {
    std::vector<std::string> names = vm.labels;
    if (!vm.on) names.push_back(std::string(kMetricName));
    names = Sorted(std::move(names));
    std::unordered_map<uint64_t, uint32_t> ord;
    auto sig = [&](const Labels& lb) {
      uint64_t h = lb.HashFor(names, vm.on);
      auto [it, inserted] = ord.try_emplace(h, static_cast<uint32_t>(ord.size()));
      return it->second;
    };
    std::vector<uint32_t> lsig;
    lsig.reserve(l.size());
    for (const auto& s : l) lsig.push_back(sig(s.labels));
    rsig->clear();
    for (const auto& s : r) rsig->push_back(sig(s.labels));
    *num_sigs = ord.size();
    return lsig;
  }

  Matrix SetOp(const Expr& e, Matrix l, Matrix r, const Grid& g) {
    const VectorMatching& vm = *e.matching;
    size_t nsig = 0;
    std::vector<uint32_t> rsig;
    std::vector<uint32_t> lsig = Signatures(vm, l, r, &nsig, &rsig);
    Collector c;
    std::vector<size_t> lidx, ridx;
    for (auto& s : l) lidx.push_back(c.Get(s.labels));
    std::vector<size_t> ridx_lazy(r.size(), SIZE_MAX);
    StepCursor lc(l), rc(r);
    std::vector<std::pair<uint32_t, double>> ls, rs;
    std::vector<uint32_t> present(nsig, 0);
    uint32_t gen = 0;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t t = g.At(i);
      lc.At(t, &ls);
      rc.At(t, &rs);
      ++gen;
      switch (e.bin) {
        case BinOp::kAnd:
          if (ls.empty() || rs.empty()) break;
          for (const auto& [si, v] : rs) present[rsig[si]] = gen;
          for (const auto& [si, v] : ls) {
            if (present[lsig[si]] == gen) c.Add(lidx[si], t, v);
          }
          break;
        case BinOp::kOr:
          for (const auto& [si, v] : ls) {
            present[lsig[si]] = gen;
            c.Add(lidx[si], t, v);
          }
          for (const auto& [si, v] : rs) {
            if (present[rsig[si]] == gen) continue;
            if (ridx_lazy[si] == SIZE_MAX) ridx_lazy[si] = c.Get(r[si].labels);
            c.Add(ridx_lazy[si], t, v);
          }
          break;
        default:  // unless
          for (const auto& [si, v] : rs) present[rsig[si]] = gen;
          for (const auto& [si, v] : ls) {
            if (present[lsig[si]] != gen) c.Add(lidx[si], t, v);
          }
      }
    }
    return c.Finish();
  }

  Labels ResultMetric(const Labels& lhs, const Labels& rhs, const Expr& e) {
    const VectorMatching& vm = *e.matching;
    Labels out = (e.return_bool || DropsName(e.bin)) ? lhs.WithoutMetricName() : lhs;
    if (vm.card == Cardinality::kOneToOne) {
      out = vm.on ? out.KeepOnly(vm.labels) : out.WithoutNames(vm.labels);
    }
    for (const auto& name : vm.include) out = out.With(name, rhs.Get(name));
    return out;
  }

  Matrix VectorBinop(const Expr& e, Matrix l, Matrix r, const Grid& g) {
    const VectorMatching& vm = *e.matching;
    size_t nsig = 0;
    std::vector<uint32_t> rsig;
    std::vector<uint32_t> lsig = Signatures(vm, l, r, &nsig, &rsig);
    const bool one_to_many = vm.card == Cardinality::kOneToMany;
    // After this swap "lhs" is the "many" side (or either side for one-to-one).
    Matrix& many = one_to_many ? r : l;
    Matrix& one = one_to_many ? l : r;
    std::vector<uint32_t>& many_sig = one_to_many ? rsig : lsig;
    std::vector<uint32_t>& one_sig = one_to_many ? lsig : rsig;

    Collector c;
    std::unordered_map<uint64_t, size_t> pair_out;  // (many, one) series -> output series
    std::unordered_map<uint64_t, uint64_t> pair_hash;
    StepCursor mc(many), oc(one);
    std::vector<std::pair<uint32_t, double>> ms, os;
    std::vector<int64_t> one_at(nsig, -1);  // index into os, for this step
    std::vector<uint32_t> one_gen(nsig, 0);
    std::vector<uint32_t> matched_gen(nsig, 0);
    std::vector<std::vector<uint64_t>> matched_hashes;
    if (vm.card != Cardinality::kOneToOne) matched_hashes.resize(nsig);
    uint32_t gen = 0;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t t = g.At(i);
      mc.At(t, &ms);
      oc.At(t, &os);
      if (ms.empty() || os.empty()) continue;
      ++gen;
      for (size_t k = 0; k < os.size(); ++k) {
        uint32_t sig = one_sig[os[k].first];
        if (one_gen[sig] == gen) {
          std::string a = one[os[one_at[sig]].first].labels.ToString();
          std::string b = one[os[k].first].labels.ToString();
          if (a > b) std::swap(a, b);
          const Labels& lb = one[os[k].first].labels;
          Labels matched =
              vm.on ? lb.KeepOnly(vm.labels) : lb.WithoutNames(vm.labels).WithoutMetricName();
          Throw("found duplicate series for the match group " + matched.ToString() + " on the " +
                (one_to_many ? "left" : "right") + " hand-side of the operation: [" + a + ", " + b +
                "];many-to-many matching not allowed: matching labels must be unique on one "
                "side");
        }
        one_gen[sig] = gen;
        one_at[sig] = static_cast<int64_t>(k);
      }
      for (const auto& [msi, mv] : ms) {
        uint32_t sig = many_sig[msi];
        if (one_gen[sig] != gen) continue;
        const auto& [osi, ov] = os[one_at[sig]];
        double fl = one_to_many ? ov : mv;
        double fr = one_to_many ? mv : ov;
        bool keep;
        double v = ElemBinop(e.bin, fl, fr, &keep);
        if (e.return_bool) v = keep ? 1.0 : 0.0;
        uint64_t key = (static_cast<uint64_t>(msi) << 32) | osi;
        auto it = pair_out.find(key);
        if (it == pair_out.end()) {
          Labels metric = ResultMetric(many[msi].labels, one[osi].labels, e);
          pair_hash[key] = metric.Hash();
          it = pair_out.emplace(key, c.Get(std::move(metric))).first;
        }
        if (vm.card == Cardinality::kOneToOne) {
          if (matched_gen[sig] == gen) {
            Throw(
                "multiple matches for labels: many-to-one matching must be explicit "
                "(group_left/group_right)");
          }
          matched_gen[sig] = gen;
        } else {
          if (matched_gen[sig] != gen) {
            matched_gen[sig] = gen;
            matched_hashes[sig].clear();
          }
          uint64_t h = pair_hash[key];
          auto& seen = matched_hashes[sig];
          if (std::find(seen.begin(), seen.end(), h) != seen.end()) {
            Throw("multiple matches for labels: grouping labels must ensure unique matches");
          }
          seen.push_back(h);
        }
        if (!keep && !e.return_bool) continue;
        c.Add(it->second, t, v);
      }
    }
    return c.Finish();
  }

  // ---- Aggregations ------------------------------------------------------------------

  struct Group {
    bool seen = false;
    double value = 0, kahan = 0, mean = 0, count = 0;
    bool incremental = false;
    std::vector<double> values;                        // quantile
    std::vector<std::pair<double, uint32_t>> members;  // topk/bottomk
  };

  Matrix EvalAggregate(const Expr& e, const Grid& g) {
    if (e.agg == AggOp::kCountValues) return EvalCountValues(e, g);
    if (Matrix fused; TryFusedSumOfRange(e, g, &fused)) return fused;
    std::vector<double> param;
    const bool is_k = e.agg == AggOp::kTopk || e.agg == AggOp::kBottomk;
    if (is_k || e.agg == AggOp::kQuantile) param = EvalScalar(*e.param, g);
    Matrix in = Eval(*e.args[0], g);

    std::vector<std::string> names = e.grouping;
    if (e.without) names.push_back(std::string(kMetricName));
    names = Sorted(std::move(names));
    KeyIndex key_to_group(in.size());
    std::vector<uint32_t> group_of(in.size());
    std::vector<Labels> group_labels;
    for (size_t i = 0; i < in.size(); ++i) {
      uint64_t key = (!e.without && names.empty()) ? 0 : in[i].labels.HashFor(names, !e.without);
      auto [group, inserted] =
          key_to_group.FindOrInsert(key, static_cast<uint32_t>(group_labels.size()));
      if (inserted) {
        group_labels.push_back(e.without ? in[i].labels.WithoutNames(names)
                                         : in[i].labels.KeepOnly(names));
      }
      group_of[i] = group;
    }

    if (is_k) {
      double max_k = -HUGE_VAL;
      for (double k : param) {
        if (std::isnan(k)) Throw("Parameter value is NaN");
        max_k = std::max(max_k, k);
      }
      if (max_k < 1) return {};
      for (double k : param) {
        if (k >= 9.2e18) Throw("Scalar value " + FormatFloat(k) + " overflows int64");
        if (k <= -9.2e18) Throw("Scalar value " + FormatFloat(k) + " underflows int64");
      }
    }

    // topk/bottomk output input series, through a Collector. Every other aggregation outputs
    // one series per group straight into `out`: group label sets are distinct (equal sets
    // have equal keys) and each group gets at most one point per step, in step order.
    Collector c;
    Matrix out;
    if (!is_k) {
      out.resize(group_labels.size());
      for (size_t gi = 0; gi < group_labels.size(); ++gi) {
        out[gi].labels = std::move(group_labels[gi]);
      }
    }
    std::vector<size_t> series_out(in.size(), SIZE_MAX);
    std::vector<Group> groups(group_labels.size());
    StepCursor cur(in);
    std::vector<std::pair<uint32_t, double>> step;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t t = g.At(i);
      cur.At(t, &step);
      if (step.empty()) continue;
      for (auto& gr : groups) {
        gr.seen = false;
        gr.values.clear();
        gr.members.clear();
      }
      for (const auto& [si, v] : step) Accumulate(e.agg, &groups[group_of[si]], v, si);
      if (is_k) {
        int64_t k = std::min(static_cast<int64_t>(param[static_cast<size_t>(i)]),
                             static_cast<int64_t>(in.size()));
        if (k < 1) continue;
        const bool top = e.agg == AggOp::kTopk;
        for (auto& gr : groups) {
          if (!gr.seen) continue;
          auto better = [top](const std::pair<double, uint32_t>& a,
                              const std::pair<double, uint32_t>& b) {
            if (std::isnan(a.first)) return false;
            if (std::isnan(b.first)) return true;
            return top ? a.first > b.first : a.first < b.first;
          };
          std::stable_sort(gr.members.begin(), gr.members.end(), better);
          size_t take = std::min(gr.members.size(), static_cast<size_t>(k));
          for (size_t m = 0; m < take; ++m) {
            uint32_t si = gr.members[m].second;
            if (series_out[si] == SIZE_MAX) series_out[si] = c.Get(in[si].labels);
            c.Add(series_out[si], t, gr.members[m].first);
          }
        }
        continue;
      }
      double q = e.agg == AggOp::kQuantile ? param[static_cast<size_t>(i)] : 0;
      for (size_t gi = 0; gi < groups.size(); ++gi) {
        Group& gr = groups[gi];
        if (!gr.seen) continue;
        out[gi].points.push_back({t, Finalize(e.agg, &gr, q)});
      }
    }
    if (is_k) return c.Finish();
    std::erase_if(out, [](const Series& s) { return s.points.empty(); });
    return out;
  }

  // `sum [by|without (...)] (f(m[range]))`, f a one-argument range function such as rate,
  // increase or irate, m a selector with an equality matcher on __name__: each series is
  // decoded, run through f and added into its group's running sums one at a time
  // (Queryable::SelectEach), without the intermediate vector's sample vectors, label sets
  // and step cursor. The result is the general path's, bit for bit: every (group, step) adds
  // its series in selection order with the same Kahan compensation, groups come in the order
  // of their first series with a result, and samples count against max_samples as there (the
  // selected samples, then f's results). One metric name means f's output cannot hold two
  // series with one label set, so the general path's "same labelset" error cannot arise.
  // Returns false, having evaluated nothing, for any other shape.
  bool TryFusedSumOfRange(const Expr& e, const Grid& g, Matrix* out) {
    if (e.agg != AggOp::kSum) return false;
    const Expr& call = Unwrap(*e.args[0]);
    if (call.kind != Expr::Kind::kCall || call.args.size() != 1) return false;
    if (call.args[0]->type() != ValueType::kMatrix) return false;
    // A repeated call is answered from Eval's cache; keep that.
    if (!shared_node_.empty() && shared_node_.count(&call) > 0) return false;
    const Expr& sel = Unwrap(*call.args[0]);
    if (sel.kind != Expr::Kind::kMatrixSelector) return false;
    const std::string_view name = call.func->name;
    if (name == "last_over_time" || name == "absent_over_time") return false;
    RangeFunction fn = LookupRangeFunction(name);
    if (fn == nullptr) return false;
    bool one_name = false;
    for (const auto& m : sel.matchers) {
      if (m.type() == MatchType::kEqual && m.name() == kMetricName) one_name = true;
    }
    if (!one_name) return false;

    RangeSource src;
    src.range_ms = sel.range_ms;
    src.offset_ms = sel.offset_ms;
    src.has_at = sel.at != AtKind::kNone;
    if (src.has_at) src.at_ms = ResolveAt(sel);
    const int64_t lo = RefTime(src, g.start) - src.range_ms + 1;
    const int64_t hi = RefTime(src, g.At(g.n() - 1));

    std::vector<std::string> names = e.grouping;
    if (e.without) names.push_back(std::string(kMetricName));
    names = Sorted(std::move(names));
    const bool by_name =
        !e.without && std::binary_search(names.begin(), names.end(), std::string(kMetricName));
    const size_t n = static_cast<size_t>(g.n());
    struct Cell {
      double value = 0, kahan = 0;
      bool seen = false;
    };
    std::vector<Cell> cells;  // group-major: group gi's steps at [gi * n, gi * n + n)
    std::vector<Labels> group_labels;
    KeyIndex group_of_key(16);
    std::vector<std::pair<size_t, double>> results;  // (step index, f's value)
    RangeArgs args;
    args.range_ms = src.range_ms;
    int64_t selected = 0, produced = 0;
    core::Status st =
        q_.SelectEach(sel.matchers, lo, hi, [&](const Labels& labels, std::vector<Point>* pts) {
          selected += static_cast<int64_t>(pts->size());
          // Over the limit: stop here; Account below reports it as Select would.
          if (samples_ + selected > opt_.max_samples) return false;
          std::erase_if(*pts, [](const Point& p) { return IsStaleNaN(p.v); });
          if (pts->empty()) return true;
          results.clear();
          ForEachWindowIn(src, *pts, g, [&](int64_t i, std::span<const Point> w, int64_t ref) {
            args.range_start_ms = ref - src.range_ms;
            args.range_end_ms = ref;
            args.eval_ms = g.At(i);
            std::optional<double> v = fn(w, args);
            if (v) results.emplace_back(static_cast<size_t>(i), *v);
          });
          if (results.empty()) return true;
          produced += static_cast<int64_t>(results.size());
          // f drops __name__; grouping ignores it anyway unless `by` names it (`without`
          // lists it), so the name-less set is only built for `by (__name__, ...)`.
          Labels dropped;
          if (by_name) dropped = labels.WithoutMetricName();
          const Labels& out_labels = by_name ? dropped : labels;
          const uint64_t key =
              (!e.without && names.empty()) ? 0 : out_labels.HashFor(names, !e.without);
          const auto [group, inserted] =
              group_of_key.FindOrInsertGrowing(key, static_cast<uint32_t>(group_labels.size()));
          if (inserted) {
            group_labels.push_back(e.without ? out_labels.WithoutNames(names)
                                             : out_labels.KeepOnly(names));
            cells.resize(cells.size() + n);
          }
          Cell* row = cells.data() + static_cast<size_t>(group) * n;
          for (const auto& [i, v] : results) {
            Cell& c = row[i];
            if (!c.seen) {
              c = Cell{v, 0, true};
            } else {
              KahanInc(v, &c.value, &c.kahan);
            }
          }
          return true;
        });
    if (!st.ok()) throw EvalError{st};
    Account(selected);
    Account(produced);
    out->resize(group_labels.size());
    for (size_t gi = 0; gi < group_labels.size(); ++gi) {
      Series& s = (*out)[gi];
      s.labels = std::move(group_labels[gi]);
      const Cell* row = cells.data() + gi * n;
      for (size_t i = 0; i < n; ++i) {
        if (!row[i].seen) continue;
        const double v = row[i].value;
        s.points.push_back({g.At(static_cast<int64_t>(i)), std::isinf(v) ? v : v + row[i].kahan});
      }
    }
    return true;
  }

  static void Accumulate(AggOp op, Group* gr, double f, uint32_t si) {
    if (!gr->seen) {
      gr->seen = true;
      gr->value = f;
      gr->mean = f;
      gr->count = 1;
      gr->kahan = 0;
      gr->incremental = false;
      switch (op) {
        case AggOp::kStddev:
        case AggOp::kStdvar:
          gr->value = (std::isnan(f) || std::isinf(f)) ? std::nan("") : 0;
          break;
        case AggOp::kQuantile:
          gr->values.push_back(f);
          break;
        case AggOp::kGroup:
          gr->value = 1;
          break;
        case AggOp::kTopk:
        case AggOp::kBottomk:
          gr->members.emplace_back(f, si);
          break;
        default:
          break;
      }
      return;
    }
    switch (op) {
      case AggOp::kSum:
        KahanInc(f, &gr->value, &gr->kahan);
        break;
      case AggOp::kAvg: {
        gr->count++;
        if (!gr->incremental) {
          double sum = gr->value, c = gr->kahan;
          KahanInc(f, &sum, &c);
          if (!std::isinf(sum)) {
            gr->value = sum;
            gr->kahan = c;
            break;
          }
          // The running sum would overflow: continue with an incremental mean.
          gr->incremental = true;
          gr->mean = gr->value / (gr->count - 1);
          gr->kahan /= gr->count - 1;
        }
        double q = (gr->count - 1) / gr->count;
        double mean = q * gr->mean, c = q * gr->kahan;
        KahanInc(f / gr->count, &mean, &c);
        gr->mean = mean;
        gr->kahan = c;
        break;
      }
      case AggOp::kMax:
        if (gr->value < f || std::isnan(gr->value)) gr->value = f;
        break;
      case AggOp::kMin:
        if (gr->value > f || std::isnan(gr->value)) gr->value = f;
        break;
      case AggOp::kCount:
        gr->count++;
        break;
      case AggOp::kStddev:
      case AggOp::kStdvar: {
        gr->count++;
        double delta = f - gr->mean;
        gr->mean += delta / gr->count;
        gr->value += delta * (f - gr->mean);
        break;
      }
      case AggOp::kQuantile:
        gr->values.push_back(f);
        break;
      case AggOp::kTopk:
      case AggOp::kBottomk:
        gr->members.emplace_back(f, si);
        break;
      default:
        break;
    }
  }

  static double Finalize(AggOp op, Group* gr, double q) {
    switch (op) {
      case AggOp::kSum:
        return std::isinf(gr->value) ? gr->value : gr->value + gr->kahan;
      case AggOp::kAvg:
        if (gr->incremental) return gr->mean + gr->kahan;
        return gr->value / gr->count + gr->kahan / gr->count;
      case AggOp::kCount:
        return gr->count;
      case AggOp::kStdvar:
        return gr->value / gr->count;
      case AggOp::kStddev:
        return std::sqrt(gr->value / gr->count);
      case AggOp::kQuantile:
        return Quantile(q, &gr->values);
      default:
        return gr->value;
    }
  }

  Matrix EvalCountValues(const Expr& e, const Grid& g) {
    const std::string& label = StringArg(*e.param);
    if (!IsValidLabelName(label)) Throw("invalid label name " + QuoteString(label));
    Matrix in = Eval(*e.args[0], g);
    std::vector<std::string> names = e.grouping;
    if (e.without) {
      names.push_back(std::string(kMetricName));
    } else {
      names.push_back(label);
    }
    names = Sorted(std::move(names));
    Collector c;
    StepCursor cur(in);
    std::vector<std::pair<uint32_t, double>> step;
    std::unordered_map<uint64_t, std::pair<size_t, double>> counts;
    std::vector<uint64_t> order;
    for (int64_t i = 0; i < g.n(); ++i) {
      int64_t t = g.At(i);
      cur.At(t, &step);
      counts.clear();
      order.clear();
      for (const auto& [si, v] : step) {
        Labels l = in[si].labels.With(label, FormatFixed(v));
        uint64_t key = l.HashFor(names, !e.without);
        auto it = counts.find(key);
        if (it == counts.end()) {
          Labels gl = e.without ? l.WithoutNames(names) : l.KeepOnly(names);
          counts.emplace(key, std::make_pair(c.Get(std::move(gl)), 1.0));
          order.push_back(key);
        } else {
          it->second.second += 1;
        }
      }
      for (uint64_t key : order) c.Add(counts[key].first, t, counts[key].second);
    }
    return c.Finish();
  }

  struct SharedKey {
    uint32_t id;
    int64_t start, end, step;
    bool operator==(const SharedKey&) const = default;
  };
  struct SharedKeyHash {
    size_t operator()(const SharedKey& k) const {
      uint64_t h = k.id;
      for (int64_t v : {k.start, k.end, k.step}) {
        h = (h ^ static_cast<uint64_t>(v)) * 0x9e3779b97f4a7c15ull;
      }
      return static_cast<size_t>(h ^ (h >> 29));
    }
  };

  const Queryable& q_;
  const EngineOptions& opt_;
  int64_t query_start_;
  int64_t query_end_;
  int64_t samples_ = 0;
  std::unique_ptr<Expr> time_vector_;
  // Common subexpressions (FindCommonSubexpressions): node -> id of its text, and the value
  // of each id per grid.
  std::unordered_map<const Expr*, uint32_t> shared_node_;
  std::unordered_map<SharedKey, Matrix, SharedKeyHash> shared_value_;
};

template <typename F>
core::Result<Value> Guard(F&& f) {
  try {
    return f();
  } catch (const EvalError& e) {
    return e.status;
  } catch (const std::bad_alloc&) {
    return core::Status(core::StatusCode::kResourceExhausted, "out of memory evaluating the query");
  }
}

void SortMatrix(Matrix* m) {
  std::sort(m->begin(), m->end(), [](const Series& a, const Series& b) {
    return Labels::Compare(a.labels, b.labels) < 0;
  });
}

}  // namespace

core::Result<Value> Engine::InstantQuery(const Queryable& storage, std::string_view query,
                                         int64_t time_ms) const {
  auto expr = ParseExpr(query, options_.parse);
  if (!expr.ok()) return expr.status();
  return EvalInstant(storage, **expr, time_ms);
}

core::Result<Value> Engine::RangeQuery(const Queryable& storage, std::string_view query,
                                       int64_t start_ms, int64_t end_ms, int64_t step_ms) const {
  auto expr = ParseExpr(query, options_.parse);
  if (!expr.ok()) return expr.status();
  return EvalRange(storage, **expr, start_ms, end_ms, step_ms);
}

core::Result<Value> Engine::EvalInstant(const Queryable& storage, const Expr& expr,
                                        int64_t time_ms) const {
  return Guard([&]() -> core::Result<Value> {
    Evaluator ev(storage, options_, time_ms, time_ms);
    ev.FindCommonSubexpressions(expr);
    const Expr& e = Unwrap(expr);
    switch (expr.type()) {
      case ValueType::kString:
        return Value(String{time_ms, e.str});
      case ValueType::kMatrix: {
        Matrix m = ev.EvalRangeVectorAt(e, time_ms);
        SortMatrix(&m);
        return Value(std::move(m));
      }
      case ValueType::kScalar: {
        std::vector<double> v = ev.EvalScalar(expr, Grid{time_ms, time_ms, 1});
        return Value(Scalar{time_ms, v[0]});
      }
      default: {
        Matrix m = ev.Eval(expr, Grid{time_ms, time_ms, 1});
        Vector out;
        out.reserve(m.size());
        for (auto& s : m) out.push_back(Sample{std::move(s.labels), time_ms, s.points[0].v});
        return Value(std::move(out));
      }
    }
  });
}

core::Result<Value> Engine::EvalRange(const Queryable& storage, const Expr& expr, int64_t start_ms,
                                      int64_t end_ms, int64_t step_ms) const {
  if (step_ms <= 0) {
    return core::InvalidArgument(
        "zero or negative query resolution step widths are not accepted. Try a positive "
        "integer");
  }
  if (end_ms < start_ms)
    return core::InvalidArgument("end timestamp must not be before start time");
  if ((end_ms - start_ms) / step_ms + 1 > options_.max_steps) {
    return core::InvalidArgument("exceeded maximum resolution of " +
                                 std::to_string(options_.max_steps) +
                                 " points per timeseries. Try decreasing the query resolution "
                                 "(?step=XX)");
  }
  ValueType t = expr.type();
  if (t != ValueType::kScalar && t != ValueType::kVector) {
    return core::InvalidArgument(std::string("invalid expression type \"") + ValueTypeDocName(t) +
                                 "\" for range query, must be Scalar or instant Vector");
  }
  return Guard([&]() -> core::Result<Value> {
    Evaluator ev(storage, options_, start_ms, end_ms);
    ev.FindCommonSubexpressions(expr);
    Matrix m = ev.Eval(expr, Grid{start_ms, end_ms, step_ms});
    SortMatrix(&m);
    return Value(std::move(m));
  });
}

}  // namespace llmscope::promql
