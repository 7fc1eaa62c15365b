#include "alerts/cli.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "alerts/builtin_rules.h"

namespace llmscope::alerts {
namespace {

namespace fs = std::filesystem;

TEST(Cli, CheckReportsLikePromtool) {
  fs::path dir = fs::temp_directory_path() / ("alerts_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string good = (dir / "good.yaml").string();
  const std::string bad = (dir / "bad.yaml").string();
  std::ofstream(good) << "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n"
                         "  - alert: B\n    expr: up == 0\n";
  std::ofstream(bad) << "groups:\n- name: g\n  rules:\n  - record: a\n    expr: up(\n"
                        "  - alert: B\n    expr: up\n    for: soon\n";
  CliOutput ok = RulesCheck({good});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.output, "Checking " + good + "\n  SUCCESS: 2 rules found\n\n");

  CliOutput both = RulesCommand({"check", good, bad});
  EXPECT_EQ(both.exit_code, 1);
  const std::string want_bad = "Checking " + bad + "\n  FAILED:\n" + bad +
                               ":5:11: group \"g\", rule 1, \"a\": could not parse expression: ";
  EXPECT_NE(both.output.find(want_bad), std::string::npos) << both.output;
  EXPECT_NE(both.output.find(bad + ":8:10: group \"g\", rule 2, \"B\": field for: not a valid "
                                   "duration string: \"soon\""),
            std::string::npos)
      << both.output;
  EXPECT_EQ(both.output.rfind("Checking " + good + "\n  SUCCESS: 2 rules found\n\n", 0), 0u);

  EXPECT_EQ(RulesCheck({}).exit_code, 2);
  CliOutput missing = RulesCheck({(dir / "nope.yaml").string()});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("cannot read file"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Cli, Export) {
  CliOutput def = RulesCommand({"export"});
  EXPECT_EQ(def.exit_code, 0);
  EXPECT_EQ(def.output, ExportBuiltinRules(RuleExportFormat::kPrometheus));
  EXPECT_EQ(RulesExport({"--format", "prometheusrule"}).output,
            ExportBuiltinRules(RuleExportFormat::kPrometheusRule));
  EXPECT_EQ(RulesExport({"--format=prometheus"}).output, def.output);
  EXPECT_EQ(RulesExport({"--format", "xml"}).exit_code, 2);
  EXPECT_EQ(RulesExport({"--bogus"}).exit_code, 2);
  EXPECT_EQ(RulesCommand({}).exit_code, 2);
  EXPECT_EQ(RulesCommand({"lint"}).exit_code, 2);
}

}  // namespace
}  // namespace llmscope::alerts
