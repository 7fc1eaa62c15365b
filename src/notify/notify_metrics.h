#pragma once

#include <memory>

#include "core/status.h"
#include "metrics/family.h"
#include "metrics/registry.h"

namespace llmscope::notify {

// Thread-safety: the families are safe from any thread (see metrics::Family).
//
// The notify module's metric families, registered once per registry:
//   llmscope_notifications_total{receiver,integration}: deliveries attempted (once per
//     notification and integration, whatever the retries)
//   llmscope_notifications_failed_total{receiver,integration,reason}: deliveries given up;
//     reason: timeout | connection | client_error | server_error | encode
//   llmscope_notification_latency_seconds{integration}: time to deliver, retries included
//   llmscope_notify_queue_dropped_total: alerts dropped by a full queue (Send's input queue,
//     an Alertmanager's push queue, the delivery queue)
//   llmscope_alertmanager_alerts_sent_total{alertmanager}: alerts an Alertmanager accepted
//   llmscope_alertmanager_errors_total{alertmanager}: alerts whose push failed
struct NotifyMetrics {
  // ALREADY_EXISTS when the families are registered already (one NotifyMetrics per registry).
  static core::Result<std::unique_ptr<NotifyMetrics>> Register(metrics::Registry& registry);

  metrics::CounterFamily* notifications = nullptr;
  metrics::CounterFamily* notifications_failed = nullptr;
  metrics::HistogramFamily* latency = nullptr;
  metrics::Counter* queue_dropped = nullptr;
  metrics::CounterFamily* alertmanager_sent = nullptr;
  metrics::CounterFamily* alertmanager_errors = nullptr;
};

}  // namespace llmscope::notify
