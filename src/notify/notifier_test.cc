#include "notify/notifier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "http/test_capture_server.h"
#include "testing/fake_clock.h"

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

// Waits for a condition another thread makes true, yielding (never sleeping a fixed time);
// false if it is still false after `limit`.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class NotifierTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.started()); }

  Config MakeConfig(const std::string& extra = "") const {
    const std::string yaml = R"(
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
receivers:
  - name: hook
    webhook_configs: [{url: ')" +
                             server_.url("/hook") + R"('}]
)" + extra;
    auto c = ParseConfig(yaml);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  std::unique_ptr<Notifier> Make(Config config, NotifierOptions o = {}) {
    o.external_url = "http://llmscope:8080";
    o.max_wait = 2ms;
    o.retry.max_attempts = 1;
    o.retry.attempt_timeout = 5s;
    auto n = Notifier::Create(o, std::move(config), registry_, clock_, logger_);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return std::move(n).value();
  }

  Alert Firing(const std::string& name, int i = 0) const {
    Alert a;
    a.labels = {{"alertname", name}, {"i", std::to_string(i)}};
    a.starts_at_unix_nanos = clock_.UnixNanos();
    a.ends_at_unix_nanos = clock_.UnixNanos() + std::chrono::nanoseconds(1h).count();
    return a;
  }

  std::vector<http::testutil::CapturedRequest> RequestsTo(const std::string& target) const {
    std::vector<http::testutil::CapturedRequest> out;
    for (const auto& r : server_.requests()) {
      if (r.target == target) out.push_back(r);
    }
    return out;
  }

  http::testutil::CaptureServer server_;
  testing::FakeClock clock_;
  core::NullLogger logger_;
  metrics::Registry registry_;
};

TEST_F(NotifierTest, DispatchesToReceiversAndPushesToAlertmanagers) {
  auto n = Make(MakeConfig("alertmanagers: [{url: '" + server_.url("/am") + "'}]\n"));
  ASSERT_TRUE(n->Start().ok());
  n->Send({Firing("HighLatency")});
  // The push to the Alertmanager goes at once (after the dispatcher took the alert).
  ASSERT_TRUE(server_.WaitFor(1));
  auto pushes = RequestsTo("/am/api/v2/alerts");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(json::parse(pushes[0].body).at(0).at("labels").at("alertname"), "HighLatency");
  EXPECT_TRUE(pushes[0].user_agent.starts_with("llmscope/")) << pushes[0].user_agent;
  // The receiver hears of it after group_wait on the Clock.
  EXPECT_TRUE(RequestsTo("/hook").empty());
  clock_.Advance(30s);
  ASSERT_TRUE(server_.WaitFor(2));
  auto hooks = RequestsTo("/hook");
  ASSERT_EQ(hooks.size(), 1u);
  json::value v = json::parse(hooks[0].body);
  EXPECT_EQ(v.at("receiver"), "hook");
  EXPECT_EQ(v.at("status"), "firing");
  EXPECT_EQ(v.at("externalURL"), "http://llmscope:8080");
  EXPECT_EQ(v.at("groupKey"), R"({}:{alertname="HighLatency"})");
  EXPECT_EQ(v.at("alerts").at(0).at("labels").at("alertname"), "HighLatency");
  n->Stop();
  EXPECT_NE(registry_.Render(metrics::Format::kPrometheusText)
                .find(R"(llmscope_notifications_total{receiver="hook",integration="webhook"} 1)"),
            std::string::npos)
      << registry_.Render(metrics::Format::kPrometheusText);
}

TEST_F(NotifierTest, FailedDeliveryIsRetriedAtTheNextGroupInterval) {
  server_.Script({500});
  auto n = Make(MakeConfig());
  ASSERT_TRUE(n->Start().ok());
  n->Send({Firing("A")});
  // Wait until the dispatcher holds the alert before moving the clock.
  ASSERT_TRUE(Eventually([&] { return !n->dispatcher().Groups().empty(); }));
  clock_.Advance(30s);
  ASSERT_TRUE(server_.WaitFor(1));
  clock_.Advance(5min);
  ASSERT_TRUE(server_.WaitFor(2));
  n->Stop();
  auto hooks = RequestsTo("/hook");
  ASSERT_EQ(hooks.size(), 2u);
  EXPECT_EQ(hooks[0].body.find("\"status\":\"firing\""),
            hooks[1].body.find("\"status\":\"firing\""));
  EXPECT_NE(
      registry_.Render(metrics::Format::kPrometheusText)
          .find(
              R"(llmscope_notifications_failed_total{receiver="hook",integration="webhook",reason="server_error"} 1)"),
      std::string::npos);
}

TEST_F(NotifierTest, SendNeverBlocksAndDropsTheOldest) {
  NotifierOptions o;
  o.queue_capacity = 2;
  auto n = Make(MakeConfig(), o);
  n->Send({Firing("A", 1), Firing("A", 2), Firing("A", 3)});
  n->Send({Firing("A", 4), Firing("A", 5)});
  EXPECT_NE(registry_.Render(metrics::Format::kPrometheusText)
                .find("llmscope_notify_queue_dropped_total 3"),
            std::string::npos);
  ASSERT_TRUE(n->Start().ok());
  n->Stop();  // hands what is queued to the dispatcher
  std::vector<std::string> kept;
  for (const AlertStatus& a : n->dispatcher().Alerts()) kept.push_back(a.alert.labels.at("i"));
  std::sort(kept.begin(), kept.end());
  EXPECT_EQ(kept, (std::vector<std::string>{"4", "5"}));
}

TEST_F(NotifierTest, SilenceApiMutesAndPersistsAcrossRestarts) {
  const fs::path dir = fs::temp_directory_path() / ("notifier_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  NotifierOptions o;
  o.silences_path = (dir / "silences").string();
  std::string id;
  {
    auto n = Make(MakeConfig(), o);
    ASSERT_TRUE(n->Start().ok());
    auto posted = n->PostSilence(R"({
      "matchers": [{"name": "alertname", "value": "A", "isRegex": false}],
      "startsAt": "2023-11-14T22:13:20Z", "endsAt": "2023-11-15T22:13:20Z",
      "createdBy": "alice", "comment": "deploy"})");
    ASSERT_TRUE(posted.ok()) << posted.status().ToString();
    id = std::string(json::parse(*posted).at("silenceID").as_string());
    EXPECT_FALSE(n->PostSilence("{}").ok());
    n->Send({Firing("A"), Firing("B")});
    n->Stop();
    json::value alerts = json::parse(n->AlertsJson());
    ASSERT_EQ(alerts.as_array().size(), 2u);
    for (const json::value& a : alerts.as_array()) {
      const bool silenced = a.at("labels").at("alertname") == "A";
      EXPECT_EQ(a.at("status").at("state"), silenced ? "suppressed" : "active");
      if (silenced) {
        EXPECT_EQ(a.at("status").at("silencedBy").at(0).as_string(), id);
      }
    }
  }
  // A second Notifier needs its own registry: the first one's families are taken.
  EXPECT_EQ(Notifier::Create(o, MakeConfig(), registry_, clock_, logger_).status().code(),
            core::StatusCode::kAlreadyExists);
  metrics::Registry other;
  auto again = Notifier::Create(o, MakeConfig(), other, clock_, logger_);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Start().ok());
  EXPECT_TRUE((*again)->silences_load_status().ok());
  auto got = (*again)->SilenceJson(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(json::parse(*got).at("status").at("state"), "active");
  EXPECT_EQ(json::parse((*again)->SilencesJson()).as_array().size(), 1u);
  ASSERT_TRUE((*again)->ExpireSilence(id).ok());
  EXPECT_EQ(json::parse(*(*again)->SilenceJson(id)).at("status").at("state"), "expired");
  EXPECT_EQ((*again)->SilenceJson("nope").status().code(), core::StatusCode::kNotFound);
  (*again)->Stop();
  fs::remove_all(dir);
}

TEST_F(NotifierTest, CorruptSilencesFileDoesNotPreventStart) {
  const fs::path dir =
      fs::temp_directory_path() / ("notifier_corrupt_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "silences");
    out << "not a silences file";
  }
  NotifierOptions o;
  o.silences_path = (dir / "silences").string();
  auto n = Make(MakeConfig(), o);
  ASSERT_TRUE(n->Start().ok());
  EXPECT_EQ(n->silences_load_status().code(), core::StatusCode::kInternal);
  EXPECT_EQ(n->Start().code(), core::StatusCode::kFailedPrecondition);
  n->Stop();
  fs::remove_all(dir);
}

TEST_F(NotifierTest, ReloadKeepsGroupsAndSilencesAndStartsNewAlertmanagers) {
  auto n = Make(MakeConfig());
  ASSERT_TRUE(n->Start().ok());
  Silence s;
  s.matchers = {*ParseMatcher("alertname=Quiet")};
  s.ends_at_unix_nanos = clock_.UnixNanos() + std::chrono::nanoseconds(1h).count();
  ASSERT_TRUE(n->silences().Set(s).ok());
  n->Send({Firing("A")});
  ASSERT_TRUE(Eventually([&] { return !n->dispatcher().Groups().empty(); }));
  ASSERT_TRUE(
      n->Reload(MakeConfig("alertmanagers: [{url: '" + server_.url("/am2") + "'}]\n")).ok());
  EXPECT_EQ(n->config()->alertmanagers.size(), 1u);
  EXPECT_EQ(n->dispatcher().Groups().size(), 1u);
  EXPECT_EQ(n->silences().List().size(), 1u);
  n->Send({Firing("B")});
  ASSERT_TRUE(server_.WaitFor(1));
  EXPECT_EQ(RequestsTo("/am2/api/v2/alerts").size(), 1u);
  n->Stop();
}

TEST_F(NotifierTest, RejectsBadOptions) {
  NotifierOptions o;
  o.delivery_threads = 0;
  auto n = Notifier::Create(o, MakeConfig(), registry_, clock_, logger_);
  EXPECT_EQ(n.status().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace llmscope::notify
