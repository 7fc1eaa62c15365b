#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "promql/labels.h"

namespace llmscope::promql {

// Prometheus' staleness marker: a NaN with a distinctive payload, written when a series
// disappears. A selector that finds it as the latest sample reports no value.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ull;
inline double StaleNaN() {
  double d;
  std::memcpy(&d, &kStaleNaNBits, sizeof d);
  return d;
}
inline bool IsStaleNaN(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b == kStaleNaNBits;
}

// One float sample; t in milliseconds since the Unix epoch (as Prometheus).
struct Point {
  int64_t t = 0;
  double v = 0;
};

// A labelled run of samples sorted by time: a stored series, or one element of a Matrix.
struct Series {
  Labels labels;
  std::vector<Point> points;
};

// One element of an instant vector.
struct Sample {
  Labels labels;
  int64_t t = 0;
  double v = 0;
};

using Vector = std::vector<Sample>;
using Matrix = std::vector<Series>;

struct Scalar {
  int64_t t = 0;
  double v = 0;
};

struct String {
  int64_t t = 0;
  std::string v;
};

// The result of a query, shaped like the four "resultType"s of Prometheus' HTTP API:
// "scalar", "string", "vector" (instant query), "matrix" (range query, or an instant query
// of a range vector). A range query's Matrix is sorted by labels.
using Value = std::variant<Scalar, String, Vector, Matrix>;

// "scalar", "string", "vector" or "matrix".
const char* ValueTypeName(const Value& v);

// Formats a float as Prometheus does in text (shortest round-trip; +Inf, -Inf, NaN).
std::string FormatFloat(double v);

}  // namespace llmscope::promql
