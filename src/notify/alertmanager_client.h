#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "http/blocking_client.h"
#include "notify/alert.h"
#include "notify/config.h"
#include "notify/notify_metrics.h"

namespace llmscope::notify {

// The body Prometheus' notifier POSTs to /api/v2/alerts: a JSON array of
// {"labels","annotations","startsAt","endsAt","generatorURL"}; startsAt and endsAt in RFC 3339
// and left out when 0, generatorURL left out when empty (as Prometheus' omitempty does).
std::string RenderPostableAlertsJson(std::span<const Alert> alerts);

struct AlertmanagerClientOptions {
  // Alerts waiting to be pushed; beyond it the oldest are dropped and counted
  // (Prometheus' --alertmanager.notification-queue-capacity default).
  size_t queue_capacity = 10000;
  // Alerts per request (Prometheus' maxBatchSize).
  size_t max_batch = 64;
  std::string user_agent = "llmscope";
};

// Thread-safety: Enqueue and queued() from any thread; Start and Stop from one owning thread;
// PostBatch from any thread.
//
// Pushes alerts to one external Alertmanager exactly as Prometheus' notifier does: POST
// <url>/api/v2/alerts with Content-Type application/json, batches of at most max_batch
// alerts, within the target's timeout; no retries (the rule evaluator re-sends firing alerts
// every evaluation). A batch that gets a 2xx adds its size to
// llmscope_alertmanager_alerts_sent_total{alertmanager="<url>/api/v2/alerts"}; any other
// outcome adds it to llmscope_alertmanager_errors_total.
class AlertmanagerClient {
 public:
  // `client`, `logger` borrowed; `metrics` may be null.
  AlertmanagerClient(AlertmanagerTarget target, AlertmanagerClientOptions options,
                     http::BlockingClient& client, NotifyMetrics* metrics, core::Logger& logger);
  // Stops (with no drain time).
  ~AlertmanagerClient();
  AlertmanagerClient(const AlertmanagerClient&) = delete;
  AlertmanagerClient& operator=(const AlertmanagerClient&) = delete;

  // Starts the sending thread. FAILED_PRECONDITION when started; INVALID_ARGUMENT for a bad
  // URL.
  core::Status Start();
  // Sends what is queued until the queue is empty or `drain` (real time) has passed, then
  // joins the thread. Idempotent.
  void Stop(core::Nanos drain = core::Nanos(0));

  // Queues alerts; never blocks on the network. Drops the oldest beyond queue_capacity.
  void Enqueue(const std::vector<Alert>& alerts);
  // Posts one batch now, on the calling thread. OK on a 2xx answer; UNAVAILABLE or
  // DEADLINE_EXCEEDED naming the problem otherwise. Counts the metrics.
  core::Status PostBatch(std::span<const Alert> alerts);

  const AlertmanagerTarget& target() const { return target_; }
  // The push URL: <url>/api/v2/alerts (the metrics' alertmanager label).
  const std::string& push_url() const { return push_url_; }
  size_t queued() const;

 private:
  void Run(std::stop_token stop);

  const AlertmanagerTarget target_;
  const AlertmanagerClientOptions options_;
  const std::string push_url_;
  http::BlockingClient& client_;
  NotifyMetrics* const metrics_;
  core::Logger& logger_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Alert> queue_;                               // GUARDED_BY(mu_)
  bool draining_ = false;                                 // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point drain_deadline_;  // GUARDED_BY(mu_)
  std::jthread worker_;
  bool started_ = false;
};

}  // namespace llmscope::notify
