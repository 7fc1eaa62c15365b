#include "server/rules_setup.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "alerts/builtin_rules.h"

namespace llmscope::server {
namespace {

const alerts::RuleSpec* FindRule(const std::vector<alerts::RuleFile>& files,
                                 const std::string& name) {
  for (const auto& f : files) {
    for (const auto& g : f.groups) {
      for (const auto& r : g.rules) {
        if (r.name == name) return &r;
      }
    }
  }
  return nullptr;
}

TEST(RulesSetupTest, BuiltinPackWithOverridesAndInterval) {
  RulesConfig rc;
  auto plain = RuleFilesFor(rc);
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  const alerts::RuleSpec* error_rate = FindRule(*plain, "LLMHighErrorRate");
  ASSERT_NE(error_rate, nullptr);
  EXPECT_EQ(error_rate->for_ms, 3 * 60 * 1000);
  ASSERT_NE(FindRule(*plain, "LLMCostPerHourOverBudget"), nullptr);

  rc.builtin_interval = std::chrono::seconds(5);
  rc.builtin_overrides["LLMHighErrorRate"].for_duration = std::chrono::seconds(30);
  rc.builtin_overrides["LLMCostPerHourOverBudget"].disabled = true;
  auto files = RuleFilesFor(rc);
  ASSERT_TRUE(files.ok()) << files.status().message();
  error_rate = FindRule(*files, "LLMHighErrorRate");
  ASSERT_NE(error_rate, nullptr);
  EXPECT_EQ(error_rate->for_ms, 30 * 1000);
  EXPECT_EQ(FindRule(*files, "LLMCostPerHourOverBudget"), nullptr);
  for (const auto& g : files->at(0).groups) EXPECT_EQ(g.interval_ms, 5000) << g.name;
}

TEST(RulesSetupTest, EveryProblemIsListed) {
  RulesConfig rc;
  rc.builtin_overrides["NoSuchAlert"].disabled = true;
  const auto dir = std::filesystem::path(::testing::TempDir()) / "rules_setup_test";
  std::filesystem::create_directories(dir);
  const std::string bad = (dir / "bad.yaml").string();
  std::ofstream(bad) << "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n";
  rc.files = {bad, (dir / "missing.yaml").string()};
  auto files = RuleFilesFor(rc);
  ASSERT_FALSE(files.ok());
  const std::string m = files.status().message();
  EXPECT_NE(m.find("rules.builtin_overrides.NoSuchAlert: no built-in alert has this name"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("bad.yaml"), std::string::npos) << m;
  EXPECT_NE(m.find("missing.yaml"), std::string::npos) << m;

  RulesConfig off;
  off.builtin = false;
  off.builtin_overrides["LLMHighErrorRate"].disabled = true;
  auto o = RuleFilesFor(off);
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("the built-in rules are off"), std::string::npos);
  off.builtin_overrides.clear();
  auto none = RuleFilesFor(off);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace llmscope::server
