#pragma once

#include <string_view>

namespace llmscope::metrics {

// Prometheus data-model syntax checks. Pure functions; thread-safe.
// A metric name matches [a-zA-Z_:][a-zA-Z0-9_:]* and does not start with the reserved "__".
bool IsValidMetricName(std::string_view name);
// A label name matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with the reserved "__".
bool IsValidLabelName(std::string_view name);

}  // namespace llmscope::metrics
