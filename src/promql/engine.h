#pragma once

#include <cstdint>
#include <string_view>

#include "core/status.h"
#include "promql/ast.h"
#include "promql/parser.h"
#include "promql/queryable.h"
#include "promql/value.h"

namespace llmscope::promql {

struct EngineOptions {
  // How far back an instant selector looks for the latest sample (Prometheus' default 5m).
  int64_t lookback_delta_ms = 5 * 60 * 1000;
  // Resolution of a subquery written without a step, as in `x[1h:]` (Prometheus uses the
  // global evaluation interval, 1m by default).
  int64_t default_subquery_step_ms = 60 * 1000;
  // Most steps in a range query (Prometheus' HTTP API limit, 11000).
  int64_t max_steps = 11000;
  // Most evaluation steps of one subquery.
  int64_t max_subquery_steps = 1000000;
  // Most samples one query may load from storage plus hold in intermediate results
  // (Prometheus' --query.max-samples default, 50M).
  int64_t max_samples = 50000000;
  ParseOptions parse;
};

// Evaluates PromQL against a Queryable with Prometheus' semantics (float samples only).
// Failures are values: a parse error (InvalidArgument, "1:5: parse error: ..."), an
// execution error (InvalidArgument, e.g. "vector cannot contain metrics with the same
// labelset"), a limit (ResourceExhausted) or a storage error passed through.
// Thread-safety: immutable after construction; every method may be called concurrently.
class Engine {
 public:
  explicit Engine(EngineOptions options = {}) : options_(options) {}

  // Instant query at time_ms: Scalar, String, Vector, or Matrix (for a range-vector
  // expression such as `x[5m]`).
  core::Result<Value> InstantQuery(const Queryable& storage, std::string_view query,
                                   int64_t time_ms) const;
  // Range query over [start_ms, end_ms] every step_ms: always a Matrix sorted by labels
  // (a scalar expression yields one series with no labels).
  core::Result<Value> RangeQuery(const Queryable& storage, std::string_view query, int64_t start_ms,
                                 int64_t end_ms, int64_t step_ms) const;

  // The same, for an expression parsed once with ParseExpr (rules evaluated repeatedly).
  core::Result<Value> EvalInstant(const Queryable& storage, const Expr& expr,
                                  int64_t time_ms) const;
  core::Result<Value> EvalRange(const Queryable& storage, const Expr& expr, int64_t start_ms,
                                int64_t end_ms, int64_t step_ms) const;

  const EngineOptions& options() const { return options_; }

 private:
  EngineOptions options_;
};

}  // namespace llmscope::promql
