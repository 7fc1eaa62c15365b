#include "alerts/rule_file.h"

#include <gtest/gtest.h>

namespace llmscope::alerts {
namespace {

constexpr const char* kValid = R"(groups:
  - name: llm
    interval: 30s
    limit: 10
    rules:
      - record: job:llm_requests:rate5m
        expr: sum by (job) (rate(llm_requests_total[5m]))
        labels:
          source: rules
      - alert: HighLatency
        expr: histogram_quantile(0.99, sum by (le) (rate(llm_request_duration_seconds_bucket[5m]))) > 2
        for: 1h30m
        keep_firing_for: 5m
        labels:
          severity: critical
          instance: "{{ $labels.instance }}"
        annotations:
          summary: "P99 {{ $value | humanizeDuration }}"
  - name: other
    rules:
      - alert: Always
        expr: vector(1)
)";

TEST(RuleFile, ParsesPrometheusRuleFile) {
  auto f = ParseRuleFile("rules.yaml", kValid);
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->groups.size(), 2u);
  EXPECT_EQ(f->NumRules(), 3u);
  const GroupSpec& g = f->groups[0];
  EXPECT_EQ(g.name, "llm");
  EXPECT_EQ(g.file, "rules.yaml");
  EXPECT_EQ(g.interval_ms, 30000);
  EXPECT_EQ(g.limit, 10);
  ASSERT_EQ(g.rules.size(), 2u);
  EXPECT_EQ(g.rules[0].kind, RuleSpec::Kind::kRecording);
  EXPECT_EQ(g.rules[0].name, "job:llm_requests:rate5m");
  EXPECT_EQ(g.rules[0].labels.at("source"), "rules");
  EXPECT_EQ(g.rules[0].line, 6);
  const RuleSpec& a = g.rules[1];
  EXPECT_EQ(a.kind, RuleSpec::Kind::kAlerting);
  EXPECT_EQ(a.name, "HighLatency");
  EXPECT_EQ(a.for_ms, 90 * 60000);
  EXPECT_EQ(a.keep_firing_for_ms, 5 * 60000);
  EXPECT_EQ(a.labels.at("severity"), "critical");
  EXPECT_EQ(a.annotations.at("summary"), "P99 {{ $value | humanizeDuration }}");
  EXPECT_EQ(f->groups[1].interval_ms, 0);
  EXPECT_EQ(f->groups[1].rules[0].expr, "vector(1)");
}

TEST(RuleFile, ParsesPrometheusRuleManifest) {
  std::string manifest =
      "apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: x\n"
      "  namespace: monitoring\nspec:\n  groups:\n    - name: g\n      rules:\n"
      "        - alert: A\n          expr: up == 0\n";
  auto f = ParseRuleFile("pr.yaml", manifest);
  ASSERT_TRUE(f.ok()) << f.status().message();
  ASSERT_EQ(f->groups.size(), 1u);
  EXPECT_EQ(f->groups[0].rules[0].name, "A");

  auto bad = ParseRuleFileCollect("pr.yaml", "apiVersion: v1\nkind: ConfigMap\nspec: {}\n");
  ASSERT_EQ(bad.errors.size(), 2u);
  EXPECT_EQ(bad.errors[0], "pr.yaml:1:13: apiVersion must be monitoring.coreos.com/v1, got \"v1\"");
  EXPECT_EQ(bad.errors[1], "pr.yaml:2:7: kind must be PrometheusRule, got \"ConfigMap\"");
}

TEST(RuleFile, EmptyFileHasNoGroups) {
  auto f = ParseRuleFile("e.yaml", "");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->groups.empty());
  auto g = ParseRuleFile("e.yaml", "groups: []\n");
  ASSERT_TRUE(g.ok());
}

TEST(RuleFile, CollectsEveryErrorWithPositions) {
  constexpr const char* kBad = R"(groups:
  - name: g1
    interval: 5x
    rules:
      - record: "bad name"
        expr: sum(
        for: 5m
        annotations:
          a: b
      - alert: A
        record: r
        expr: up
      - expr: up
      - alert: T
        expr: up == 0
        unknown_key: 1
        labels:
          __name__: x
          "bad-label": y
          ok: "{{ nosuch }}"
        annotations:
          summary: "{{ if }}"
  - name: g1
    rules: []
  - rules: []
)";
  RuleFileParse p = ParseRuleFileCollect("bad.yaml", kBad);
  std::vector<std::string> want = {
      "bad.yaml:3:15: group \"g1\": field interval: not a valid duration string: \"5x\"",
      "bad.yaml:5:17: group \"g1\", rule 1, \"bad name\": invalid recording rule name: bad name",
      "bad.yaml:6:15: group \"g1\", rule 1, \"bad name\": could not parse expression: 1:5: "
      "parse error:",  // prefix
      "bad.yaml:7:9: group \"g1\", rule 1, \"bad name\": invalid field 'for' in recording rule",
      "bad.yaml:8:9: group \"g1\", rule 1, \"bad name\": invalid field 'annotations' in "
      "recording rule",
      "bad.yaml:10:9: group \"g1\", rule 2, \"A\": only one of 'record' and 'alert' must be set",
      "bad.yaml:13:9: group \"g1\", rule 3, \"\": one of 'record' or 'alert' must be set",
      "bad.yaml:16:9: group \"g1\", rule 4, \"T\": field unknown_key not found in rule",
      "bad.yaml:18:11: group \"g1\", rule 4, \"T\": invalid label name: __name__",
      "bad.yaml:19:11: group \"g1\", rule 4, \"T\": invalid label name: bad-label",
      "bad.yaml:20:15: group \"g1\", rule 4, \"T\": label \"ok\": template: __alert_T:1:4: "
      "function \"nosuch\" not defined",
      "bad.yaml:22:20: group \"g1\", rule 4, \"T\": annotation \"summary\": template: "
      "__alert_T:1:1: missing value for if",
      "bad.yaml:23:11: group \"g1\": \"g1\" is repeated in the same file",
      "bad.yaml:25:5: group \"\": Groupname must not be empty",
  };
  ASSERT_EQ(p.errors.size(), want.size()) << [&] {
    std::string all;
    for (auto& e : p.errors) all += e + "\n";
    return all;
  }();
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(p.errors[i].substr(0, want[i].size()), want[i]) << "error " << i;
  }
  auto r = ParseRuleFile("bad.yaml", kBad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
  const std::string msg = r.status().message();
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), static_cast<long>(want.size() - 1));
}

TEST(RuleFile, RecordingRuleRestrictionsAndMissingExpr) {
  RuleFileParse p = ParseRuleFileCollect(
      "f", "groups:\n- name: g\n  rules:\n  - record: r\n    keep_firing_for: 1m\n");
  ASSERT_EQ(p.errors.size(), 2u);
  EXPECT_NE(p.errors[0].find("field 'expr' must be set in rule"), std::string::npos);
  EXPECT_NE(p.errors[1].find("invalid field 'keep_firing_for' in recording rule"),
            std::string::npos);
}

TEST(RuleFile, UnknownTopLevelAndGroupKeys) {
  RuleFileParse p = ParseRuleFileCollect(
      "f", "groups:\n- name: g\n  evaluation_interval: 1m\n  rules: []\nextra: 1\n");
  ASSERT_EQ(p.errors.size(), 2u);
  EXPECT_EQ(p.errors[0].substr(0, 48), "f:3:3: group \"g\": field evaluation_interval not ");
  EXPECT_EQ(p.errors[1].substr(0, 30), "f:5:1: field extra not found i");  // document order
}

TEST(RuleFile, YamlSyntaxErrorHasLine) {
  RuleFileParse p = ParseRuleFileCollect("y.yaml", "groups:\n  - name: [unclosed\n");
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].rfind("y.yaml:", 0), 0u);
  EXPECT_NE(p.errors[0].find("yaml:"), std::string::npos);
}

TEST(RuleFile, WrongShapes) {
  EXPECT_FALSE(ParseRuleFile("f", "groups: 3\n").ok());
  EXPECT_FALSE(ParseRuleFile("f", "- a\n- b\n").ok());
  EXPECT_FALSE(ParseRuleFile("f", "groups:\n- name: g\n  rules: {a: 1}\n").ok());
  EXPECT_FALSE(ParseRuleFile("f", "groups:\n- name: g\n  limit: -1\n  rules: []\n").ok());
  EXPECT_FALSE(ParseRuleFile("f",
                             "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n"
                             "    labels: [a]\n")
                   .ok());
}

TEST(RuleFile, LoadReportsUnreadableFile) {
  auto r = LoadRuleFile("/nonexistent/rules.yaml");
  EXPECT_EQ(r.status().code(), core::StatusCode::kNotFound);
  RuleFileParse p = LoadRuleFileCollect("/nonexistent/rules.yaml");
  ASSERT_EQ(p.errors.size(), 1u);
}

TEST(RuleFile, NameValidation) {
  EXPECT_TRUE(IsLegacyMetricName("job:rate5m"));
  EXPECT_FALSE(IsLegacyMetricName("5m"));
  EXPECT_FALSE(IsLegacyMetricName(""));
  EXPECT_TRUE(IsLegacyLabelName("_a1"));
  EXPECT_FALSE(IsLegacyLabelName("a:b"));
}

}  // namespace
}  // namespace llmscope::alerts
