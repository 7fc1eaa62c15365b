#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "http/blocking_client.h"
#include "metrics/registry.h"
#include "notify/alert.h"
#include "notify/alertmanager_client.h"
#include "notify/config.h"
#include "notify/dispatcher.h"
#include "notify/notify_metrics.h"
#include "notify/receivers.h"
#include "notify/silences.h"

namespace llmscope::notify {

struct NotifierOptions {
  // llmscope's own URL, shown in notifications (externalURL, Slack title links).
  std::string external_url;
  // Where silences persist (see SilencesOptions::path); empty: memory only.
  std::string silences_path;
  // How long expired silences stay listed.
  core::Nanos silence_retention = std::chrono::hours(120);
  // Alerts waiting in Send's queue; beyond it the oldest are dropped and counted.
  // REQUIRES: >= 1.
  size_t queue_capacity = 10000;
  // Notifications waiting for a delivery thread; beyond it the oldest are dropped, counted,
  // and retried at their group's next flush. REQUIRES: >= 1.
  size_t delivery_queue_capacity = 1000;
  // Threads delivering notifications (each blocks on HTTP and backoff). REQUIRES: >= 1.
  int delivery_threads = 2;
  RetryOptions retry;
  // Settings of each external Alertmanager's push queue (user_agent is overridden).
  AlertmanagerClientOptions alertmanager;
  // The longest real-time wait between looks at the Clock, so a jump of the Clock (a fake
  // one in tests) is noticed within this. REQUIRES: >= 1 ms.
  std::chrono::milliseconds max_wait = std::chrono::seconds(1);
  // How often (on the Clock) expired silences are garbage-collected.
  core::Nanos maintenance_interval = std::chrono::minutes(15);
  // Sent as User-Agent on every request; empty: "llmscope/<version>".
  std::string user_agent;
  http::BlockingClientOptions http;
};

// Thread-safety: Send, Reload and the API accessors from any thread; Start and Stop from one
// owning thread.
//
// The notification subsystem: owns the config, the Dispatcher, the Silences, the Sender and
// one AlertmanagerClient per configured external Alertmanager. Send never blocks on the
// network: it appends to a bounded queue (drop-oldest, counted in
// llmscope_notify_queue_dropped_total) and wakes the dispatcher thread, which
//   - hands the alerts to the Dispatcher and to every AlertmanagerClient's queue,
//   - calls Dispatcher::Tick when a group is due on the Clock (waiting in real time at most
//     max_wait between looks, like tsdb::ScrapeRunner) and queues its notifications for the
//     delivery threads, which deliver them (with retries) and report to Dispatcher::Done,
//   - garbage-collects silences every maintenance_interval.
class Notifier {
 public:
  // Registers the metric families in `registry` (ALREADY_EXISTS when another Notifier did)
  // and builds the parts. INVALID_ARGUMENT for options outside their REQUIRES; errors of
  // BlockingClient::Create. `registry`, `clock` and `logger` must outlive the Notifier.
  static core::Result<std::unique_ptr<Notifier>> Create(NotifierOptions options, Config config,
                                                        metrics::Registry& registry,
                                                        const core::Clock& clock,
                                                        core::Logger& logger);
  // Stops (with the default drain timeout).
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Restores silences (a corrupt file is logged and returned in the status of
  // silences_load_status(); it does not prevent starting) and starts the threads.
  // FAILED_PRECONDITION when already started.
  core::Status Start();
  // Stops taking alerts from the queue after handing the queued ones on, delivers the
  // notifications already queued and pushes the queued Alertmanager alerts until `timeout`
  // (real time) passes, then cancels backoff waits and joins every thread (an HTTP attempt
  // in progress ends within its own timeout). Groups still waiting are not flushed, as
  // Alertmanager does on shutdown. Idempotent.
  void Stop(core::Nanos timeout = std::chrono::seconds(10));

  // Queues alerts for dispatch and for the external Alertmanagers. Never blocks on I/O.
  void Send(std::vector<Alert> alerts);

  // Swaps in a new config: routes whose key and settings are unchanged keep their groups and
  // notification log; silences are kept; Alertmanager clients whose URL and timeout are
  // unchanged keep their queues, others are stopped (without drain) and new ones started.
  core::Status Reload(Config config);

  // The Alertmanager v2 API's bodies (see RenderAlertsJson and RenderSilence*Json).
  std::string AlertsJson() const;
  std::string SilencesJson() const;
  // NOT_FOUND for an unknown id.
  core::Result<std::string> SilenceJson(const std::string& id) const;
  // Parses a POST /api/v2/silences body, creates or updates the silence and returns
  // {"silenceID": "<id>"}. INVALID_ARGUMENT / NOT_FOUND as Silences::Set.
  core::Result<std::string> PostSilence(std::string_view body);
  // DELETE /api/v2/silence/{id}.
  core::Status ExpireSilence(const std::string& id);

  Silences& silences() { return *silences_; }
  Dispatcher& dispatcher() { return *dispatcher_; }
  const core::Status& silences_load_status() const { return silences_load_status_; }
  std::shared_ptr<const Config> config() const;

 private:
  Notifier(NotifierOptions options, std::shared_ptr<const Config> config,
           std::unique_ptr<NotifyMetrics> metrics, std::unique_ptr<http::BlockingClient> client,
           const core::Clock& clock, core::Logger& logger);

  void RunDispatcher(std::stop_token stop);
  void RunDelivery(std::stop_token stop);
  void DrainInput();                // dispatcher thread only
  void StartAlertmanagersLocked();  // REQUIRES: am_mu_ held

  const NotifierOptions options_;
  const core::Clock& clock_;
  core::Logger& logger_;
  std::unique_ptr<NotifyMetrics> metrics_;
  std::unique_ptr<http::BlockingClient> client_;
  std::unique_ptr<Silences> silences_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<Sender> sender_;
  core::Status silences_load_status_;

  mutable std::mutex config_mu_;
  std::shared_ptr<const Config> config_;  // GUARDED_BY(config_mu_)

  std::mutex am_mu_;
  std::vector<std::unique_ptr<AlertmanagerClient>> alertmanagers_;  // GUARDED_BY(am_mu_)

  // Send's queue and the dispatcher thread's wake-ups.
  std::mutex in_mu_;
  std::condition_variable_any in_cv_;
  std::deque<Alert> input_;  // GUARDED_BY(in_mu_)

  // The delivery queue.
  std::mutex out_mu_;
  std::condition_variable_any out_cv_;
  std::deque<Notification> deliveries_;                   // GUARDED_BY(out_mu_)
  bool draining_ = false;                                 // GUARDED_BY(out_mu_)
  int active_deliveries_ = 0;                             // GUARDED_BY(out_mu_)
  std::chrono::steady_clock::time_point drain_deadline_;  // GUARDED_BY(out_mu_)

  std::jthread dispatcher_thread_;
  std::vector<std::jthread> delivery_threads_;
  std::stop_source delivery_stop_;     // cancels backoff waits at the end of the drain
  bool started_ = false;               // GUARDED_BY(am_mu_) (read by Reload to start new clients)
  int64_t next_maintenance_unix_ = 0;  // dispatcher thread only
};

}  // namespace llmscope::notify
