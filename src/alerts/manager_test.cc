#include "alerts/manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "alerts/state_file.h"
#include "testing/fake_clock.h"

namespace llmscope::alerts {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kMin = 60'000;

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("alerts_mgr_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    options_.state_file = (dir_ / "alerts.state").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& content) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::trunc) << content;
    return p;
  }
  std::unique_ptr<RuleManager> Manager() {
    return std::make_unique<RuleManager>(options_, engine_, storage_, clock_, logger_,
                                         [this](std::vector<RuleSample> s) {
                                           std::lock_guard lock(mu_);
                                           for (auto& x : s) samples_.push_back(std::move(x));
                                         });
  }
  int64_t Now() const { return clock_.UnixNanos() / 1'000'000; }
  void AddUp(double v) { storage_.Add({{"__name__", "down"}, {"job", "x"}}, Now(), v); }

  fs::path dir_;
  RuleManagerOptions options_;
  promql::MemoryStorage storage_;
  promql::Engine engine_;
  testing::FakeClock clock_{1'700'000'000'000'000'000};
  core::NullLogger logger_;
  std::mutex mu_;
  std::vector<RuleSample> samples_;
};

constexpr const char* kRules = R"(groups:
- name: fast
  interval: 30s
  rules:
  - alert: Down
    expr: down == 1
    for: 1m
    annotations:
      summary: "{{ $labels.job }} down"
  - record: down:count
    expr: count(down)
- name: slow
  interval: 1m
  rules:
  - record: one
    expr: vector(1)
)";

TEST_F(ManagerTest, LoadKeepsPreviousRulesWhenAnyFileIsInvalid) {
  auto m = Manager();
  const std::string good = Write("good.yaml", kRules);
  ASSERT_TRUE(m->Load({good}).ok());
  auto before = m->groups();
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0]->spec().file, good);

  const std::string bad = Write("bad.yaml",
                                "groups:\n- name: b\n  rules:\n  - alert: X\n"
                                "    expr: sum(\n  - record: 'bad name'\n"
                                "    expr: up\n");
  core::Status s = m->Load({good, bad, (dir_ / "missing.yaml").string()});
  ASSERT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad.yaml:5:11: group \"b\", rule 1, \"X\": could not parse"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("invalid recording rule name: bad name"), std::string::npos);
  EXPECT_NE(s.message().find("missing.yaml: cannot read file"), std::string::npos);
  EXPECT_EQ(m->groups(), before);  // the same running objects
}

TEST_F(ManagerTest, ReloadKeepsStateOfUnchangedRulesAndMarksRemovedSeriesStale) {
  auto m = Manager();
  const std::string f = Write("r.yaml", kRules);
  ASSERT_TRUE(m->Load({f}).ok());
  AddUp(1);
  auto g = m->groups()[0];
  m->EvalGroup(*g, Now());
  clock_.Advance(std::chrono::minutes(1));
  AddUp(1);
  ASSERT_EQ(m->EvalGroup(*g, Now()).size(), 1u);  // firing
  const int64_t fired = Now();

  // Same rule, new annotation: still firing after the reload. The slow group is removed.
  std::string changed = kRules;
  changed.replace(changed.find(" down\""), 6, " is down\"");
  changed = changed.substr(0, changed.find("- name: slow"));
  Write("r.yaml", changed);
  samples_.clear();
  ASSERT_TRUE(m->Load({f}).ok());
  ASSERT_EQ(m->groups().size(), 1u);
  auto snap = m->Snapshot();
  ASSERT_EQ(snap[0].rules[0].alerts.size(), 1u);
  EXPECT_EQ(snap[0].rules[0].alerts[0].state, AlertState::kFiring);
  EXPECT_EQ(snap[0].rules[0].alerts[0].fired_at_ms, fired);
  EXPECT_EQ(snap[0].rules[0].spec.annotations.at("summary"), "{{ $labels.job }} is down");
  EXPECT_TRUE(samples_.empty());  // slow never evaluated: nothing to mark stale

  // Changed expression: the alert starts over and its old series get stale markers.
  std::string other = changed;
  other.replace(other.find("down == 1"), 9, "down >= 1");
  Write("r.yaml", other);
  ASSERT_TRUE(m->Load({f}).ok());
  EXPECT_TRUE(m->Snapshot()[0].rules[0].alerts.empty());
  int stale = 0;
  for (const auto& s : samples_) stale += promql::IsStaleNaN(s.v);
  EXPECT_EQ(stale, 2);  // ALERTS{firing} and ALERTS_FOR_STATE
}

TEST_F(ManagerTest, RestartRestoresAlertState) {
  const std::string f = Write("r.yaml", kRules);
  {
    auto m = Manager();
    ASSERT_TRUE(m->Load({f}).ok());
    AddUp(1);
    m->EvalGroup(*m->groups()[0], Now());
    clock_.Advance(std::chrono::minutes(1));
    AddUp(1);
    ASSERT_EQ(m->EvalGroup(*m->groups()[0], Now()).size(), 1u);
    ASSERT_TRUE(m->SaveState().ok());
  }
  const int64_t active_at = Now() - kMin;
  clock_.Advance(std::chrono::seconds(30));
  auto m = Manager();
  ASSERT_TRUE(m->Load({f}).ok());
  size_t restored = 0;
  ASSERT_TRUE(m->RestoreState(&restored).ok());
  EXPECT_EQ(restored, 1u);
  auto snap = m->Snapshot();
  ASSERT_EQ(snap[0].rules[0].alerts.size(), 1u);
  EXPECT_EQ(snap[0].rules[0].alerts[0].state, AlertState::kFiring);
  EXPECT_EQ(snap[0].rules[0].alerts[0].active_at_ms, active_at);
  // Still firing at the next evaluation, without waiting for `for` again, and not re-sent
  // before the resend delay.
  AddUp(1);
  EXPECT_TRUE(m->EvalGroup(*m->groups()[0], Now()).empty());
  EXPECT_EQ(m->Snapshot()[0].rules[0].alerts[0].state, AlertState::kFiring);
}

TEST_F(ManagerTest, CorruptStateFileIsReportedAndIgnored) {
  auto m = Manager();
  ASSERT_TRUE(m->Load({Write("r.yaml", kRules)}).ok());
  EXPECT_TRUE(m->RestoreState().ok());  // no file yet
  std::ofstream(options_.state_file) << "not a state file";
  size_t restored = 7;
  EXPECT_EQ(m->RestoreState(&restored).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(restored, 0u);
  EXPECT_TRUE(m->Snapshot()[0].rules[0].alerts.empty());
}

TEST_F(ManagerTest, LoadParsedWithBuiltinStyleSources) {
  auto m = Manager();
  auto f = ParseRuleFile("<builtin>", kRules);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(m->LoadParsed({*f}).ok());
  EXPECT_EQ(m->groups()[1]->spec().file, "<builtin>");
  EXPECT_EQ(m->groups()[0]->interval_ms(), 30000);
}

TEST_F(ManagerTest, RunnerEvaluatesEachGroupOnItsInterval) {
  auto m = Manager();
  ASSERT_TRUE(m->Load({Write("r.yaml", kRules)}).ok());
  std::vector<NotifyAlert> notified;
  RuleRunner runner({.save_interval = std::chrono::minutes(2)}, *m, clock_, logger_,
                    [&](std::vector<NotifyAlert> a) {
                      for (auto& x : a) notified.push_back(std::move(x));
                    });
  const int64_t t0 = Now();
  AddUp(1);
  EXPECT_EQ(runner.RunDue(), 2);  // both groups are due at once
  EXPECT_EQ(runner.RunDue(), 0);
  EXPECT_EQ(runner.NextDueMs(), t0 + 30'000);
  clock_.Advance(std::chrono::seconds(30));
  AddUp(1);
  EXPECT_EQ(runner.RunDue(), 1);  // fast only
  clock_.Advance(std::chrono::seconds(30));
  AddUp(1);
  EXPECT_EQ(runner.RunDue(), 2);
  ASSERT_EQ(notified.size(), 1u);  // Down fired at t0 + 1m
  EXPECT_EQ(notified[0].starts_at_ms, t0 + kMin);
  EXPECT_EQ(notified[0].labels.Get("alertname"), "Down");

  // Evaluations are stamped with the scheduled times, not the moment of the call.
  clock_.Advance(std::chrono::seconds(40));
  EXPECT_EQ(runner.RunDue(), 1);
  bool scheduled = false;
  for (const auto& s : samples_) scheduled |= s.t_ms == t0 + 90'000;
  EXPECT_TRUE(scheduled);
  // Far behind: stamped with now and the schedule restarts there.
  clock_.Advance(std::chrono::minutes(5));
  EXPECT_EQ(runner.RunDue(), 2);
  EXPECT_EQ(runner.NextDueMs(), Now() + 30'000);
  // The state was saved on its interval.
  EXPECT_TRUE(fs::exists(options_.state_file));
}

TEST_F(ManagerTest, RunnerStartStop) {
  auto m = Manager();
  ASSERT_TRUE(m->Load({Write("r.yaml", kRules)}).ok());
  RuleRunner runner({}, *m, clock_, logger_, nullptr);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_EQ(runner.Start().code(), core::StatusCode::kFailedPrecondition);
  // The first evaluation happened on Start's thread.
  EXPECT_NE(m->Snapshot()[1].last_evaluation_ms, 0);
  ASSERT_TRUE(runner.Stop().ok());
  ASSERT_TRUE(runner.Stop().ok());               // idempotent
  EXPECT_TRUE(fs::exists(options_.state_file));  // saved on stop

  RuleRunner bad({.max_wait = std::chrono::milliseconds(0)}, *m, clock_, logger_, nullptr);
  EXPECT_EQ(bad.Start().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace llmscope::alerts
