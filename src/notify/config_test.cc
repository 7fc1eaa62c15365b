#include "notify/config.h"

#include <gtest/gtest.h>

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;

constexpr const char* kFull = R"(
global:
  resolve_timeout: 2m
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      group_interval: 1m
      continue: true
      routes:
        - matchers: ['team=~"a|b"', 'env!=dev']
          repeat_interval: 1h
    - matchers: ['team="ml"']
      group_by: ['...']
receivers:
  - name: default
    webhook_configs:
      - url: http://127.0.0.1:9/hook
        max_alerts: 10
  - name: pager
    slack_configs:
      - api_url: https://hooks.slack.com/services/x
        channel: '#alerts'
        title: '{{ .Status }}: {{ .GroupLabels.alertname }}'
    pagerduty_configs:
      - routing_key: abc
        severity: critical
        send_resolved: false
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname, cluster]
alertmanagers:
  - url: http://am:9093/
    timeout: 3s
)";

TEST(ConfigTest, ParsesEveryFieldAndInheritsIntoChildren) {
  auto c = ParseConfig(kFull);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->resolve_timeout, 2min);
  const Route& root = c->route;
  EXPECT_EQ(root.receiver, "default");
  EXPECT_EQ(root.group_by, std::vector<std::string>{"alertname"});
  EXPECT_EQ(root.group_wait, 10s);
  EXPECT_EQ(root.group_interval, 5min);  // default
  EXPECT_EQ(root.repeat_interval, 4h);   // default
  EXPECT_EQ(root.key, "{}");
  ASSERT_EQ(root.routes.size(), 2u);

  const Route& critical = root.routes[0];
  EXPECT_EQ(critical.receiver, "pager");
  EXPECT_TRUE(critical.continue_matching);
  EXPECT_EQ(critical.group_wait, 10s);  // inherited
  EXPECT_EQ(critical.group_interval, 1min);
  EXPECT_EQ(critical.group_by, std::vector<std::string>{"alertname"});
  EXPECT_EQ(critical.key, R"({}/{severity="critical"}/0)");
  ASSERT_EQ(critical.routes.size(), 1u);
  const Route& team = critical.routes[0];
  EXPECT_EQ(team.receiver, "pager");     // inherited from its parent, not the root
  EXPECT_EQ(team.group_interval, 1min);  // likewise
  EXPECT_EQ(team.repeat_interval, 1h);
  ASSERT_EQ(team.matchers.size(), 2u);
  EXPECT_EQ(team.matchers[1].String(), R"(env!="dev")");
  EXPECT_EQ(team.key, R"({}/{severity="critical"}/0/{team=~"a|b", env!="dev"}/0)");

  const Route& ml = root.routes[1];
  EXPECT_TRUE(ml.group_by_all);
  EXPECT_TRUE(ml.group_by.empty());
  EXPECT_FALSE(ml.continue_matching);
  EXPECT_EQ(ml.key, R"({}/{team="ml"}/1)");

  ASSERT_EQ(c->receivers.size(), 2u);
  const ReceiverConfig* def = c->FindReceiver("default");
  ASSERT_NE(def, nullptr);
  ASSERT_EQ(def->webhook_configs.size(), 1u);
  EXPECT_EQ(def->webhook_configs[0].url, "http://127.0.0.1:9/hook");
  EXPECT_TRUE(def->webhook_configs[0].send_resolved);  // default
  EXPECT_EQ(def->webhook_configs[0].max_alerts, 10u);
  const ReceiverConfig* pager = c->FindReceiver("pager");
  ASSERT_NE(pager, nullptr);
  ASSERT_EQ(pager->slack_configs.size(), 1u);
  EXPECT_EQ(pager->slack_configs[0].channel, "#alerts");
  EXPECT_FALSE(pager->slack_configs[0].send_resolved);  // Slack's default
  ASSERT_EQ(pager->pagerduty_configs.size(), 1u);
  EXPECT_EQ(pager->pagerduty_configs[0].url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(pager->pagerduty_configs[0].routing_key, "abc");
  EXPECT_EQ(pager->pagerduty_configs[0].severity, "critical");
  EXPECT_FALSE(pager->pagerduty_configs[0].send_resolved);
  EXPECT_EQ(pager->integration_count(), 2u);
  EXPECT_EQ(c->FindReceiver("nobody"), nullptr);

  ASSERT_EQ(c->inhibit_rules.size(), 1u);
  EXPECT_EQ(c->inhibit_rules[0].equal, (std::vector<std::string>{"alertname", "cluster"}));
  EXPECT_EQ(c->inhibit_rules[0].source_matchers[0].value(), "critical");
  ASSERT_EQ(c->alertmanagers.size(), 1u);
  EXPECT_EQ(c->alertmanagers[0].url, "http://am:9093");  // trailing slash dropped
  EXPECT_EQ(c->alertmanagers[0].timeout, 3s);
}

TEST(ConfigTest, MinimalConfigGetsAlertmanagerDefaults) {
  auto c = ParseConfig("route: {receiver: r}\nreceivers: [{name: r}]\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->route.group_wait, 30s);
  EXPECT_EQ(c->route.group_interval, 5min);
  EXPECT_EQ(c->route.repeat_interval, 4h);
  EXPECT_EQ(c->resolve_timeout, 5min);
  EXPECT_TRUE(c->route.group_by.empty());
  EXPECT_FALSE(c->route.group_by_all);
  EXPECT_TRUE(c->alertmanagers.empty());
}

// Every problem is reported, each with its path.
TEST(ConfigTest, ListsEveryErrorWithItsPath) {
  auto c = ParseConfig(R"(
route:
  receiver: default
  matchers: ['a="b"']
  group_wait: soon
  routes:
    - receiver: default
    - matchers: ['severity=~"("', 'ok="1"']
      receiver: ghost
      group_by: ['...', alertname]
      colour: red
receivers:
  - name: default
    webhook_configs:
      - url: ftp://x
        max_alerts: -1
  - name: default
    slack_configs:
      - channel: x
        title: '{{ .Nope }}'
    pagerduty_configs:
      - severity: loud
inhibit_rules:
  - equal: ['bad-name']
alertmanagers:
  - timeout: 0s
)");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), core::StatusCode::kInvalidArgument);
  const std::string m = c.status().message();
  for (const char* expected : {
           "route.matchers: not allowed on the root route",
           "route.group_wait: invalid duration \"soon\"",
           "route.routes[1].matchers[0]: matcher \"severity=~\"(\"\": invalid regular expression",
           "route.routes[1].receiver: undefined receiver \"ghost\"",
           "route.routes[1].group_by: '...' must be the only element",
           "route.routes[1].colour: unknown key",
           "receivers[0].webhook_configs[0].url: base URL 'ftp://x' must start with http",
           "receivers[0].webhook_configs[0].max_alerts: must be a whole number >= 0",
           "receivers[1].name: duplicate receiver name \"default\"",
           "receivers[1].slack_configs[0].api_url: is required",
           "receivers[1].slack_configs[0].title: unsupported template action {{ .Nope }}",
           "receivers[1].pagerduty_configs[0].routing_key: is required",
           "receivers[1].pagerduty_configs[0].severity: must be one of",
           "inhibit_rules[0].equal[0]: invalid label name \"bad-name\"",
           "alertmanagers[0].url: is required",
           "alertmanagers[0].timeout: must be greater than 0",
       }) {
    EXPECT_NE(m.find(expected), std::string::npos) << "missing: " << expected << "\nin:\n" << m;
  }
  // The first route inherits the receiver: no problem reported for it.
  EXPECT_EQ(m.find("route.routes[0]"), std::string::npos) << m;
}

TEST(ConfigTest, RejectsStructuralProblems) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"", "route: is required"},
      {"receivers: []", "route: is required"},
      {"route: {}\n", "route.receiver: is required on the root route"},
      {"route: {receiver: r, continue: true}\nreceivers: [{name: r}]",
       "route.continue: not allowed on the root route"},
      {"route: [1]", "route: must be a map"},
      {"route: {receiver: r}\nreceivers: [{name: r}]\nextra: 1", "config.extra: unknown key"},
      {"route: {receiver: r, routes: {a: 1}}\nreceivers: [{name: r}]",
       "route.routes: must be a list of routes"},
      {"route: {receiver: r, group_interval: 0s}\nreceivers: [{name: r}]",
       "route.group_interval: must be greater than 0"},
      {"route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://x', "
       "send_resolved: maybe}]}]",
       "receivers[0].webhook_configs[0].send_resolved: must be a boolean"},
      {"route: {receiver: r, group_by: [a, a]}\nreceivers: [{name: r}]",
       "route.group_by: duplicate label name"},
      {"route: {receiver: r\n", "not valid YAML"},
  };
  for (const Case& k : cases) {
    auto c = ParseConfig(k.yaml);
    ASSERT_FALSE(c.ok()) << k.yaml;
    EXPECT_NE(c.status().message().find(k.expected), std::string::npos)
        << k.yaml << "\n=> " << c.status().message();
  }
}

}  // namespace
}  // namespace llmscope::notify
