#include "notify/notify_metrics.h"

namespace llmscope::notify {

core::Result<std::unique_ptr<NotifyMetrics>> NotifyMetrics::Register(metrics::Registry& r) {
  auto m = std::make_unique<NotifyMetrics>();
  auto notifications = r.AddCounter("llmscope_notifications",
                                    "Notifications attempted, per receiver and integration.",
                                    {"receiver", "integration"});
  if (!notifications.ok()) return notifications.status();
  m->notifications = *notifications;
  auto failed = r.AddCounter("llmscope_notifications_failed",
                             "Notifications given up after their retries, per reason.",
                             {"receiver", "integration", "reason"});
  if (!failed.ok()) return failed.status();
  m->notifications_failed = *failed;
  auto latency = r.AddHistogram(
      "llmscope_notification_latency_seconds", "Time to deliver a notification, retries included.",
      {"integration"}, {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60});
  if (!latency.ok()) return latency.status();
  m->latency = *latency;
  auto dropped =
      r.AddCounter("llmscope_notify_queue_dropped",
                   "Alerts or notifications dropped because a notify queue was full.", {});
  if (!dropped.ok()) return dropped.status();
  m->queue_dropped = &(*dropped)->WithLabels({});
  auto sent =
      r.AddCounter("llmscope_alertmanager_alerts_sent",
                   "Alerts pushed to an external Alertmanager and accepted.", {"alertmanager"});
  if (!sent.ok()) return sent.status();
  m->alertmanager_sent = *sent;
  auto errors =
      r.AddCounter("llmscope_alertmanager_errors",
                   "Alerts whose push to an external Alertmanager failed.", {"alertmanager"});
  if (!errors.ok()) return errors.status();
  m->alertmanager_errors = *errors;
  return m;
}

}  // namespace llmscope::notify
