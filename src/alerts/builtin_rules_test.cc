#include "alerts/builtin_rules.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "alerts/rules.h"
#include "testing/fake_clock.h"

namespace llmscope::alerts {
namespace {

namespace fs = std::filesystem;

// Runs a command, returning its exit status and combined output.
std::pair<int, std::string> Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

bool HavePromtool() { return Shell("command -v promtool").first == 0; }

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("alerts_builtin_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, std::string_view content) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary | std::ios::trunc) << content;
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(BuiltinRules, PackParsesWithOurParser) {
  auto f = BuiltinRules();
  ASSERT_TRUE(f.ok()) << f.status().message();
  std::set<std::string> alerts;
  for (const auto& g : f->groups) {
    for (const auto& r : g.rules) {
      ASSERT_EQ(r.kind, RuleSpec::Kind::kAlerting) << r.name;
      alerts.insert(r.name);
      EXPECT_TRUE(r.labels.count("severity")) << r.name;
      EXPECT_TRUE(r.annotations.count("summary")) << r.name;
      EXPECT_TRUE(r.annotations.count("description")) << r.name;
      EXPECT_NE(r.annotations.at("description").find("Runbook:"), std::string::npos) << r.name;
    }
  }
  for (const char* want :
       {"LLMHighP99Latency", "LLMHighErrorRate", "LLMRequestRateDropVsYesterday",
        "LLMRequestRateDropVsLastHour", "LLMHighP95TimeToFirstToken", "LLMSlowTokenStream",
        "LLMCostPerHourOverBudget", "LLMCostPer1KTokensOverBudget",
        "LLMScopePipelineDroppingRecords", "LLMScopeSpillQueueGrowing",
        "LLMScopeStorageBackendDown", "LLMScopeDown"}) {
    EXPECT_TRUE(alerts.count(want)) << want;
  }
  // Every group builds into an evaluator.
  for (const auto& g : f->groups) EXPECT_TRUE(RuleGroup::Create(g).ok()) << g.name;
}

TEST(BuiltinRules, ExportsParseInBothFormats) {
  auto prom = ParseRuleFile("p.yaml", ExportBuiltinRules(RuleExportFormat::kPrometheus));
  ASSERT_TRUE(prom.ok()) << prom.status().message();
  const std::string manifest = ExportBuiltinRules(RuleExportFormat::kPrometheusRule);
  EXPECT_EQ(manifest.rfind("apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\n", 0), 0u);
  auto pr = ParseRuleFile("pr.yaml", manifest);
  ASSERT_TRUE(pr.ok()) << pr.status().message();
  ASSERT_EQ(pr->groups.size(), prom->groups.size());
  for (size_t i = 0; i < pr->groups.size(); ++i) {
    ASSERT_EQ(pr->groups[i].rules.size(), prom->groups[i].rules.size());
    for (size_t j = 0; j < pr->groups[i].rules.size(); ++j) {
      RuleSpec a = pr->groups[i].rules[j], b = prom->groups[i].rules[j];
      EXPECT_EQ(a.line, b.line + 8);  // under the manifest's 8-line header
      a.line = b.line = 0;
      EXPECT_TRUE(a == b) << a.name;
    }
  }
  EXPECT_EQ(ParseRuleExportFormat("prometheusrule").value(), RuleExportFormat::kPrometheusRule);
  EXPECT_FALSE(ParseRuleExportFormat("json").ok());
}

TEST(BuiltinRules, AlertsFireOnLlmscopeSeries) {
  // The pack evaluated by our own engine on the shapes llmscope exports.
  auto f = BuiltinRules();
  ASSERT_TRUE(f.ok());
  promql::MemoryStorage storage;
  promql::Engine engine;
  testing::FakeClock clock;
  constexpr int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i <= 15; ++i) {
    const int64_t t = t0 + i * 60'000;
    promql::Labels base(
        {{"model", "gpt-4o"}, {"provider", "openai"}, {"endpoint", "chat_completions"}});
    storage.Add(base.With("__name__", "llm_request_duration_seconds_bucket").With("le", "2.5"), t,
                0);
    storage.Add(base.With("__name__", "llm_request_duration_seconds_bucket").With("le", "5"), t,
                60.0 * i);
    storage.Add(base.With("__name__", "llm_request_duration_seconds_bucket").With("le", "+Inf"), t,
                60.0 * i);
    storage.Add(base.With("__name__", "llm_requests_total").With("status", "200"), t, 100.0 * i);
    storage.Add(base.With("__name__", "llm_errors_total").With("error_type", "timeout"), t,
                5.0 * i);
    storage.Add({{"__name__", "llmscope_storage_backend_up"}}, t, i < 2 ? 1 : 0);
  }
  std::map<std::string, NotifyAlert> fired;
  for (const auto& spec : f->groups) {
    auto g = RuleGroup::Create(spec);
    ASSERT_TRUE(g.ok());
    for (int64_t t = t0; t <= t0 + 10 * 60'000; t += (*g)->interval_ms()) {
      for (auto& n : (*g)->Eval(engine, storage, t, nullptr, clock)) {
        fired[std::string(n.labels.Get("alertname"))] = n;
      }
    }
    for (const auto& r : (*g)->Snapshot().rules) {
      EXPECT_EQ(r.health, RuleHealth::kOk) << r.spec.name << ": " << r.last_error;
    }
  }
  ASSERT_TRUE(fired.count("LLMHighP99Latency"));
  EXPECT_EQ(fired["LLMHighP99Latency"].annotations["summary"],
            "P99 latency of gpt-4o (openai) is 4.975s");
  ASSERT_TRUE(fired.count("LLMHighErrorRate"));
  EXPECT_EQ(fired["LLMHighErrorRate"].annotations["summary"], "5% of gpt-4o (openai) calls fail");
  EXPECT_EQ(fired["LLMHighErrorRate"].labels.Get("severity"), "critical");
  ASSERT_TRUE(fired.count("LLMScopeStorageBackendDown"));
  EXPECT_FALSE(fired.count("LLMHighP95TimeToFirstToken"));
}

TEST(BuiltinRules, PromtoolCheckRulesAcceptsBothExports) {
  if (!HavePromtool()) GTEST_SKIP() << "promtool not on PATH (Debian package prometheus)";
  TempDir dir;
  const std::string prom =
      dir.Write("llmscope_rules.yaml", ExportBuiltinRules(RuleExportFormat::kPrometheus));
  auto [rc, out] = Shell("promtool check rules " + prom);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  // promtool reads a PrometheusRule's spec the same way once extracted; check the manifest
  // by stripping the wrapper as kubectl would hand it to the operator.
  const std::string manifest = ExportBuiltinRules(RuleExportFormat::kPrometheusRule);
  std::string spec;
  bool in_spec = false;
  for (size_t pos = 0; pos < manifest.size();) {
    size_t nl = manifest.find('\n', pos);
    std::string line = manifest.substr(pos, nl - pos);
    pos = nl == std::string::npos ? manifest.size() : nl + 1;
    if (line == "spec:") {
      in_spec = true;
      continue;
    }
    if (in_spec) spec += (line.size() >= 2 ? line.substr(2) : line) + "\n";
  }
  auto [rc2, out2] = Shell("promtool check rules " + dir.Write("spec.yaml", spec));
  EXPECT_EQ(rc2, 0) << out2;
}

TEST(BuiltinRules, PromtoolUnitTestsPass) {
  if (!HavePromtool()) GTEST_SKIP() << "promtool not on PATH (Debian package prometheus)";
  TempDir dir;
  dir.Write("builtin_rules.yaml", ExportBuiltinRules(RuleExportFormat::kPrometheus));
  std::ifstream in(std::string(LLMSCOPE_ALERTS_TESTDATA) + "/builtin_rules.test.yaml");
  ASSERT_TRUE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string test = dir.Write("builtin_rules.test.yaml", ss.str());
  auto [rc, out] = Shell("promtool test rules " + test);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
}

}  // namespace
}  // namespace llmscope::alerts
