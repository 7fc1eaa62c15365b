#include "notify/receivers.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "http/test_capture_server.h"
#include "metrics/registry.h"
#include "testing/fake_clock.h"

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

Message TwoAlerts(bool second_resolved) {
  AlertView a;
  a.alert.labels = {{"alertname", "HighLatency"}, {"model", "gpt-4o"}, {"severity", "warning"}};
  a.alert.annotations = {{"summary", "p99 over 2s"}, {"runbook", "http://rb"}};
  a.alert.starts_at_unix_nanos = 1'700'000'000'000'000'000;
  a.alert.ends_at_unix_nanos = 0;
  a.alert.generator_url = "http://llmscope/graph?g0.expr=x";
  a.fingerprint = Fingerprint(a.alert.labels);
  AlertView b = a;
  b.alert.labels["model"] = "claude";
  b.alert.annotations["summary"] = "p99 over 3s";
  b.alert.ends_at_unix_nanos = 1'700'000'300'500'000'000;
  b.fingerprint = Fingerprint(b.alert.labels);
  b.resolved = second_resolved;
  return MakeMessage("team", R"({}:{alertname="HighLatency"})", {{"alertname", "HighLatency"}},
                     {b, a}, "http://llmscope:8080");
}

TEST(MessageTest, StatusCommonLabelsAndOrder) {
  Message m = TwoAlerts(true);
  EXPECT_TRUE(m.firing);
  EXPECT_EQ(m.status(), "firing");
  EXPECT_EQ(m.firing_count(), 1u);
  EXPECT_EQ(m.resolved_count(), 1u);
  EXPECT_EQ(m.common_labels, (LabelSet{{"alertname", "HighLatency"}, {"severity", "warning"}}));
  EXPECT_EQ(m.common_annotations, (LabelSet{{"runbook", "http://rb"}}));
  // Firing first.
  EXPECT_FALSE(m.alerts[0].resolved);
  EXPECT_EQ(m.alerts[0].alert.labels.at("model"), "gpt-4o");
  Message all_resolved = MakeMessage("r", "k", {}, {m.alerts[1]}, "");
  EXPECT_FALSE(all_resolved.firing);
  EXPECT_EQ(all_resolved.status(), "resolved");
}

TEST(WebhookTest, AlertmanagerWebhookJsonExactly) {
  const Message m = TwoAlerts(true);
  const std::string fp_a = FingerprintHex(m.alerts[0].fingerprint);
  const std::string fp_b = FingerprintHex(m.alerts[1].fingerprint);
  EXPECT_EQ(
      RenderWebhookJson(m, 0),
      R"({"receiver":"team","status":"firing","alerts":[)"
      R"({"status":"firing","labels":{"alertname":"HighLatency","model":"gpt-4o",)"
      R"("severity":"warning"},"annotations":{"runbook":"http://rb","summary":"p99 over 2s"},)"
      R"("startsAt":"2023-11-14T22:13:20Z","endsAt":"0001-01-01T00:00:00Z",)"
      R"("generatorURL":"http://llmscope/graph?g0.expr=x","fingerprint":")" +
          fp_a +
          R"("},{"status":"resolved","labels":{"alertname":"HighLatency","model":"claude",)"
          R"("severity":"warning"},"annotations":{"runbook":"http://rb",)"
          R"("summary":"p99 over 3s"},"startsAt":"2023-11-14T22:13:20Z",)"
          R"("endsAt":"2023-11-14T22:18:20.5Z","generatorURL":"http://llmscope/graph?g0.expr=x",)"
          R"("fingerprint":")" +
          fp_b +
          R"("}],"groupLabels":{"alertname":"HighLatency"},"commonLabels":)"
          R"({"alertname":"HighLatency","severity":"warning"},"commonAnnotations":)"
          R"({"runbook":"http://rb"},"externalURL":"http://llmscope:8080","version":"4",)"
          R"("groupKey":"{}:{alertname=\"HighLatency\"}","truncatedAlerts":0})");
  EXPECT_EQ(fp_a.size(), 16u);
}

TEST(WebhookTest, MaxAlertsTruncates) {
  json::value v = json::parse(RenderWebhookJson(TwoAlerts(false), 1));
  EXPECT_EQ(v.at("alerts").as_array().size(), 1u);
  EXPECT_EQ(v.at("truncatedAlerts"), 1);
}

TEST(SlackTest, DefaultTemplatesListTheAlerts) {
  json::value v = json::parse(RenderSlackJson(TwoAlerts(true), SlackConfig{}));
  EXPECT_FALSE(v.as_object().contains("channel"));
  EXPECT_EQ(v.at("username"), "llmscope");
  const json::value& att = v.at("attachments").at(0);
  EXPECT_EQ(att.at("title"), "[FIRING:1] HighLatency (warning)");
  EXPECT_EQ(att.at("title_link"), "http://llmscope:8080");
  EXPECT_EQ(att.at("color"), "danger");
  EXPECT_EQ(att.at("text"),
            "[FIRING] HighLatency: p99 over 2s\n  model=gpt-4o, severity=warning\n"
            "[RESOLVED] HighLatency: p99 over 3s\n  model=claude, severity=warning\n");
}

TEST(SlackTest, ConfiguredTemplatesAndChannel) {
  SlackConfig c;
  c.channel = "#llm";
  c.title = "{{ .Status }} {{.GroupLabels.alertname}} x{{ .Alerts.Firing | len }}";
  c.text = "{{ .CommonAnnotations.runbook }} / {{ .CommonLabels.missing }}/{{ .Receiver }}";
  Message m = TwoAlerts(true);
  json::value v = json::parse(RenderSlackJson(m, c));
  EXPECT_EQ(v.at("channel"), "#llm");
  EXPECT_EQ(v.at("attachments").at(0).at("title"), "firing HighLatency x1");
  EXPECT_EQ(v.at("attachments").at(0).at("text"), "http://rb / /team");
  Message resolved = MakeMessage("r", "k", {}, {m.alerts[1]}, "");
  EXPECT_EQ(json::parse(RenderSlackJson(resolved, c)).at("attachments").at(0).at("color"), "good");
}

TEST(TemplateTest, CheckRejectsUnsupportedActions) {
  EXPECT_TRUE(CheckTemplate("plain").ok());
  EXPECT_TRUE(CheckTemplate("{{ .Alerts | len }} {{ .ExternalURL }}").ok());
  EXPECT_FALSE(CheckTemplate("{{ range .Alerts }}").ok());
  EXPECT_FALSE(CheckTemplate("{{ .Status ").ok());
  EXPECT_FALSE(CheckTemplate("{{ .GroupLabels. }}").ok());
}

TEST(PagerDutyTest, TriggerAndResolveEvents) {
  PagerDutyConfig c;
  c.routing_key = "key123";
  c.severity = "critical";
  const Message firing = TwoAlerts(true);
  json::value v = json::parse(RenderPagerDutyJson(firing, c));
  const std::string dedup = GroupKeyHash(firing.group_key);
  EXPECT_EQ(dedup.size(), 64u);
  json::value want = json::parse(R"js({
    "routing_key": "key123", "event_action": "trigger", "dedup_key": ")js" +
                                 dedup + R"js(",
    "payload": {
      "summary": "[FIRING:1] HighLatency (warning)", "source": "llmscope",
      "severity": "critical",
      "custom_details": {
        "firing": "[FIRING] HighLatency: p99 over 2s\n  model=gpt-4o, severity=warning\n",
        "resolved": "[RESOLVED] HighLatency: p99 over 3s\n  model=claude, severity=warning\n",
        "num_firing": "1", "num_resolved": "1"}},
    "client": "llmscope", "client_url": "http://llmscope:8080"})js");
  EXPECT_EQ(v, want) << json::serialize(v);
  Message resolved = MakeMessage("team", firing.group_key, {}, {firing.alerts[1]}, "u");
  json::value r = json::parse(RenderPagerDutyJson(resolved, c));
  EXPECT_EQ(r.at("event_action"), "resolve");
  EXPECT_EQ(r.at("dedup_key").as_string(), dedup);  // the same incident
  EXPECT_FALSE(r.as_object().contains("payload"));
}

TEST(GroupKeyHashTest, Sha256Hex) {
  EXPECT_EQ(GroupKeyHash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(GroupKeyHash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(UrlTargetTest, PathAndQuery) {
  EXPECT_EQ(UrlTarget("http://h:1"), "/");
  EXPECT_EQ(UrlTarget("http://h:1/"), "/");
  EXPECT_EQ(UrlTarget("https://h/a/b?c=d"), "/a/b?c=d");
  EXPECT_EQ(UrlTarget("http://h?x"), "/?x");
}

class SenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.started());
    auto c = http::BlockingClient::Create();
    ASSERT_TRUE(c.ok());
    client_ = std::move(c).value();
    auto m = NotifyMetrics::Register(registry_);
    ASSERT_TRUE(m.ok());
    metrics_ = std::move(m).value();
  }

  Sender MakeSender(int attempts = 3) {
    RetryOptions r;
    r.attempt_timeout = 5s;
    r.max_attempts = attempts;
    r.initial_backoff = 1ms;
    r.max_backoff = 4ms;
    return Sender(*client_, clock_, metrics_.get(), logger_, r, "llmscope/test");
  }

  Delivery WebhookDelivery(const std::string& path) const {
    WebhookConfig w;
    w.url = server_.url(path);
    return Delivery{0, w, TwoAlerts(false)};
  }

  double Counter(metrics::CounterFamily* f, std::initializer_list<std::string_view> labels) {
    return f->WithLabels(labels).Value();
  }

  http::testutil::CaptureServer server_;
  testing::FakeClock clock_;
  core::NullLogger logger_;
  metrics::Registry registry_;
  std::unique_ptr<NotifyMetrics> metrics_;
  std::unique_ptr<http::BlockingClient> client_;
};

TEST_F(SenderTest, PostsTheRenderedBodyWithHeaders) {
  Sender s = MakeSender();
  const Delivery d = WebhookDelivery("/hook?token=1");
  DeliveryResult r = s.Deliver("team", d, {});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 1);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/hook?token=1");
  EXPECT_EQ(reqs[0].content_type, "application/json");
  EXPECT_EQ(reqs[0].user_agent, "llmscope/test");
  EXPECT_EQ(reqs[0].body, RenderWebhookJson(d.message, 0));
  EXPECT_EQ(Counter(metrics_->notifications, {"team", "webhook"}), 1);
  EXPECT_EQ(metrics_->latency->WithLabels({"webhook"}).Read().count, 1u);
}

TEST_F(SenderTest, ServerErrorsAreRetriedWithBackoff) {
  server_.Script({503, 500});
  Sender s = MakeSender();
  DeliveryResult r = s.Deliver("team", WebhookDelivery("/hook"), {});
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server_.count(), 3u);
  EXPECT_EQ(Counter(metrics_->notifications, {"team", "webhook"}), 1);
}

TEST_F(SenderTest, GivesUpAfterMaxAttemptsAndCountsTheReason) {
  server_.Script({500, 500, 500, 500});
  Sender s = MakeSender(2);
  DeliveryResult r = s.Deliver("team", WebhookDelivery("/hook"), {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.reason, "server_error");
  EXPECT_NE(r.error.find("HTTP 500"), std::string::npos) << r.error;
  EXPECT_EQ(Counter(metrics_->notifications_failed, {"team", "webhook", "server_error"}), 1);
}

TEST_F(SenderTest, ClientErrorsAreNotRetriedButTooManyRequestsIs) {
  server_.Script({400});
  Sender s = MakeSender();
  DeliveryResult r = s.Deliver("team", WebhookDelivery("/hook"), {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.reason, "client_error");
  server_.Script({429});
  r = s.Deliver("team", WebhookDelivery("/hook"), {});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(SenderTest, UnreachableIsAConnectionFailure) {
  Sender s = MakeSender(2);
  WebhookConfig w;
  w.url = "http://127.0.0.1:1/hook";  // nothing listens on port 1
  DeliveryResult r = s.Deliver("team", Delivery{0, w, TwoAlerts(false)}, {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.reason, "connection");
  EXPECT_EQ(Counter(metrics_->notifications_failed, {"team", "webhook", "connection"}), 1);
}

TEST_F(SenderTest, MaxTotalBoundsTheRetriesOnTheClock) {
  server_.Script({500, 500, 500, 500, 500});
  RetryOptions ro;
  ro.max_attempts = 5;
  ro.initial_backoff = 2ms;
  ro.max_total = 1ms;  // the wait before the second attempt would exceed it
  Sender s(*client_, clock_, metrics_.get(), logger_, ro, "ua");
  DeliveryResult r = s.Deliver("team", WebhookDelivery("/hook"), {});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);
}

TEST_F(SenderTest, StopCutsTheBackoffShort) {
  server_.Script({500, 500});
  RetryOptions ro;
  ro.max_attempts = 5;
  ro.initial_backoff = 1h;  // would wait an hour
  ro.max_total = 10h;
  Sender s(*client_, clock_, metrics_.get(), logger_, ro, "ua");
  std::stop_source stop;
  std::thread stopper([&] {
    server_.WaitFor(1);
    stop.request_stop();
  });
  DeliveryResult r = s.Deliver("team", WebhookDelivery("/hook"), stop.get_token());
  stopper.join();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);
}

TEST_F(SenderTest, SlackAndPagerDutyGoToTheirUrls) {
  Sender s = MakeSender();
  SlackConfig sc;
  sc.api_url = server_.url("/services/T/B/x");
  PagerDutyConfig pd;
  pd.url = server_.url("/v2/enqueue");
  pd.routing_key = "k";
  const Message m = TwoAlerts(false);
  ASSERT_TRUE(s.Deliver("r", Delivery{1, sc, m}, {}).ok);
  ASSERT_TRUE(s.Deliver("r", Delivery{2, pd, m}, {}).ok);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].target, "/services/T/B/x");
  EXPECT_EQ(reqs[0].body, RenderSlackJson(m, sc));
  EXPECT_EQ(reqs[1].target, "/v2/enqueue");
  EXPECT_EQ(reqs[1].body, RenderPagerDutyJson(m, pd));
  EXPECT_EQ(Counter(metrics_->notifications, {"r", "slack"}), 1);
  EXPECT_EQ(Counter(metrics_->notifications, {"r", "pagerduty"}), 1);
}

}  // namespace
}  // namespace llmscope::notify
