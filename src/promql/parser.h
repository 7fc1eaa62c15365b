#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "core/status.h"
#include "promql/ast.h"

namespace llmscope::promql {

struct ParseOptions {
  // Deepest nesting of parentheses, calls, aggregations and operators accepted; deeper
  // queries fail with a clear error instead of exhausting the stack.
  int max_depth = 200;
  // Longest query accepted, in bytes.
  size_t max_query_bytes = 64 * 1024;
};

// Parses and type-checks a PromQL expression. Errors read like Prometheus':
// "1:14: parse error: unexpected identifier \"foo\"" (line:column, 1-based).
// Thread-safety: a pure function.
core::Result<std::unique_ptr<Expr>> ParseExpr(std::string_view query,
                                              const ParseOptions& options = {});

// Parses a Prometheus duration ("1h30m", "5m", "90s", "1.5" seconds is not a duration) into
// milliseconds; units y w d h m s ms, each at most once, in that order. "0" is valid.
core::Result<int64_t> ParseDuration(std::string_view s);

// Formats milliseconds as a Prometheus duration ("1h30m", "0s").
std::string FormatDuration(int64_t ms);

}  // namespace llmscope::promql
