#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "notify/alert.h"
#include "notify/config.h"
#include "notify/silences.h"
#include "notify/template.h"

namespace llmscope::notify {

using IntegrationConfig = std::variant<WebhookConfig, SlackConfig, PagerDutyConfig>;
IntegrationKind KindOf(const IntegrationConfig& c);

// One integration's part of a notification.
struct Delivery {
  // Position among the receiver's integrations: webhook_configs, then slack_configs, then
  // pagerduty_configs, in config order.
  size_t integration_index = 0;
  IntegrationConfig config;
  // What the integration is told: the group's unmuted firing alerts, plus its resolved ones
  // when the integration has send_resolved.
  Message message;
};

// One flush of one aggregation group: what each integration of the group's receiver must
// be sent. The sender reports back with Dispatcher::Done.
struct Notification {
  uint64_t flush_id = 0;
  std::string group_key;
  std::string receiver;
  std::vector<Delivery> deliveries;  // only integrations that need a send; never empty
};

// An alert as the GET /api/v2/alerts API shows it.
struct AlertStatus {
  Alert alert;
  uint64_t fingerprint = 0;
  int64_t updated_at_unix_nanos = 0;
  std::vector<std::string> receivers;     // receivers of the routes it matches
  std::vector<std::string> silenced_by;   // silence ids
  std::vector<std::string> inhibited_by;  // fingerprints (16 hex) of inhibiting alerts
  bool suppressed() const { return !silenced_by.empty() || !inhibited_by.empty(); }
};

// The GET /api/v2/alerts body: a JSON array of gettableAlert objects
// ({"annotations","endsAt","fingerprint","receivers":[{"name"}],"startsAt",
// "status":{"inhibitedBy","silencedBy","state":"active"|"suppressed"},"updatedAt",
// "generatorURL","labels"}).
std::string RenderAlertsJson(const std::vector<AlertStatus>& alerts);

// An aggregation group, for inspection (tests, a future /api/v2/alerts/groups).
struct GroupInfo {
  std::string group_key;
  std::string receiver;
  LabelSet group_labels;
  std::vector<uint64_t> fingerprints;  // sorted
};

// Thread-safety: every method is safe from any number of threads (one internal mutex).
// Tick is meant to be called by one driver (the Notifier's thread, or a test); Done may come
// from delivery threads. Lock order: the dispatcher's mutex, then the Silences' mutex.
//
// Alertmanager's dispatcher on an injected Clock:
//  - Put stores alerts by fingerprint (merging updates: an alert keeps its earliest start
//    while it fires; one received with ends_at 0 resolves resolve_timeout after receipt)
//    and routes them: an alert goes to the deepest matching routes (the first matching child
//    wins unless it has `continue`), into the aggregation group keyed by route key + the
//    values of the route's group_by labels.
//  - A new group flushes group_wait after its creation (at once when its first alert
//    started more than group_wait ago); then every group_interval.
//  - A flush drops silenced and inhibited alerts, then decides per integration, from a
//    notification log keyed by (group, receiver, integration), as Alertmanager's dedup stage:
//    send when a firing alert was not in the last notification, when every alert resolved
//    after firing ones were notified, when send_resolved and a resolved alert is new, or when
//    repeat_interval has passed since the last notification with alerts still firing.
//  - Done records the delivered integrations in the log. When every integration succeeded,
//    resolved alerts that did not change since the flush leave the group, and an empty
//    group is deleted (with its log entries). A failed integration is retried at the next
//    group_interval because its log entry did not change.
//  - Inhibition: an alert matching a rule's target matchers is muted while a firing alert
//    matching the rule's source matchers has equal values for the rule's `equal` labels (an
//    alert that matches both sides cannot be inhibited by one that also does).
class Dispatcher {
 public:
  // `silences` may be null (no silencing); borrowed, like `clock`. `config` non-null.
  Dispatcher(std::shared_ptr<const Config> config, const Silences* silences,
             const core::Clock& clock, std::string external_url = "");
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Stores and routes alerts. Alerts with no labels are ignored (counted in the return value).
  size_t Put(const std::vector<Alert>& alerts);

  // Flushes the groups that are due (and not waiting for a Done) and returns what must be
  // delivered. Also drops resolved alerts that are in no group from the store.
  std::vector<Notification> Tick();

  // Reports the outcome of a Notification from Tick: `delivered[i]` for n.deliveries[i].
  // REQUIRES: delivered.size() == n.deliveries.size(); at most once per notification.
  void Done(const Notification& n, const std::vector<bool>& delivered);

  // Swaps the config. Groups whose route still exists with the same key, receiver,
  // grouping and intervals keep their alerts, timers and log; others are dropped. Every
  // stored alert is then routed again under the new tree.
  void ApplyConfig(std::shared_ptr<const Config> config);

  // When the next group is due on the Clock's monotonic time; nullopt with no groups.
  std::optional<core::MonoTime> NextFlush() const;

  // Unresolved alerts with their routing and muting status, sorted by fingerprint.
  std::vector<AlertStatus> Alerts() const;
  std::vector<GroupInfo> Groups() const;

 private:
  struct StoredAlert {
    Alert alert;
    int64_t updated_at = 0;
  };
  struct Group {
    const Route* route = nullptr;
    LabelSet group_labels;
    std::map<uint64_t, Alert> alerts;  // by fingerprint
    core::MonoTime next_flush{};
    bool has_flushed = false;
    bool in_flight = false;
    uint64_t id = 0;  // tells a group from a later one with the same key
  };
  struct LogEntry {
    std::set<uint64_t> firing;
    std::set<uint64_t> resolved;
    int64_t at_unix_nanos = 0;
  };
  struct PendingFlush {
    std::string group_key;
    uint64_t group_id = 0;
    std::vector<std::string> log_keys;  // per delivery
    std::set<uint64_t> firing;
    std::set<uint64_t> resolved;
    std::map<uint64_t, Alert> resolved_alerts;  // as flushed
    int64_t at_unix_nanos = 0;
  };

  // All REQUIRE mu_ held.
  void RouteLocked(uint64_t fp, const Alert& a, core::MonoTime now, int64_t now_unix);
  bool MutedLocked(uint64_t fp, const Alert& a, int64_t now_unix,
                   std::vector<std::string>* silenced_by,
                   std::vector<std::string>* inhibited_by) const;
  void FinishFlushLocked(const std::string& group_key, const PendingFlush& f, bool all_ok);
  std::optional<Notification> FlushLocked(const std::string& key, Group& g, core::MonoTime now,
                                          int64_t now_unix);

  const Silences* const silences_;
  const core::Clock& clock_;
  const std::string external_url_;
  mutable std::mutex mu_;
  std::shared_ptr<const Config> config_;      // GUARDED_BY(mu_)
  std::map<uint64_t, StoredAlert> store_;     // GUARDED_BY(mu_)
  std::map<std::string, Group> groups_;       // GUARDED_BY(mu_): by group key
  std::map<std::string, LogEntry> log_;       // GUARDED_BY(mu_): the notification log
  std::map<uint64_t, PendingFlush> pending_;  // GUARDED_BY(mu_): by flush id
  uint64_t next_flush_id_ = 1;                // GUARDED_BY(mu_)
  uint64_t next_group_id_ = 1;                // GUARDED_BY(mu_)
};

// The routes `labels` is sent to, per Alertmanager's matching (exposed for tests and the
// routing-tree API).
std::vector<const Route*> MatchRoutes(const Route& root, const LabelSet& labels);

}  // namespace llmscope::notify
