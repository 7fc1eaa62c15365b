#pragma once

#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "http/blocking_client.h"
#include "http/client.h"
#include "notify/config.h"
#include "notify/dispatcher.h"
#include "notify/notify_metrics.h"
#include "notify/template.h"

// The integrations: their wire formats (pure functions) and their delivery over HTTP.
namespace llmscope::notify {

// Alertmanager's webhook JSON (version "4"): {"receiver","status","alerts":[{"status",
// "labels","annotations","startsAt","endsAt","generatorURL","fingerprint"}],"groupLabels",
// "commonLabels","commonAnnotations","externalURL","version","groupKey","truncatedAlerts"}.
// max_alerts > 0 keeps the first max_alerts alerts and counts the rest in truncatedAlerts.
std::string RenderWebhookJson(const Message& m, size_t max_alerts);

// A Slack incoming-webhook message: {"channel"?, "username", "attachments":[{"title",
// "title_link", "text", "fallback", "color": "danger"|"good", "mrkdwn_in"}]}, the title and
// text from the config's templates or the defaults (DefaultTitle/DefaultText).
std::string RenderSlackJson(const Message& m, const SlackConfig& c);

// A PagerDuty Events API v2 event: {"routing_key","event_action":"trigger"|"resolve",
// "dedup_key","payload"?,"client","client_url"}; `payload` (summary, source, severity,
// custom_details) only on trigger, as Alertmanager sends it.
std::string RenderPagerDutyJson(const Message& m, const PagerDutyConfig& c);
// The dedup key of a group: the SHA-256 of its group key in hex, as Alertmanager's.
std::string GroupKeyHash(std::string_view group_key);

// The path and query of a URL ("http://h:1/a/b?c" -> "/a/b?c"; "/" when it has none).
std::string UrlTarget(std::string_view url);

struct RetryOptions {
  // Per attempt: connect, send and read the response. REQUIRES: > 0.
  core::Nanos attempt_timeout = std::chrono::seconds(10);
  // Attempts in all, the first included. REQUIRES: >= 1.
  int max_attempts = 5;
  // The wait before the second attempt; doubled before each next one, up to max_backoff.
  core::Nanos initial_backoff = std::chrono::milliseconds(500);
  core::Nanos max_backoff = std::chrono::seconds(30);
  // No attempt starts after this much time (on the Clock) since the first.
  core::Nanos max_total = std::chrono::minutes(2);
};

// How one delivery ended.
struct DeliveryResult {
  bool ok = false;
  int attempts = 0;
  std::string reason;  // on failure: timeout | connection | client_error | server_error
  std::string error;   // on failure: what the last attempt saw
};

// Thread-safety: Deliver may be called from any number of threads at once; Stop from any.
//
// Delivers notifications over HTTP (POST, Content-Type: application/json, the configured
// User-Agent) with retries: transport errors, timeouts, 429 and 5xx are retried with
// exponential backoff, bounded by max_attempts and max_total; other 4xx fail at once.
// Backoff waits are real-time waits that Stop (or the caller's stop token) cut short.
// Counts llmscope_notifications_total / _failed_total and the latency histogram.
class Sender {
 public:
  // All borrowed; `metrics` may be null.
  Sender(http::BlockingClient& client, const core::Clock& clock, NotifyMetrics* metrics,
         core::Logger& logger, RetryOptions retry, std::string user_agent);

  // Renders `d` for its integration and POSTs it. Returns when delivered, given up, or
  // `stop` was requested during a backoff wait (then the last attempt's failure).
  DeliveryResult Deliver(const std::string& receiver, const Delivery& d, std::stop_token stop);

  // POSTs `body` to `url` with the retry policy (the transport part of Deliver).
  DeliveryResult Post(const std::string& url, std::string body, std::stop_token stop);

 private:
  http::BlockingClient& client_;
  const core::Clock& clock_;
  NotifyMetrics* const metrics_;
  core::Logger& logger_;
  const RetryOptions retry_;
  const std::string user_agent_;
  std::mutex mu_;
  std::condition_variable_any cv_;  // backoff waits; never notified, woken by stop tokens
};

}  // namespace llmscope::notify
