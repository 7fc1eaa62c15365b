#include "alerts/rules.h"

#include <gtest/gtest.h>

#include <cmath>

#include "alerts/api_json.h"
#include "testing/fake_clock.h"

namespace llmscope::alerts {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr int64_t kMin = 60'000;

class RulesTest : public ::testing::Test {
 protected:
  std::unique_ptr<RuleGroup> Group(const std::string& yaml, RuleGroupOptions opts = {}) {
    auto f = ParseRuleFile("rules.yaml", yaml);
    EXPECT_TRUE(f.ok()) << f.status().message();
    auto g = RuleGroup::Create(f->groups.at(0), opts);
    EXPECT_TRUE(g.ok()) << g.status().message();
    return std::move(*g);
  }
  std::vector<NotifyAlert> Eval(RuleGroup& g, int64_t t) {
    return g.Eval(
        engine_, storage_, t,
        [this](std::vector<RuleSample> s) {
          for (auto& x : s) samples_.push_back(std::move(x));
        },
        clock_);
  }
  // The samples written at `t` whose name is `name`.
  std::vector<RuleSample> Written(const std::string& name, int64_t t) const {
    std::vector<RuleSample> out;
    for (const auto& s : samples_) {
      if (s.t_ms == t && s.labels.Get("__name__") == name) out.push_back(s);
    }
    return out;
  }
  const Alert* Find(const GroupSnapshot& g, size_t rule, std::string_view label,
                    std::string_view value) {
    for (const Alert& a : g.rules.at(rule).alerts) {
      if (a.labels.Get(label) == value) return &a;
    }
    return nullptr;
  }

  promql::MemoryStorage storage_;
  promql::Engine engine_;
  testing::FakeClock clock_;
  std::vector<RuleSample> samples_;
};

constexpr const char* kAlertRule = R"(groups:
- name: g
  rules:
  - alert: HighErrors
    expr: errors > 5
    for: 2m
    labels:
      severity: "{{ if gt $value 10.0 }}critical{{ else }}warning{{ end }}"
      team: llm
    annotations:
      summary: "{{ $labels.instance }} has {{ $value }} errors"
)";

TEST_F(RulesTest, PendingThenFiringExactlyAfterFor) {
  auto g = Group(kAlertRule);
  for (int i = 0; i <= 10; ++i)
    storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0 + i * kMin, 7);

  EXPECT_TRUE(Eval(*g, kT0).empty());  // pending alerts are not sent
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  const Alert& a = s.rules[0].alerts[0];
  EXPECT_EQ(a.state, AlertState::kPending);
  EXPECT_EQ(a.active_at_ms, kT0);
  EXPECT_EQ(a.labels, promql::Labels({{"alertname", "HighErrors"},
                                      {"instance", "a"},
                                      {"severity", "warning"},
                                      {"team", "llm"}}));
  EXPECT_EQ(a.annotations.at("summary"), "a has 7 errors");
  EXPECT_EQ(s.rules[0].state, AlertState::kPending);
  EXPECT_EQ(s.rules[0].health, RuleHealth::kOk);

  auto alerts = Written("ALERTS", kT0);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].labels, promql::Labels({{"__name__", "ALERTS"},
                                              {"alertname", "HighErrors"},
                                              {"alertstate", "pending"},
                                              {"instance", "a"},
                                              {"severity", "warning"},
                                              {"team", "llm"}}));
  EXPECT_EQ(alerts[0].v, 1);
  auto for_state = Written("ALERTS_FOR_STATE", kT0);
  ASSERT_EQ(for_state.size(), 1u);
  EXPECT_EQ(for_state[0].v, kT0 / 1000);

  EXPECT_TRUE(Eval(*g, kT0 + kMin).empty());
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kPending);
  EXPECT_TRUE(Eval(*g, kT0 + 2 * kMin - 1).empty());
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kPending);

  auto sent = Eval(*g, kT0 + 2 * kMin);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].starts_at_ms, kT0 + 2 * kMin);
  EXPECT_FALSE(sent[0].resolved);
  EXPECT_EQ(sent[0].ends_at_ms, kT0 + 2 * kMin + 4 * kMin);  // 4 x max(resend 1m, interval 1m)
  EXPECT_EQ(sent[0].annotations.at("summary"), "a has 7 errors");
  EXPECT_TRUE(sent[0].generator_url.empty());
  s = g->Snapshot();
  EXPECT_EQ(s.rules[0].state, AlertState::kFiring);
  EXPECT_EQ(s.rules[0].alerts[0].fired_at_ms, kT0 + 2 * kMin);
  EXPECT_EQ(s.rules[0].alerts[0].active_at_ms, kT0);
  // The pending ALERTS series ends with a stale marker, the firing one starts.
  auto at = Written("ALERTS", kT0 + 2 * kMin);
  ASSERT_EQ(at.size(), 2u);
  int stale = 0;
  for (const auto& x : at) {
    if (promql::IsStaleNaN(x.v)) {
      ++stale;
      EXPECT_EQ(x.labels.Get("alertstate"), "pending");
    } else {
      EXPECT_EQ(x.labels.Get("alertstate"), "firing");
    }
  }
  EXPECT_EQ(stale, 1);

  // Re-sent only after resend_delay (strictly later than last sent + 1m).
  EXPECT_TRUE(Eval(*g, kT0 + 3 * kMin).empty());
  EXPECT_EQ(Eval(*g, kT0 + 3 * kMin + 1).size(), 1u);
}

TEST_F(RulesTest, FiringThenResolvedKeptForRetention) {
  auto g = Group(kAlertRule);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0, 20);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0 + 2 * kMin, 20);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0 + 3 * kMin, 1);
  Eval(*g, kT0);
  auto firing = Eval(*g, kT0 + 2 * kMin);
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].labels.Get("severity"), "critical");

  auto resolved = Eval(*g, kT0 + 3 * kMin);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_TRUE(resolved[0].resolved);
  EXPECT_EQ(resolved[0].ends_at_ms, kT0 + 3 * kMin);
  EXPECT_EQ(resolved[0].starts_at_ms, kT0 + 2 * kMin);
  GroupSnapshot s = g->Snapshot();
  EXPECT_TRUE(s.rules[0].alerts.empty());  // the API lists pending and firing only
  EXPECT_EQ(s.rules[0].state, AlertState::kInactive);
  ASSERT_EQ(g->PersistedAlerts().size(), 1u);  // kept as resolved
  EXPECT_EQ(g->PersistedAlerts()[0].alert.state, AlertState::kInactive);
  // ALERTS{firing} ends at once.
  auto at = Written("ALERTS", kT0 + 3 * kMin);
  ASSERT_EQ(at.size(), 1u);
  EXPECT_TRUE(promql::IsStaleNaN(at[0].v));

  // Re-sent as resolved every resend delay while retained, then dropped after 15m.
  EXPECT_TRUE(Eval(*g, kT0 + 3 * kMin + 30'000).empty());
  EXPECT_EQ(Eval(*g, kT0 + 5 * kMin).size(), 1u);
  Eval(*g, kT0 + 18 * kMin);
  EXPECT_EQ(g->PersistedAlerts().size(), 1u);  // exactly 15m: still kept
  Eval(*g, kT0 + 18 * kMin + 1);
  EXPECT_TRUE(g->PersistedAlerts().empty());
}

TEST_F(RulesTest, KeepFiringFor) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: Flappy
    expr: x > 0
    keep_firing_for: 5m
)");
  storage_.Add({{"__name__", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "x"}}, kT0 + kMin, 0);
  ASSERT_EQ(Eval(*g, kT0).size(), 1u);  // for: 0 fires at once
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kFiring);

  Eval(*g, kT0 + kMin);  // condition cleared: kept firing
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  EXPECT_EQ(s.rules[0].alerts[0].state, AlertState::kFiring);
  EXPECT_EQ(s.rules[0].alerts[0].keep_firing_since_ms, kT0 + kMin);
  EXPECT_EQ(Written("ALERTS", kT0 + kMin).size(), 1u);

  Eval(*g, kT0 + 6 * kMin - 1);
  EXPECT_EQ(g->Snapshot().rules[0].alerts.size(), 1u);
  auto sent = Eval(*g, kT0 + 6 * kMin);  // 5m after the condition cleared
  EXPECT_TRUE(g->Snapshot().rules[0].alerts.empty());
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].resolved);
  EXPECT_EQ(sent[0].ends_at_ms, kT0 + 6 * kMin);
}

TEST_F(RulesTest, KeepFiringResetWhenConditionReturns) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: K
    expr: x > 0
    keep_firing_for: 5m
)");
  storage_.Add({{"__name__", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "x"}}, kT0 + kMin, 0);
  storage_.Add({{"__name__", "x"}}, kT0 + 2 * kMin, 1);
  Eval(*g, kT0);
  Eval(*g, kT0 + kMin);
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].keep_firing_since_ms, kT0 + kMin);
  Eval(*g, kT0 + 2 * kMin);
  const Alert a = g->Snapshot().rules[0].alerts[0];
  EXPECT_EQ(a.keep_firing_since_ms, 0);
  EXPECT_EQ(a.state, AlertState::kFiring);
  EXPECT_EQ(a.fired_at_ms, kT0);
}

TEST_F(RulesTest, FlappingPendingRestartsFor) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: F
    expr: x > 0
    for: 1m
)");
  storage_.Add({{"__name__", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "x"}}, kT0 + 30'000, 0);
  storage_.Add({{"__name__", "x"}}, kT0 + kMin, 1);
  Eval(*g, kT0);
  Eval(*g, kT0 + 30'000);
  EXPECT_TRUE(g->Snapshot().rules[0].alerts.empty());  // pending dropped
  EXPECT_TRUE(g->PersistedAlerts().empty());
  Eval(*g, kT0 + kMin);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  EXPECT_EQ(s.rules[0].alerts[0].state, AlertState::kPending);
  EXPECT_EQ(s.rules[0].alerts[0].active_at_ms, kT0 + kMin);
  Eval(*g, kT0 + 90'000);
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kPending);
  Eval(*g, kT0 + 2 * kMin);
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kFiring);
}

TEST_F(RulesTest, ResolvedAlertThatReturnsStartsPendingAgain) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: R
    expr: x > 0
    for: 1m
)");
  storage_.Add({{"__name__", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "x"}}, kT0 + 2 * kMin, 0);
  storage_.Add({{"__name__", "x"}}, kT0 + 3 * kMin, 1);
  Eval(*g, kT0);
  Eval(*g, kT0 + kMin);      // firing
  Eval(*g, kT0 + 2 * kMin);  // resolved
  Eval(*g, kT0 + 3 * kMin);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  EXPECT_EQ(s.rules[0].alerts[0].state, AlertState::kPending);
  EXPECT_EQ(s.rules[0].alerts[0].active_at_ms, kT0 + 3 * kMin);
  EXPECT_EQ(s.rules[0].alerts[0].resolved_at_ms, 0);
}

TEST_F(RulesTest, LabelSetChurnAndPerAlertTemplates) {
  auto g = Group(kAlertRule);
  for (int i = 0; i <= 3; ++i) {
    storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0 + i * kMin, 6);
  }
  for (int i = 0; i <= 2; ++i) {
    storage_.Add({{"__name__", "errors"}, {"instance", "b"}}, kT0 + i * kMin, 50);
  }
  storage_.Add({{"__name__", "errors"}, {"instance", "b"}}, kT0 + 3 * kMin, promql::StaleNaN());
  storage_.Add({{"__name__", "errors"}, {"instance", "c"}}, kT0 + 3 * kMin, 9);
  Eval(*g, kT0);
  Eval(*g, kT0 + 2 * kMin);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 2u);
  const Alert* a = Find(s, 0, "instance", "a");
  const Alert* b = Find(s, 0, "instance", "b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->labels.Get("severity"), "warning");
  EXPECT_EQ(b->labels.Get("severity"), "critical");
  EXPECT_EQ(a->annotations.at("summary"), "a has 6 errors");
  EXPECT_EQ(b->annotations.at("summary"), "b has 50 errors");

  auto sent = Eval(*g, kT0 + 3 * kMin);  // b vanished, c appeared
  s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 2u);
  EXPECT_EQ(Find(s, 0, "instance", "a")->state, AlertState::kFiring);
  EXPECT_EQ(Find(s, 0, "instance", "c")->state, AlertState::kPending);
  EXPECT_EQ(Find(s, 0, "instance", "b"), nullptr);
  bool b_resolved = false;
  for (const auto& n : sent) {
    if (n.labels.Get("instance") == "b") b_resolved = n.resolved;
  }
  EXPECT_TRUE(b_resolved);
  // b's ALERTS series gets a stale marker.
  bool b_stale = false;
  for (const auto& x : Written("ALERTS", kT0 + 3 * kMin)) {
    if (x.labels.Get("instance") == "b") b_stale = promql::IsStaleNaN(x.v);
  }
  EXPECT_TRUE(b_stale);
}

TEST_F(RulesTest, ValueAndAnnotationsUpdateWhileActive) {
  auto g = Group(kAlertRule);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0, 6);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0 + kMin, 8);
  Eval(*g, kT0);
  Eval(*g, kT0 + kMin);
  const Alert a = g->Snapshot().rules[0].alerts[0];
  EXPECT_EQ(a.value, 8);
  EXPECT_EQ(a.annotations.at("summary"), "a has 8 errors");
  EXPECT_EQ(a.active_at_ms, kT0);
}

TEST_F(RulesTest, RecordingRuleRenamesAddsLabelsAndMarksStale) {
  auto g = Group(R"(groups:
- name: rec
  rules:
  - record: job:req:sum
    expr: sum by (job) (req)
    labels:
      source: rule
)");
  storage_.Add({{"__name__", "req"}, {"job", "a"}, {"i", "1"}}, kT0, 1);
  storage_.Add({{"__name__", "req"}, {"job", "a"}, {"i", "2"}}, kT0, 2);
  storage_.Add({{"__name__", "req"}, {"job", "b"}}, kT0, 5);
  storage_.Add({{"__name__", "req"}, {"job", "a"}, {"i", "1"}}, kT0 + kMin, 3);
  storage_.Add({{"__name__", "req"}, {"job", "b"}}, kT0 + kMin, promql::StaleNaN());
  Eval(*g, kT0);
  auto out = Written("job:req:sum", kT0);
  ASSERT_EQ(out.size(), 2u);
  std::sort(out.begin(), out.end(), [](auto& x, auto& y) { return x.labels < y.labels; });
  EXPECT_EQ(out[0].labels,
            promql::Labels({{"__name__", "job:req:sum"}, {"job", "a"}, {"source", "rule"}}));
  EXPECT_EQ(out[0].v, 3);
  EXPECT_EQ(out[1].v, 5);
  EXPECT_EQ(g->Snapshot().rules[0].health, RuleHealth::kOk);

  Eval(*g, kT0 + kMin);  // job b vanished
  out = Written("job:req:sum", kT0 + kMin);
  ASSERT_EQ(out.size(), 2u);
  for (const auto& s : out) {
    if (s.labels.Get("job") == "b") {
      EXPECT_TRUE(promql::IsStaleNaN(s.v));
    } else {
      EXPECT_EQ(s.v, 5);  // i=2's sample at kT0 is still within the lookback
    }
  }
  auto stale = g->StaleMarkers(kT0 + 2 * kMin);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].labels.Get("job"), "a");
}

TEST_F(RulesTest, ErrorsAreRecordedNotFatal) {
  auto g = Group(R"(groups:
- name: e
  limit: 1
  rules:
  - record: dup
    expr: '{job="x"}'
  - record: many
    expr: req
  - alert: NotVector
    expr: '"str"'
  - alert: TooMany
    expr: req > 0
  - record: fine
    expr: vector(1)
)");
  storage_.Add({{"__name__", "a"}, {"job", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "b"}, {"job", "x"}}, kT0, 1);
  storage_.Add({{"__name__", "req"}, {"i", "1"}}, kT0, 1);
  storage_.Add({{"__name__", "req"}, {"i", "2"}}, kT0, 1);
  Eval(*g, kT0);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules.size(), 5u);
  EXPECT_EQ(s.rules[0].health, RuleHealth::kErr);
  EXPECT_EQ(s.rules[0].last_error,
            "vector contains metrics with the same labelset after applying rule labels");
  EXPECT_EQ(s.rules[1].last_error, "exceeded limit of 1 with 2 series");
  EXPECT_EQ(s.rules[2].last_error, "rule result is not a vector or scalar");
  EXPECT_EQ(s.rules[3].last_error, "exceeded limit of 1 with 2 alerts");
  EXPECT_TRUE(s.rules[3].alerts.empty());
  EXPECT_EQ(s.rules[4].health, RuleHealth::kOk);
  EXPECT_EQ(s.rules[4].last_evaluation_ms, kT0);
  EXPECT_EQ(Written("fine", kT0).size(), 1u);
  EXPECT_TRUE(Written("dup", kT0).empty());
  EXPECT_EQ(s.last_evaluation_ms, kT0);
}

TEST_F(RulesTest, DuplicateAlertLabelsAfterTemplatingIsAnError) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: Dup
    expr: req > 0
    labels:
      i: same
)");
  storage_.Add({{"__name__", "req"}, {"i", "1"}}, kT0, 1);
  storage_.Add({{"__name__", "req"}, {"i", "2"}}, kT0, 1);
  Eval(*g, kT0);
  EXPECT_EQ(g->Snapshot().rules[0].last_error,
            "vector contains metrics with the same labelset after applying alert labels");
}

TEST_F(RulesTest, TemplateErrorsRenderInPlaceAndQueryWorks) {
  auto g = Group(R"y(groups:
- name: g
  rules:
  - alert: T
    expr: x > 0
    annotations:
      bad: '{{ humanize "abc" }}'
      total: '{{ query "sum(x)" | first | value }}'
      ext: '{{ $externalLabels.cluster }}'
)y",
                 RuleGroupOptions{.external_labels = {{"cluster", "eu1"}}, .external_url = ""});
  storage_.Add({{"__name__", "x"}, {"i", "1"}}, kT0, 2);
  storage_.Add({{"__name__", "x"}, {"i", "2"}}, kT0, 3);
  Eval(*g, kT0);
  const GroupSnapshot snap = g->Snapshot();
  const Alert* a = Find(snap, 0, "i", "1");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->annotations.at("bad").rfind("<error expanding template: template: __alert_T:", 0),
            0u);
  EXPECT_EQ(a->annotations.at("total"), "5");
  EXPECT_EQ(a->annotations.at("ext"), "eu1");
}

TEST_F(RulesTest, GeneratorUrlLinksTheExpressionAsPrometheusDoes) {
  auto g = Group(
      R"y(groups:
- name: g
  rules:
  - alert: T
    expr: sum by (m) (rate(x[5m])) > 0.5
)y",
      RuleGroupOptions{.external_labels = {}, .external_url = "http://llmscope.example:8080"});
  storage_.Add({{"__name__", "x"}, {"m", "a"}}, kT0 - kMin, 0);
  storage_.Add({{"__name__", "x"}, {"m", "a"}}, kT0, 600);
  auto sent = Eval(*g, kT0);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].generator_url,
            "http://llmscope.example:8080/graph?g0.expr=sum+by+%28m%29+%28rate%28x%5B5m%5D%29%29+"
            "%3E+0.5&g0.tab=1");
}

TEST_F(RulesTest, ScalarExpressionAndQueryOffset) {
  auto g = Group(R"(groups:
- name: g
  query_offset: 1m
  rules:
  - alert: Always
    expr: vector(1)
  - record: t
    expr: time()
)");
  Eval(*g, kT0);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  EXPECT_EQ(s.rules[0].alerts[0].labels, promql::Labels({{"alertname", "Always"}}));
  auto t = Written("t", kT0 - kMin);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].v, (kT0 - kMin) / 1000.0);
}

TEST_F(RulesTest, GroupLabelsApplyToRules) {
  auto g = Group(R"(groups:
- name: g
  labels:
    team: a
    env: prod
  rules:
  - record: r
    expr: vector(1)
    labels:
      env: dev
)");
  Eval(*g, kT0);
  auto r = Written("r", kT0);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].labels, promql::Labels({{"__name__", "r"}, {"env", "dev"}, {"team", "a"}}));
}

TEST_F(RulesTest, RulesAndAlertsJsonInPrometheusShape) {
  auto g = Group(R"(groups:
- name: g
  interval: 30s
  rules:
  - alert: HighErrors
    expr: errors   >   5
    for: 2m
    labels:
      severity: page
    annotations:
      summary: "{{ $labels.instance }} \"quoted\""
  - record: r
    expr: vector(1)
  - record: s
    expr: vector(2)
    labels:
      a: b
)");
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0, 7.5);
  Eval(*g, kT0 + 500);
  std::vector<GroupSnapshot> snap = {g->Snapshot()};
  snap[0].evaluation_seconds = 0.000312805;  // the fake clock measures 0
  snap[0].rules[0].evaluation_seconds = 0.0001;
  const std::string alert =
      R"({"labels":{"alertname":"HighErrors","instance":"a","severity":"page"},)"
      R"("annotations":{"summary":"a \"quoted\""},"state":"pending",)"
      R"("activeAt":"2023-11-14T22:13:20.5Z","value":"7.5e+00"})";
  EXPECT_EQ(RenderAlertsJson(snap), R"({"status":"success","data":{"alerts":[)" + alert + "]}}");
  const std::string rules =
      R"({"status":"success","data":{"groups":[{"name":"g","file":"rules.yaml","rules":[)"
      R"({"state":"pending","name":"HighErrors","query":"errors > 5","duration":120,)"
      R"("keepFiringFor":0,"labels":{"severity":"page"},)"
      R"("annotations":{"summary":"{{ $labels.instance }} \"quoted\""},"alerts":[)" +
      alert +
      R"(],"health":"ok","evaluationTime":0.0001,"lastEvaluation":"2023-11-14T22:13:20.5Z",)"
      R"("type":"alerting"},)"
      R"j({"name":"r","query":"vector(1)","health":"ok","evaluationTime":0,)j"
      R"("lastEvaluation":"2023-11-14T22:13:20.5Z","type":"recording"},)"
      R"j({"name":"s","query":"vector(2)","labels":{"a":"b"},"health":"ok","evaluationTime":0,)j"
      R"("lastEvaluation":"2023-11-14T22:13:20.5Z","type":"recording"}],)"
      R"("interval":30,"limit":0,"evaluationTime":0.000312805,)"
      R"("lastEvaluation":"2023-11-14T22:13:20.5Z"}]}})";
  EXPECT_EQ(RenderRulesJson(snap), rules);
  const std::string only_alerts = RenderRulesJson(snap, RuleTypeFilter::kAlerting);
  EXPECT_EQ(only_alerts.find("recording"), std::string::npos);
  EXPECT_NE(only_alerts.find("HighErrors"), std::string::npos);
}

TEST_F(RulesTest, JsonBeforeFirstEvaluationAndErrors) {
  auto g = Group("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '\"s\"'\n");
  std::string before = RenderRulesJson({g->Snapshot()});
  EXPECT_NE(before.find(R"("health":"unknown")"), std::string::npos);
  EXPECT_NE(before.find(R"("lastEvaluation":"0001-01-01T00:00:00Z")"), std::string::npos);
  EXPECT_NE(before.find(R"("state":"inactive")"), std::string::npos);
  EXPECT_NE(before.find(R"("alerts":[])"), std::string::npos);
  Eval(*g, kT0);
  std::string after = RenderRulesJson({g->Snapshot()});
  EXPECT_NE(after.find(R"("health":"err","lastError":"rule result is not a vector or scalar")"),
            std::string::npos);
  EXPECT_EQ(RenderAlertsJson({}), R"({"status":"success","data":{"alerts":[]}})");
  EXPECT_EQ(RenderRulesJson({}), R"({"status":"success","data":{"groups":[]}})");
}

TEST_F(RulesTest, CopyStateFromKeepsUnchangedRules) {
  auto old = Group(kAlertRule);
  storage_.Add({{"__name__", "errors"}, {"instance", "a"}}, kT0, 7);
  Eval(*old, kT0);
  Eval(*old, kT0 + 2 * kMin);
  ASSERT_EQ(old->Snapshot().rules[0].state, AlertState::kFiring);

  // Same name and expression, new annotation text: the alert stays firing.
  std::string changed = kAlertRule;
  changed.replace(changed.find("errors\""), 7, "errs\"");
  auto same = Group(changed);
  EXPECT_TRUE(same->CopyStateFrom(*old).empty());
  EXPECT_EQ(same->Snapshot().rules[0].alerts[0].state, AlertState::kFiring);
  EXPECT_EQ(same->Snapshot().rules[0].alerts[0].fired_at_ms, kT0 + 2 * kMin);

  // A changed expression starts over; the old rule's series are returned for staleness.
  std::string other = kAlertRule;
  other.replace(other.find("errors > 5"), 10, "errors > 6");
  auto fresh = Group(other);
  EXPECT_EQ(fresh->CopyStateFrom(*old).size(), 2u);  // ALERTS and ALERTS_FOR_STATE
  EXPECT_TRUE(fresh->Snapshot().rules[0].alerts.empty());
}

TEST_F(RulesTest, RestoreAlertsMatchesByNameAndLiteralLabels) {
  auto g = Group(R"(groups:
- name: g
  rules:
  - alert: A
    expr: x > 0
    for: 10m
    labels:
      severity: page
  - alert: A
    expr: y > 0
    labels:
      severity: ticket
)");
  Alert page;
  page.labels = promql::Labels({{"alertname", "A"}, {"severity", "page"}});
  page.state = AlertState::kPending;
  page.active_at_ms = kT0 - 9 * kMin;
  Alert ticket = page;
  ticket.labels = promql::Labels({{"alertname", "A"}, {"severity", "ticket"}});
  ticket.state = AlertState::kFiring;
  Alert other = page;
  other.labels = promql::Labels({{"alertname", "B"}});
  EXPECT_EQ(g->RestoreAlerts(
                {{"g", "A", page}, {"g", "A", ticket}, {"other", "A", page}, {"g", "B", other}}),
            2u);
  GroupSnapshot s = g->Snapshot();
  ASSERT_EQ(s.rules[0].alerts.size(), 1u);
  EXPECT_EQ(s.rules[0].alerts[0].labels.Get("severity"), "page");
  ASSERT_EQ(s.rules[1].alerts.size(), 1u);
  EXPECT_EQ(s.rules[1].alerts[0].state, AlertState::kFiring);

  // The restored pending alert fires once `for` has elapsed since its original start.
  storage_.Add({{"__name__", "x"}}, kT0 + kMin, 1);
  Eval(*g, kT0 + kMin);
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].state, AlertState::kFiring);
  EXPECT_EQ(g->Snapshot().rules[0].alerts[0].active_at_ms, kT0 - 9 * kMin);
}

}  // namespace
}  // namespace llmscope::alerts
