#pragma once

// Numeric kernels of the PromQL functions, separate from the evaluator so they can be
// tested on plain sample windows. All follow Prometheus' promql/functions.go and
// promql/quantile.go; comments note where behaviour is subtle.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "promql/value.h"

namespace llmscope::promql {

// Context of one range-function evaluation: the window is (range_start_ms, range_end_ms].
struct RangeArgs {
  int64_t range_ms = 0;
  int64_t range_start_ms = 0;
  int64_t range_end_ms = 0;
  int64_t eval_ms = 0;  // the evaluation timestamp (predict_linear's intercept)
  double param = 0;     // quantile_over_time's q, predict_linear's t
};

// A function over a non-empty window of float samples; nullopt: no output at this step.
using RangeFunction = std::optional<double> (*)(std::span<const Point>, const RangeArgs&);

// rate, increase, delta, irate, idelta, resets, changes, deriv, predict_linear, the
// *_over_time family (but absent_over_time); nullptr for other names.
RangeFunction LookupRangeFunction(std::string_view name);

// abs, ceil, floor, exp, sqrt, ln, log2, log10, sgn, deg, rad and the trigonometric
// functions; nullptr for other names.
using MathFunction = double (*)(double);
MathFunction LookupMathFunction(std::string_view name);

// minute, hour, day_of_week, day_of_month, day_of_year, days_in_month, month, year of a
// Unix time in seconds (UTC); nullptr for other names.
MathFunction LookupDateFunction(std::string_view name);

// Prometheus' extrapolatedRate (rate, increase, delta) on a window.
std::optional<double> ExtrapolatedRate(std::span<const Point> w, const RangeArgs& a,
                                       bool is_counter, bool is_rate);

struct Bucket {
  double upper_bound;
  double count;
};
// Prometheus' BucketQuantile for classic histograms: sorts and coalesces buckets, ignores
// tiny float noise, forces monotonicity, interpolates linearly inside the bucket; NaN
// without a +Inf bucket, with fewer than two buckets or no observations; -Inf/+Inf for q
// below 0 / above 1. Reorders *buckets.
double BucketQuantile(double q, std::vector<Bucket>* buckets);

// The q-quantile of values (NaN sorted lowest), interpolating between neighbours, as the
// `quantile` aggregation and quantile_over_time. Reorders *values.
double Quantile(double q, std::vector<double>* values);

// Kahan-Neumaier compensated addition: *sum += inc with the error kept in *c.
void KahanInc(double inc, double* sum, double* c);

// A float in Go's strconv.FormatFloat(v, 'f', -1, 64) form (count_values' label values).
std::string FormatFixed(double v);

}  // namespace llmscope::promql
