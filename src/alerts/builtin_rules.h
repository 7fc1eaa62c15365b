#pragma once

#include <string>
#include <string_view>

#include "alerts/rule_file.h"
#include "core/status.h"

namespace llmscope::alerts {

// The built-in LLM alert pack (builtin_rules.yaml, embedded at build time): latency (P99,
// P95 TTFT, tokens/s), error rate, request-rate drops, cost budgets, pipeline and storage
// health, and llmscope's own availability (for an external Prometheus).
// Thread-safety: pure functions.

// The pack as a Prometheus rule file (the embedded YAML).
std::string_view BuiltinRulesYaml();

// The path the pack is reported under in rule groups and errors.
inline constexpr std::string_view kBuiltinRulesPath = "<builtin>/llmscope_rules.yaml";

// The pack, parsed and validated.
core::Result<RuleFile> BuiltinRules();

enum class RuleExportFormat {
  kPrometheus,      // a Prometheus rule file
  kPrometheusRule,  // a Kubernetes PrometheusRule (monitoring.coreos.com/v1) manifest
};

// Parses "prometheus" or "prometheusrule".
core::Result<RuleExportFormat> ParseRuleExportFormat(std::string_view name);

// The pack in `format`, ready for `promtool check rules` or `kubectl apply`.
std::string ExportBuiltinRules(RuleExportFormat format);

}  // namespace llmscope::alerts
