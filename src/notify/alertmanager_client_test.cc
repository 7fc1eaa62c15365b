#include "notify/alertmanager_client.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "http/test_capture_server.h"
#include "metrics/registry.h"

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

Alert MakeAlert(int i) {
  Alert a;
  a.labels = {{"alertname", "A"}, {"i", std::to_string(i)}};
  a.annotations = {{"summary", "s" + std::to_string(i)}};
  a.starts_at_unix_nanos = 1'700'000'000'000'000'000;
  a.ends_at_unix_nanos = 1'700'000'240'000'000'000;
  a.generator_url = "http://llmscope:8080/graph";
  return a;
}

TEST(PostableAlertsTest, PrometheusBodyExactly) {
  Alert full = MakeAlert(1);
  Alert bare;
  bare.labels = {{"alertname", "B"}};
  const std::vector<Alert> alerts = {full, bare};
  EXPECT_EQ(RenderPostableAlertsJson(alerts),
            R"([{"labels":{"alertname":"A","i":"1"},"annotations":{"summary":"s1"},)"
            R"("startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:17:20Z",)"
            R"("generatorURL":"http://llmscope:8080/graph"},)"
            R"({"labels":{"alertname":"B"},"annotations":{}}])");
  EXPECT_EQ(RenderPostableAlertsJson({}), "[]");
}

class AlertmanagerClientTest : public ::testing::Test {
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

  std::unique_ptr<AlertmanagerClient> Make(std::string path = "",
                                           AlertmanagerClientOptions o = {}) {
    AlertmanagerTarget t;
    t.url = server_.url(path);
    t.timeout = 5s;
    o.user_agent = "llmscope/1.2.3";
    return std::make_unique<AlertmanagerClient>(t, o, *client_, metrics_.get(), logger_);
  }

  http::testutil::CaptureServer server_;
  core::NullLogger logger_;
  metrics::Registry registry_;
  std::unique_ptr<NotifyMetrics> metrics_;
  std::unique_ptr<http::BlockingClient> client_;
};

TEST_F(AlertmanagerClientTest, PostsToApiV2AlertsAsPrometheusDoes) {
  auto am = Make("/prefix");
  const std::vector<Alert> alerts = {MakeAlert(1), MakeAlert(2)};
  ASSERT_TRUE(am->PostBatch(alerts).ok());
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].target, "/prefix/api/v2/alerts");
  EXPECT_EQ(reqs[0].content_type, "application/json");
  EXPECT_EQ(reqs[0].user_agent, "llmscope/1.2.3");
  json::value body = json::parse(reqs[0].body);
  json::value want = json::parse(R"([
    {"labels": {"alertname": "A", "i": "1"}, "annotations": {"summary": "s1"},
     "startsAt": "2023-11-14T22:13:20Z", "endsAt": "2023-11-14T22:17:20Z",
     "generatorURL": "http://llmscope:8080/graph"},
    {"labels": {"alertname": "A", "i": "2"}, "annotations": {"summary": "s2"},
     "startsAt": "2023-11-14T22:13:20Z", "endsAt": "2023-11-14T22:17:20Z",
     "generatorURL": "http://llmscope:8080/graph"}])");
  EXPECT_EQ(body, want);
  EXPECT_EQ(am->push_url(), server_.url("/prefix/api/v2/alerts"));
  EXPECT_EQ(metrics_->alertmanager_sent->WithLabels({am->push_url()}).Value(), 2);
  EXPECT_EQ(metrics_->alertmanager_errors->WithLabels({am->push_url()}).Value(), 0);
}

TEST_F(AlertmanagerClientTest, FailuresAreCountedPerAlert) {
  server_.Script({500});
  auto am = Make();
  const std::vector<Alert> alerts = {MakeAlert(1), MakeAlert(2), MakeAlert(3)};
  core::Status s = am->PostBatch(alerts);
  EXPECT_EQ(s.code(), core::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("HTTP 500"), std::string::npos) << s.message();
  EXPECT_EQ(metrics_->alertmanager_errors->WithLabels({am->push_url()}).Value(), 3);
  EXPECT_EQ(server_.count(), 1u);  // no retry: the evaluator re-sends
  AlertmanagerTarget t{"http://127.0.0.1:1", 2s};
  AlertmanagerClient down(t, {}, *client_, metrics_.get(), logger_);
  EXPECT_FALSE(down.PostBatch(alerts).ok());
  EXPECT_EQ(metrics_->alertmanager_errors->WithLabels({down.push_url()}).Value(), 3);
}

TEST_F(AlertmanagerClientTest, SendsInBatchesOf64InOrder) {
  auto am = Make();
  std::vector<Alert> alerts;
  for (int i = 0; i < 130; ++i) alerts.push_back(MakeAlert(i));
  am->Enqueue(alerts);  // queued before the thread starts: batches are full
  EXPECT_EQ(am->queued(), 130u);
  ASSERT_TRUE(am->Start().ok());
  ASSERT_TRUE(server_.WaitFor(3));
  am->Stop(5s);
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  std::vector<size_t> sizes;
  int next = 0;
  for (const auto& r : reqs) {
    json::value v = json::parse(r.body);
    sizes.push_back(v.as_array().size());
    for (const json::value& a : v.as_array()) {
      EXPECT_EQ(a.at("labels").at("i").as_string(), std::to_string(next++));
    }
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{64, 64, 2}));
  EXPECT_EQ(metrics_->alertmanager_sent->WithLabels({am->push_url()}).Value(), 130);
}

TEST_F(AlertmanagerClientTest, FullQueueDropsTheOldest) {
  AlertmanagerClientOptions o;
  o.queue_capacity = 3;
  auto am = Make("", o);
  am->Enqueue({MakeAlert(0), MakeAlert(1), MakeAlert(2), MakeAlert(3), MakeAlert(4)});
  EXPECT_EQ(am->queued(), 3u);
  EXPECT_EQ(metrics_->queue_dropped->Value(), 2);
  ASSERT_TRUE(am->Start().ok());
  am->Stop(5s);  // drains
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 1u);
  json::value v = json::parse(reqs[0].body);
  ASSERT_EQ(v.as_array().size(), 3u);
  EXPECT_EQ(v.at(0).at("labels").at("i").as_string(), "2");
  EXPECT_EQ(am->queued(), 0u);
}

TEST_F(AlertmanagerClientTest, StopWithoutDrainLeavesTheQueue) {
  auto am = Make();
  ASSERT_TRUE(am->Start().ok());
  EXPECT_EQ(am->Start().code(), core::StatusCode::kFailedPrecondition);
  am->Stop();
  am->Enqueue({MakeAlert(1)});
  EXPECT_EQ(am->queued(), 1u);
  EXPECT_EQ(server_.count(), 0u);
}

}  // namespace
}  // namespace llmscope::notify
