#include "notify/dispatcher.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "testing/fake_clock.h"

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr const char* kConfig = R"(
route:
  receiver: default
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['severity=~"critical|warning"']
      receiver: team
    - matchers: ['severity="warning"']
      receiver: never
    - matchers: ['team="ml"']
      receiver: ml
      group_by: ['...']
receivers:
  - name: default
    webhook_configs: [{url: 'http://127.0.0.1:1/default'}]
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:1/pager', send_resolved: false}]
  - name: team
    webhook_configs: [{url: 'http://127.0.0.1:1/team'}]
    slack_configs: [{api_url: 'http://127.0.0.1:1/slack', send_resolved: true}]
  - name: never
  - name: ml
    webhook_configs: [{url: 'http://127.0.0.1:1/ml'}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="info"']
    equal: [cluster]
)";

std::shared_ptr<const Config> Parse(const char* yaml) {
  auto c = ParseConfig(yaml);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::make_shared<const Config>(std::move(c).value());
}

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
      : silences_({}, clock_, logger_),
        d_(Parse(kConfig), &silences_, clock_, "http://llmscope:8080") {}

  // An alert as the rule evaluator sends it while firing: ends_at well ahead.
  Alert Firing(LabelSet labels) const {
    Alert a;
    a.labels = std::move(labels);
    a.annotations = {{"summary", "something is wrong"}};
    a.starts_at_unix_nanos = clock_.UnixNanos();
    a.ends_at_unix_nanos = clock_.UnixNanos() + std::chrono::nanoseconds(24h).count();
    a.generator_url = "http://llmscope:8080/graph";
    return a;
  }
  Alert Resolved(Alert a) const {
    a.ends_at_unix_nanos = clock_.UnixNanos();
    return a;
  }

  // Ticks and reports every notification as delivered.
  std::vector<Notification> TickOk() {
    std::vector<Notification> ns = d_.Tick();
    for (const Notification& n : ns) d_.Done(n, std::vector<bool>(n.deliveries.size(), true));
    return ns;
  }

  testing::FakeClock clock_;
  core::NullLogger logger_;
  Silences silences_;
  Dispatcher d_;
};

std::vector<std::string> Names(const Message& m) {
  std::vector<std::string> out;
  for (const AlertView& a : m.alerts) {
    out.push_back(a.alert.labels.at("alertname") + (a.resolved ? ":resolved" : ":firing"));
  }
  return out;
}

TEST(MatchRoutesTest, FirstMatchingChildWinsUnlessContinue) {
  auto c = Parse(kConfig);
  auto receivers = [&](LabelSet l) {
    std::vector<std::string> out;
    for (const Route* r : MatchRoutes(c->route, l)) out.push_back(r->receiver);
    return out;
  };
  // critical: pager (continue) and then team; "never" is not reached.
  EXPECT_EQ(receivers({{"severity", "critical"}}), (std::vector<std::string>{"pager", "team"}));
  // warning: team wins; the later warning route is not reached.
  EXPECT_EQ(receivers({{"severity", "warning"}}), std::vector<std::string>{"team"});
  EXPECT_EQ(receivers({{"team", "ml"}}), std::vector<std::string>{"ml"});
  EXPECT_EQ(receivers({{"severity", "info"}}), std::vector<std::string>{"default"});
}

TEST_F(DispatcherTest, GroupWaitThenGroupIntervalThenRepeatInterval) {
  d_.Put({Firing({{"alertname", "A"}, {"model", "m1"}})});
  EXPECT_TRUE(TickOk().empty());
  clock_.Advance(29s);
  EXPECT_TRUE(TickOk().empty());  // group_wait not over
  clock_.Advance(1s);
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].receiver, "default");
  EXPECT_EQ(ns[0].group_key, R"({}:{alertname="A"})");
  ASSERT_EQ(ns[0].deliveries.size(), 1u);
  const Message& m = ns[0].deliveries[0].message;
  EXPECT_EQ(Names(m), std::vector<std::string>{"A:firing"});
  EXPECT_EQ(m.group_labels, (LabelSet{{"alertname", "A"}}));
  EXPECT_EQ(m.external_url, "http://llmscope:8080");
  EXPECT_TRUE(m.firing);

  // A second alert of the same group waits for group_interval, not group_wait.
  clock_.Advance(1min);
  d_.Put({Firing({{"alertname", "A"}, {"model", "m2"}})});
  clock_.Advance(3min + 59s);
  EXPECT_TRUE(TickOk().empty());
  clock_.Advance(1s);  // 5m after the first flush
  ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].deliveries[0].message.alerts.size(), 2u);
  EXPECT_EQ(ns[0].deliveries[0].message.common_labels, (LabelSet{{"alertname", "A"}}));

  // Unchanged: nothing until repeat_interval (4h) after the last notification.
  for (int i = 0; i < 47; ++i) {
    clock_.Advance(5min);
    EXPECT_TRUE(TickOk().empty()) << "flush " << i;
  }
  clock_.Advance(5min);
  ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].deliveries[0].message.alerts.size(), 2u);
}

TEST_F(DispatcherTest, GroupsByTheRoutesLabels) {
  d_.Put({Firing({{"alertname", "A"}, {"x", "1"}}), Firing({{"alertname", "A"}, {"x", "2"}}),
          Firing({{"alertname", "B"}})});
  d_.Put({Firing({{"alertname", "C"}, {"team", "ml"}, {"x", "1"}}),
          Firing({{"alertname", "C"}, {"team", "ml"}, {"x", "2"}})});
  clock_.Advance(30s);
  auto ns = TickOk();
  std::map<std::string, size_t> sizes;
  for (const Notification& n : ns) sizes[n.group_key] = n.deliveries[0].message.alerts.size();
  // group_by [alertname]: A's two alerts share a group; group_by ['...']: every label set is
  // its own group.
  EXPECT_EQ(sizes, (std::map<std::string, size_t>{
                       {R"({}:{alertname="A"})", 2},
                       {R"({}:{alertname="B"})", 1},
                       {R"({}/{team="ml"}/3:{alertname="C", team="ml", x="1"})", 1},
                       {R"({}/{team="ml"}/3:{alertname="C", team="ml", x="2"})", 1}}));
}

TEST_F(DispatcherTest, ContinueSendsToEveryMatchingReceiverWithItsIntegrations) {
  d_.Put({Firing({{"alertname", "Down"}, {"severity", "critical"}})});
  clock_.Advance(30s);
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 2u);
  std::map<std::string, std::vector<IntegrationKind>> by_receiver;
  for (const Notification& n : ns) {
    for (const Delivery& d : n.deliveries) by_receiver[n.receiver].push_back(KindOf(d.config));
  }
  EXPECT_EQ(by_receiver["pager"], std::vector<IntegrationKind>{IntegrationKind::kWebhook});
  EXPECT_EQ(by_receiver["team"],
            (std::vector<IntegrationKind>{IntegrationKind::kWebhook, IntegrationKind::kSlack}));
}

TEST_F(DispatcherTest, ResolvedIsNotifiedOnceThenTheGroupIsGone) {
  const Alert a = Firing({{"alertname", "A"}});
  d_.Put({a});
  clock_.Advance(30s);
  ASSERT_EQ(TickOk().size(), 1u);
  clock_.Advance(1min);
  d_.Put({Resolved(a)});
  clock_.Advance(4min);
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(Names(ns[0].deliveries[0].message), std::vector<std::string>{"A:resolved"});
  EXPECT_FALSE(ns[0].deliveries[0].message.firing);
  EXPECT_TRUE(d_.Groups().empty());
  EXPECT_TRUE(d_.Alerts().empty());
  clock_.Advance(5min);
  EXPECT_TRUE(TickOk().empty());
  EXPECT_FALSE(d_.NextFlush().has_value());
}

TEST_F(DispatcherTest, AnAlertWhoseEndPassesResolvesWithoutBeingSent) {
  Alert a = Firing({{"alertname", "A"}});
  a.ends_at_unix_nanos = clock_.UnixNanos() + std::chrono::nanoseconds(2min).count();
  d_.Put({a});
  clock_.Advance(30s);
  ASSERT_EQ(TickOk().size(), 1u);
  clock_.Advance(5min);  // the evaluator stopped re-sending; ends_at passed
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(Names(ns[0].deliveries[0].message), std::vector<std::string>{"A:resolved"});
}

TEST_F(DispatcherTest, WithoutSendResolvedTheResolutionIsNotSent) {
  // pager has send_resolved: false; team has it (webhook default, slack explicitly).
  const Alert a = Firing({{"alertname", "Down"}, {"severity", "critical"}});
  d_.Put({a});
  clock_.Advance(30s);
  ASSERT_EQ(TickOk().size(), 2u);
  d_.Put({Resolved(a)});
  clock_.Advance(5min);
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].receiver, "team");
  EXPECT_EQ(ns[0].deliveries.size(), 2u);
  EXPECT_TRUE(d_.Groups().empty());
}

TEST_F(DispatcherTest, OnlyResolvedAlertsNeverNotifiedAreDropped) {
  d_.Put({Resolved(Firing({{"alertname", "A"}}))});
  clock_.Advance(30s);
  EXPECT_TRUE(TickOk().empty());
  EXPECT_TRUE(d_.Groups().empty());
}

TEST_F(DispatcherTest, FailedDeliveryIsRetriedAtTheNextGroupInterval) {
  d_.Put({Firing({{"alertname", "A"}})});
  clock_.Advance(30s);
  auto ns = d_.Tick();
  ASSERT_EQ(ns.size(), 1u);
  // While in flight the group is not flushed again.
  clock_.Advance(5min);
  EXPECT_TRUE(d_.Tick().empty());
  d_.Done(ns[0], {false});
  ns = TickOk();  // due already: flushed at once, and sent again
  ASSERT_EQ(ns.size(), 1u);
  clock_.Advance(5min);
  EXPECT_TRUE(TickOk().empty());  // delivered now: no repeat before repeat_interval
}

TEST_F(DispatcherTest, FailedResolvedDeliveryKeepsTheAlertForTheNextFlush) {
  const Alert a = Firing({{"alertname", "A"}});
  d_.Put({a});
  clock_.Advance(30s);
  ASSERT_EQ(TickOk().size(), 1u);
  d_.Put({Resolved(a)});
  clock_.Advance(5min);
  auto ns = d_.Tick();
  ASSERT_EQ(ns.size(), 1u);
  d_.Done(ns[0], {false});
  EXPECT_EQ(d_.Groups().size(), 1u);
  clock_.Advance(5min);
  ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(Names(ns[0].deliveries[0].message), std::vector<std::string>{"A:resolved"});
  EXPECT_TRUE(d_.Groups().empty());
}

TEST_F(DispatcherTest, OldAlertOfANewGroupSkipsGroupWait) {
  Alert a = Firing({{"alertname", "A"}});
  a.starts_at_unix_nanos -= std::chrono::nanoseconds(10min).count();
  d_.Put({a});
  EXPECT_EQ(TickOk().size(), 1u);
}

TEST_F(DispatcherTest, ActiveSilenceMutesAndItsExpiryNotifies) {
  Silence s;
  s.matchers = {*ParseMatcher(R"(alertname="A")")};
  s.starts_at_unix_nanos = clock_.UnixNanos();
  s.ends_at_unix_nanos = clock_.UnixNanos() + std::chrono::nanoseconds(1h).count();
  s.created_by = "me";
  s.comment = "quiet";
  const std::string id = *silences_.Set(s);
  d_.Put({Firing({{"alertname", "A"}}), Firing({{"alertname", "A"}, {"x", "2"}}),
          Firing({{"alertname", "B"}})});
  clock_.Advance(30s);
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);  // only B
  EXPECT_EQ(Names(ns[0].deliveries[0].message), std::vector<std::string>{"B:firing"});

  auto statuses = d_.Alerts();
  ASSERT_EQ(statuses.size(), 3u);
  size_t suppressed = 0;
  for (const AlertStatus& st : statuses) {
    if (st.alert.labels.at("alertname") == "A") {
      EXPECT_EQ(st.silenced_by, std::vector<std::string>{id});
      EXPECT_TRUE(st.suppressed());
      ++suppressed;
    }
  }
  EXPECT_EQ(suppressed, 2u);

  ASSERT_TRUE(silences_.Expire(id).ok());
  clock_.Advance(5min);
  ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(Names(ns[0].deliveries[0].message), (std::vector<std::string>{"A:firing", "A:firing"}));
}

TEST_F(DispatcherTest, InhibitionNeedsAFiringSourceWithEqualLabels) {
  const Alert source = Firing({{"alertname", "Down"}, {"severity", "critical"}, {"cluster", "a"}});
  d_.Put({source, Firing({{"alertname", "Slow"}, {"severity", "info"}, {"cluster", "a"}}),
          Firing({{"alertname", "Slow"}, {"severity", "info"}, {"cluster", "b"}})});
  clock_.Advance(30s);
  std::vector<std::string> clusters;
  for (const Notification& n : TickOk()) {
    if (n.group_key != R"({}:{alertname="Slow"})") continue;
    for (const AlertView& a : n.deliveries[0].message.alerts) {
      clusters.push_back(a.alert.labels.at("cluster"));
    }
  }
  EXPECT_EQ(clusters, std::vector<std::string>{"b"});  // cluster a is inhibited
  for (const AlertStatus& st : d_.Alerts()) {
    const bool inhibited =
        st.alert.labels.at("alertname") == "Slow" && st.alert.labels.at("cluster") == "a";
    EXPECT_EQ(st.inhibited_by.empty(), !inhibited) << LabelSetString(st.alert.labels);
    if (inhibited) {
      EXPECT_EQ(st.inhibited_by,
                std::vector<std::string>{FingerprintHex(Fingerprint(source.labels))});
    }
  }
  // The source resolves: the target is no longer muted and is notified.
  d_.Put({Resolved(source)});
  clock_.Advance(5min);
  clusters.clear();
  for (const Notification& n : TickOk()) {
    if (n.group_key != R"({}:{alertname="Slow"})") continue;
    for (const AlertView& a : n.deliveries[0].message.alerts) {
      clusters.push_back(a.alert.labels.at("cluster"));
    }
  }
  EXPECT_EQ(clusters, (std::vector<std::string>{"a", "b"}));
}

TEST_F(DispatcherTest, ReceivedWithoutEndResolvesAfterResolveTimeout) {
  Alert a = Firing({{"alertname", "A"}});
  a.ends_at_unix_nanos = 0;
  d_.Put({a});
  ASSERT_EQ(d_.Alerts().size(), 1u);
  EXPECT_EQ(d_.Alerts()[0].alert.ends_at_unix_nanos,
            clock_.UnixNanos() + std::chrono::nanoseconds(5min).count());
  clock_.Advance(5min);
  EXPECT_TRUE(d_.Alerts().empty());
}

TEST_F(DispatcherTest, UpdatesKeepTheEarliestStart) {
  const Alert first = Firing({{"alertname", "A"}});
  d_.Put({first});
  clock_.Advance(1min);
  d_.Put({Firing({{"alertname", "A"}})});  // a later start for the same, still firing alert
  ASSERT_EQ(d_.Alerts().size(), 1u);
  EXPECT_EQ(d_.Alerts()[0].alert.starts_at_unix_nanos, first.starts_at_unix_nanos);
  EXPECT_EQ(d_.Alerts()[0].updated_at_unix_nanos, clock_.UnixNanos());
}

TEST_F(DispatcherTest, ApplyConfigKeepsUnchangedRoutesAndRebuildsChangedOnes) {
  d_.Put({Firing({{"alertname", "A"}}), Firing({{"alertname", "M"}, {"team", "ml"}})});
  clock_.Advance(30s);
  ASSERT_EQ(TickOk().size(), 2u);
  // The same config again: groups and log kept, nothing is re-sent.
  d_.ApplyConfig(Parse(kConfig));
  clock_.Advance(5min);
  EXPECT_TRUE(TickOk().empty());
  // The ml route changes its receiver's interval: its group starts over (and, its alert
  // being older than group_wait, is sent at once); the root's group stays quiet.
  std::string changed = kConfig;
  const std::string from = "      receiver: ml\n";
  changed.replace(changed.find(from), from.size(), from + "      group_interval: 1m\n");
  d_.ApplyConfig(Parse(changed.c_str()));
  auto ns = TickOk();
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].receiver, "ml");
}

TEST_F(DispatcherTest, NextFlushFollowsTheEarliestGroup) {
  EXPECT_FALSE(d_.NextFlush().has_value());
  const core::MonoTime t0 = clock_.Now();
  d_.Put({Firing({{"alertname", "A"}})});
  ASSERT_TRUE(d_.NextFlush().has_value());
  EXPECT_EQ(*d_.NextFlush(), t0 + 30s);
}

TEST(RenderAlertsJsonTest, GettableAlertShape) {
  AlertStatus s;
  s.alert.labels = {{"alertname", "A"}, {"severity", "info"}};
  s.alert.annotations = {{"summary", "x"}};
  s.alert.starts_at_unix_nanos = 1'700'000'000'000'000'000;
  s.alert.ends_at_unix_nanos = 1'700'000'300'000'000'000;
  s.alert.generator_url = "http://g";
  s.fingerprint = 0xabc;
  s.updated_at_unix_nanos = 1'700'000'060'000'000'000;
  s.receivers = {"team"};
  s.silenced_by = {"s1"};
  AlertStatus active = s;
  active.silenced_by.clear();
  json::value v = json::parse(RenderAlertsJson({s, active}));
  json::value want = json::parse(R"([{
    "annotations": {"summary": "x"},
    "endsAt": "2023-11-14T22:18:20Z",
    "fingerprint": "0000000000000abc",
    "receivers": [{"name": "team"}],
    "startsAt": "2023-11-14T22:13:20Z",
    "status": {"inhibitedBy": [], "silencedBy": ["s1"], "state": "suppressed"},
    "updatedAt": "2023-11-14T22:14:20Z",
    "generatorURL": "http://g",
    "labels": {"alertname": "A", "severity": "info"}}])");
  ASSERT_EQ(v.as_array().size(), 2u);
  EXPECT_EQ(v.as_array()[0], want.as_array()[0]) << json::serialize(v);
  EXPECT_EQ(v.as_array()[1].at("status").at("state"), "active");
}

}  // namespace
}  // namespace llmscope::notify
