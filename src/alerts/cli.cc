#include "alerts/cli.h"

#include "alerts/builtin_rules.h"
#include "alerts/rule_file.h"

namespace llmscope::alerts {
namespace {
constexpr const char* kUsage =
    "usage: llmscope rules check FILE...\n"
    "       llmscope rules export [--format prometheus|prometheusrule]\n";
}  // namespace

CliOutput RulesCheck(const std::vector<std::string>& files) {
  if (files.empty()) return {std::string("rules check: no rule files given\n") + kUsage, 2};
  CliOutput out;
  for (const std::string& f : files) {
    out.output += "Checking " + f + "\n";
    RuleFileParse p = LoadRuleFileCollect(f);
    if (p.errors.empty()) {
      out.output += "  SUCCESS: " + std::to_string(p.file.NumRules()) + " rules found\n";
    } else {
      out.output += "  FAILED:\n";
      for (const std::string& e : p.errors) out.output += e + "\n";
      out.exit_code = 1;
    }
    out.output += "\n";
  }
  return out;
}

CliOutput RulesExport(const std::vector<std::string>& args) {
  std::string format = "prometheus";
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--format" && i + 1 < args.size()) {
      format = args[++i];
    } else if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
    } else {
      return {"rules export: unexpected argument \"" + a + "\"\n" + kUsage, 2};
    }
  }
  auto f = ParseRuleExportFormat(format);
  if (!f.ok()) return {"rules export: " + f.status().message() + "\n" + kUsage, 2};
  return {ExportBuiltinRules(*f), 0};
}

CliOutput RulesCommand(const std::vector<std::string>& args) {
  if (args.empty()) return {kUsage, 2};
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "check") return RulesCheck(rest);
  if (args[0] == "export") return RulesExport(rest);
  return {"rules: unknown subcommand \"" + args[0] + "\"\n" + kUsage, 2};
}

}  // namespace llmscope::alerts
