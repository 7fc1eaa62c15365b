#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "notify/alert.h"

// What one notification says (Alertmanager's template.Data) and the small template language
// Slack titles and texts are written in.
// Thread-safety: value types and pure functions.
namespace llmscope::notify {

// An alert as one notification shows it.
struct AlertView {
  Alert alert;
  uint64_t fingerprint = 0;
  bool resolved = false;  // at the time of the flush
};

// The contents of one notification of one aggregation group to one receiver.
struct Message {
  std::string receiver;
  std::string group_key;   // route key + ":" + LabelSetString(group_labels)
  bool firing = false;     // status: "firing" when any alert fires, else "resolved"
  LabelSet group_labels;   // the group_by labels' values
  LabelSet common_labels;  // labels every alert has with the same value
  LabelSet common_annotations;
  std::string external_url;
  std::vector<AlertView> alerts;  // firing first, then resolved; each sorted by labels
  size_t truncated_alerts = 0;    // left out by a max_alerts limit

  std::string status() const { return firing ? "firing" : "resolved"; }
  size_t firing_count() const;
  size_t resolved_count() const;
};

// Builds a Message: computes status, common labels and annotations, and orders the alerts.
Message MakeMessage(std::string receiver, std::string group_key, LabelSet group_labels,
                    std::vector<AlertView> alerts, std::string external_url);

// Templates: literal text with {{ ... }} actions. Supported actions (spaces optional):
//   .Status  .Receiver  .GroupKey  .ExternalURL
//   .GroupLabels.<name>  .CommonLabels.<name>  .CommonAnnotations.<name>
//   .Alerts | len   .Alerts.Firing | len   .Alerts.Resolved | len
// An unknown label or annotation renders as "". Anything else is an error at config time.
core::Status CheckTemplate(std::string_view tmpl);
// REQUIRES: CheckTemplate(tmpl).ok() (an unsupported action renders as "").
std::string ExpandTemplate(std::string_view tmpl, const Message& m);

// The defaults, modelled on Alertmanager's: "[FIRING:2] HighLatency gateway (critical)";
// the text lists each alert: "[FIRING] HighLatency: summary" and its labels.
std::string DefaultTitle(const Message& m);
std::string DefaultText(const Message& m);

}  // namespace llmscope::notify
