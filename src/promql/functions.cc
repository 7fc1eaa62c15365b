#include "promql/functions.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace llmscope::promql {
namespace {

using Opt = std::optional<double>;

Opt Rate(std::span<const Point> w, const RangeArgs& a) {
  return ExtrapolatedRate(w, a, true, true);
}
Opt Increase(std::span<const Point> w, const RangeArgs& a) {
  return ExtrapolatedRate(w, a, true, false);
}
Opt Delta(std::span<const Point> w, const RangeArgs& a) {
  return ExtrapolatedRate(w, a, false, false);
}

// irate/idelta: the last two samples only.
Opt InstantValue(std::span<const Point> w, bool is_rate) {
  if (w.size() < 2) return std::nullopt;
  const Point& prev = w[w.size() - 2];
  const Point& last = w[w.size() - 1];
  int64_t interval = last.t - prev.t;
  if (interval == 0) return std::nullopt;
  // On a counter reset the increase is the new value itself.
  double v = (is_rate && last.v < prev.v) ? last.v : last.v - prev.v;
  if (is_rate) v /= static_cast<double>(interval) / 1000.0;
  return v;
}
Opt Irate(std::span<const Point> w, const RangeArgs&) { return InstantValue(w, true); }
Opt Idelta(std::span<const Point> w, const RangeArgs&) { return InstantValue(w, false); }

Opt Resets(std::span<const Point> w, const RangeArgs&) {
  double n = 0;
  for (size_t i = 1; i < w.size(); ++i) {
    if (w[i].v < w[i - 1].v) ++n;
  }
  return n;
}

Opt Changes(std::span<const Point> w, const RangeArgs&) {
  double n = 0;
  for (size_t i = 1; i < w.size(); ++i) {
    double c = w[i].v, p = w[i - 1].v;
    if (!(c == p || (std::isnan(c) && std::isnan(p)))) ++n;
  }
  return n;
}

// Least-squares fit with x in seconds relative to intercept_ms (Prometheus'
// linearRegression, Kahan-summed; a constant series has slope 0).
void LinearRegression(std::span<const Point> w, int64_t intercept_ms, double* slope,
                      double* intercept) {
  double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
  double init = w[0].v;
  bool const_y = true;
  for (size_t i = 0; i < w.size(); ++i) {
    if (const_y && i > 0 && w[i].v != init) const_y = false;
    n += 1;
    double x = static_cast<double>(w[i].t - intercept_ms) / 1e3;
    KahanInc(x, &sx, &cx);
    KahanInc(w[i].v, &sy, &cy);
    KahanInc(x * w[i].v, &sxy, &cxy);
    KahanInc(x * x, &sx2, &cx2);
  }
  if (const_y) {
    if (std::isinf(init)) {
      *slope = *intercept = std::nan("");
    } else {
      *slope = 0;
      *intercept = init;
    }
    return;
  }
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  double cov = sxy - sx * sy / n;
  double var = sx2 - sx * sx / n;
  *slope = cov / var;
  *intercept = sy / n - *slope * sx / n;
}

Opt Deriv(std::span<const Point> w, const RangeArgs&) {
  if (w.size() < 2) return std::nullopt;
  double slope, intercept;
  LinearRegression(w, w[0].t, &slope, &intercept);
  return slope;
}

Opt PredictLinear(std::span<const Point> w, const RangeArgs& a) {
  if (w.size() < 2) return std::nullopt;
  double slope, intercept;
  LinearRegression(w, a.eval_ms, &slope, &intercept);
  return slope * a.param + intercept;
}

Opt AvgOverTime(std::span<const Point> w, const RangeArgs&) {
  // Direct mean with Kahan summation while the sum stays finite, then an incremental mean
  // (Prometheus' compromise between accuracy and overflow safety).
  double sum = w[0].v, count = 1, mean = 0, c = 0;
  bool incremental = false;
  for (size_t i = 1; i < w.size(); ++i) {
    double f = w[i].v;
    count = static_cast<double>(i + 1);
    if (!incremental) {
      double ns = sum, nc = c;
      KahanInc(f, &ns, &nc);
      if (!std::isinf(ns)) {
        sum = ns;
        c = nc;
        continue;
      }
      incremental = true;
      mean = sum / (count - 1);
      c /= count - 1;
    }
    double q = (count - 1) / count;
    double m = q * mean, mc = q * c;
    KahanInc(f / count, &m, &mc);
    mean = m;
    c = mc;
  }
  if (incremental) return mean + c;
  return sum / count + c / count;
}

Opt SumOverTime(std::span<const Point> w, const RangeArgs&) {
  double sum = 0, c = 0;
  for (const auto& p : w) KahanInc(p.v, &sum, &c);
  return std::isinf(sum) ? sum : sum + c;
}

Opt CountOverTime(std::span<const Point> w, const RangeArgs&) {
  return static_cast<double>(w.size());
}

Opt MaxOverTime(std::span<const Point> w, const RangeArgs&) {
  double m = w[0].v;
  for (const auto& p : w) {
    if (p.v > m || std::isnan(m)) m = p.v;
  }
  return m;
}

Opt MinOverTime(std::span<const Point> w, const RangeArgs&) {
  double m = w[0].v;
  for (const auto& p : w) {
    if (p.v < m || std::isnan(m)) m = p.v;
  }
  return m;
}

Opt LastOverTime(std::span<const Point> w, const RangeArgs&) { return w.back().v; }
Opt PresentOverTime(std::span<const Point>, const RangeArgs&) { return 1.0; }

Opt QuantileOverTime(std::span<const Point> w, const RangeArgs& a) {
  std::vector<double> v;
  v.reserve(w.size());
  for (const auto& p : w) v.push_back(p.v);
  return Quantile(a.param, &v);
}

double VarianceOverTime(std::span<const Point> w) {
  double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
  for (const auto& p : w) {
    count++;
    double delta = p.v - (mean + cmean);
    KahanInc(delta / count, &mean, &cmean);
    KahanInc(delta * (p.v - (mean + cmean)), &aux, &caux);
  }
  return (aux + caux) / count;
}
Opt StddevOverTime(std::span<const Point> w, const RangeArgs&) {
  return std::sqrt(VarianceOverTime(w));
}
Opt StdvarOverTime(std::span<const Point> w, const RangeArgs&) { return VarianceOverTime(w); }

struct NamedRange {
  const char* name;
  RangeFunction fn;
};
constexpr NamedRange kRangeFunctions[] = {
    {"rate", Rate},
    {"increase", Increase},
    {"delta", Delta},
    {"irate", Irate},
    {"idelta", Idelta},
    {"resets", Resets},
    {"changes", Changes},
    {"deriv", Deriv},
    {"predict_linear", PredictLinear},
    {"avg_over_time", AvgOverTime},
    {"sum_over_time", SumOverTime},
    {"count_over_time", CountOverTime},
    {"max_over_time", MaxOverTime},
    {"min_over_time", MinOverTime},
    {"last_over_time", LastOverTime},
    {"present_over_time", PresentOverTime},
    {"quantile_over_time", QuantileOverTime},
    {"stddev_over_time", StddevOverTime},
    {"stdvar_over_time", StdvarOverTime},
};

double Sgn(double v) { return v < 0 ? -1 : v > 0 ? 1 : v; }
double Deg(double v) { return v * 180 / M_PI; }
double Rad(double v) { return v * M_PI / 180; }
double Abs(double v) { return std::fabs(v); }
double Ceil(double v) { return std::ceil(v); }
double Floor(double v) { return std::floor(v); }
double Exp(double v) { return std::exp(v); }
double Sqrt(double v) { return std::sqrt(v); }
double Ln(double v) { return std::log(v); }
double Log2(double v) { return std::log2(v); }
double Log10(double v) { return std::log10(v); }
double Sin(double v) { return std::sin(v); }
double Cos(double v) { return std::cos(v); }
double Tan(double v) { return std::tan(v); }
double Asin(double v) { return std::asin(v); }
double Acos(double v) { return std::acos(v); }
double Atan(double v) { return std::atan(v); }
double Sinh(double v) { return std::sinh(v); }
double Cosh(double v) { return std::cosh(v); }
double Tanh(double v) { return std::tanh(v); }
double Asinh(double v) { return std::asinh(v); }
double Acosh(double v) { return std::acosh(v); }
double Atanh(double v) { return std::atanh(v); }

struct NamedMath {
  const char* name;
  MathFunction fn;
};
constexpr NamedMath kMathFunctions[] = {
    {"abs", Abs},     {"ceil", Ceil},   {"floor", Floor}, {"exp", Exp},   {"sqrt", Sqrt},
    {"ln", Ln},       {"log2", Log2},   {"log10", Log10}, {"sgn", Sgn},   {"deg", Deg},
    {"rad", Rad},     {"sin", Sin},     {"cos", Cos},     {"tan", Tan},   {"asin", Asin},
    {"acos", Acos},   {"atan", Atan},   {"sinh", Sinh},   {"cosh", Cosh}, {"tanh", Tanh},
    {"asinh", Asinh}, {"acosh", Acosh}, {"atanh", Atanh},
};

// Civil date from days since 1970-01-01 (proleptic Gregorian; H. Hinnant's algorithm).
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

struct Civil {
  int64_t year;
  unsigned month, day, hour, minute, weekday, yday;
};

// Go's time.Unix(int64(f), 0).UTC(); nullopt for values int64 cannot hold.
std::optional<Civil> ToCivil(double f) {
  if (!std::isfinite(f) || std::fabs(f) > 9.2e15) return std::nullopt;
  auto secs = static_cast<int64_t>(f);
  int64_t days = secs / 86400;
  int64_t rem = secs % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  Civil c;
  CivilFromDays(days, &c.year, &c.month, &c.day);
  c.hour = static_cast<unsigned>(rem / 3600);
  c.minute = static_cast<unsigned>(rem % 3600 / 60);
  c.weekday = static_cast<unsigned>(((days % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  static constexpr unsigned kCum[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  c.yday = kCum[c.month - 1] + c.day + (c.month > 2 && IsLeap(c.year) ? 1 : 0);
  return c;
}

template <typename F>
double DateField(double v, F f) {
  auto c = ToCivil(v);
  return c ? static_cast<double>(f(*c)) : std::nan("");
}

double Minute(double v) {
  return DateField(v, [](const Civil& c) { return c.minute; });
}
double Hour(double v) {
  return DateField(v, [](const Civil& c) { return c.hour; });
}
double DayOfWeek(double v) {
  return DateField(v, [](const Civil& c) { return c.weekday; });
}
double DayOfMonth(double v) {
  return DateField(v, [](const Civil& c) { return c.day; });
}
double DayOfYear(double v) {
  return DateField(v, [](const Civil& c) { return c.yday; });
}
double Month(double v) {
  return DateField(v, [](const Civil& c) { return c.month; });
}
double Year(double v) {
  return DateField(v, [](const Civil& c) { return static_cast<double>(c.year); });
}
double DaysInMonth(double v) {
  return DateField(v, [](const Civil& c) {
    static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return kDays[c.month - 1] + (c.month == 2 && IsLeap(c.year) ? 1u : 0u);
  });
}

constexpr NamedMath kDateFunctions[] = {
    {"minute", Minute},         {"hour", Hour},
    {"day_of_week", DayOfWeek}, {"day_of_month", DayOfMonth},
    {"day_of_year", DayOfYear}, {"days_in_month", DaysInMonth},
    {"month", Month},           {"year", Year},
};

// Relative equality as Prometheus' almost.Equal, for the bucket noise tolerance.
bool AlmostEqual(double a, double b, double eps) {
  if (a == b) return true;
  constexpr double kMinNormal = 2.2250738585072014e-308;
  double abs_sum = std::fabs(a) + std::fabs(b);
  double diff = std::fabs(a - b);
  if (a == 0 || b == 0 || abs_sum < kMinNormal) return diff < eps * kMinNormal;
  return diff / std::min(abs_sum, std::numeric_limits<double>::max()) < eps;
}

}  // namespace

RangeFunction LookupRangeFunction(std::string_view name) {
  for (const auto& f : kRangeFunctions) {
    if (name == f.name) return f.fn;
  }
  return nullptr;
}

MathFunction LookupMathFunction(std::string_view name) {
  for (const auto& f : kMathFunctions) {
    if (name == f.name) return f.fn;
  }
  return nullptr;
}

MathFunction LookupDateFunction(std::string_view name) {
  for (const auto& f : kDateFunctions) {
    if (name == f.name) return f.fn;
  }
  return nullptr;
}

std::optional<double> ExtrapolatedRate(std::span<const Point> w, const RangeArgs& a,
                                       bool is_counter, bool is_rate) {
  if (w.size() < 2) return std::nullopt;
  const Point& first = w.front();
  const Point& last = w.back();
  double result = last.v - first.v;
  if (is_counter) {
    // A decrease is a counter reset: the value before it was lost and is added back.
    for (size_t i = 1; i < w.size(); ++i) {
      if (w[i].v < w[i - 1].v) result += w[i - 1].v;
    }
  }
  double to_start = static_cast<double>(first.t - a.range_start_ms) / 1000;
  double to_end = static_cast<double>(a.range_end_ms - last.t) / 1000;
  double sampled = static_cast<double>(last.t - first.t) / 1000;
  double avg_step = sampled / static_cast<double>(w.size() - 1);
  double threshold = avg_step * 1.1;
  // Extrapolate to a window boundary only when a sample is about where one is expected;
  // otherwise assume the series starts/ends half a step beyond its first/last sample.
  if (to_start >= threshold) to_start = avg_step / 2;
  if (is_counter) {
    // A counter cannot go below zero: do not extrapolate past the point where it would.
    double to_zero = to_start;
    if (result > 0 && first.v >= 0) to_zero = sampled * (first.v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  if (to_end >= threshold) to_end = avg_step / 2;
  double factor = sampled != 0 ? (sampled + to_start + to_end) / sampled : 1.0;
  if (is_rate) factor /= static_cast<double>(a.range_ms) / 1000;
  return result * factor;
}

double BucketQuantile(double q, std::vector<Bucket>* buckets) {
  if (std::isnan(q)) return std::nan("");
  if (q < 0) return -HUGE_VAL;
  if (q > 1) return HUGE_VAL;
  auto& b = *buckets;
  std::stable_sort(b.begin(), b.end(),
                   [](const Bucket& x, const Bucket& y) { return x.upper_bound < y.upper_bound; });
  if (b.empty() || !(std::isinf(b.back().upper_bound) && b.back().upper_bound > 0)) {
    return std::nan("");
  }
  // Coalesce buckets with equal bounds (e.g. le="1" and le="1.0").
  size_t n = 0;
  for (size_t i = 1; i < b.size(); ++i) {
    if (b[i].upper_bound == b[n].upper_bound) {
      b[n].count += b[i].count;
    } else {
      b[++n] = b[i];
    }
  }
  b.resize(n + 1);
  // Ignore float noise between neighbours, then force monotonic counts.
  double prev = b[0].count;
  for (size_t i = 1; i < b.size(); ++i) {
    double curr = b[i].count;
    if (curr == prev) continue;
    if (AlmostEqual(prev, curr, 1e-12)) {
      b[i].count = prev;
      continue;
    }
    if (curr < prev) {
      b[i].count = prev;
      continue;
    }
    prev = curr;
  }
  if (b.size() < 2) return std::nan("");
  double observations = b.back().count;
  if (observations == 0) return std::nan("");
  double rank = q * observations;
  // First bucket (excluding +Inf) whose count reaches the rank.
  size_t idx = 0;
  {
    size_t lo = 0, hi = b.size() - 1;
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (b[mid].count >= rank) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    idx = lo;
  }
  if (idx == b.size() - 1) return b[b.size() - 2].upper_bound;
  if (idx == 0 && b[0].upper_bound <= 0) return b[0].upper_bound;
  double start = 0;
  double end = b[idx].upper_bound;
  double count = b[idx].count;
  if (idx > 0) {
    start = b[idx - 1].upper_bound;
    count -= b[idx - 1].count;
    rank -= b[idx - 1].count;
  }
  return start + (end - start) * (rank / count);
}

double Quantile(double q, std::vector<double>* values) {
  auto& v = *values;
  if (v.empty() || std::isnan(q)) return std::nan("");
  if (q < 0) return -HUGE_VAL;
  if (q > 1) return HUGE_VAL;
  std::stable_sort(v.begin(), v.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    return a < b;
  });
  double n = static_cast<double>(v.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return v[static_cast<size_t>(lower)] * (1 - weight) + v[static_cast<size_t>(upper)] * weight;
}

void KahanInc(double inc, double* sum, double* c) {
  double t = *sum + inc;
  if (std::isinf(t)) {
    *c = 0;
  } else if (std::fabs(*sum) >= std::fabs(inc)) {
    *c += (*sum - t) + inc;
  } else {
    *c += (inc - t) + *sum;
  }
  *sum = t;
}

std::string FormatFixed(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

}  // namespace llmscope::promql
