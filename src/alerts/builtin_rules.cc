#include "alerts/builtin_rules.h"

namespace llmscope::alerts {

namespace internal {
std::string_view BuiltinRulesYaml();  // generated from builtin_rules.yaml
}  // namespace internal

std::string_view BuiltinRulesYaml() { return internal::BuiltinRulesYaml(); }

core::Result<RuleFile> BuiltinRules() {
  return ParseRuleFile(kBuiltinRulesPath, BuiltinRulesYaml());
}

core::Result<RuleExportFormat> ParseRuleExportFormat(std::string_view name) {
  if (name == "prometheus") return RuleExportFormat::kPrometheus;
  if (name == "prometheusrule") return RuleExportFormat::kPrometheusRule;
  return core::InvalidArgument("unknown rule export format \"" + std::string(name) +
                               "\" (expected prometheus or prometheusrule)");
}

std::string ExportBuiltinRules(RuleExportFormat format) {
  const std::string_view yaml = BuiltinRulesYaml();
  if (format == RuleExportFormat::kPrometheus) return std::string(yaml);
  // The rule file's `groups:` becomes the manifest's spec: every line indented by two
  // spaces under `spec:` (comments included; block scalars keep their relative indent).
  std::string out =
      "apiVersion: monitoring.coreos.com/v1\n"
      "kind: PrometheusRule\n"
      "metadata:\n"
      "  name: llmscope-rules\n"
      "  labels:\n"
      "    app.kubernetes.io/name: llmscope\n"
      "    app.kubernetes.io/component: alerting-rules\n"
      "spec:\n";
  size_t pos = 0;
  while (pos < yaml.size()) {
    size_t nl = yaml.find('\n', pos);
    std::string_view line =
        yaml.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    if (!line.empty()) {
      out += "  ";
      out += line;
    }
    out += "\n";
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

}  // namespace llmscope::alerts
