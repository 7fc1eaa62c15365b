#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "notify/alert.h"

// The notification config: a subset of Alertmanager's configuration file, with the same key
// names, plus llmscope's own `alertmanagers` list (external Alertmanagers to push alerts to,
// as Prometheus' `alerting.alertmanagers` does).
// Thread-safety: value types; ParseConfig is a pure function.
namespace llmscope::notify {

using namespace std::chrono_literals;

// POSTs Alertmanager's webhook JSON (version "4") to `url`.
struct WebhookConfig {
  std::string url;
  bool send_resolved = true;
  size_t max_alerts = 0;  // 0: all; otherwise the rest are left out and counted
};

// POSTs a Slack incoming-webhook message to `api_url`.
struct SlackConfig {
  std::string api_url;
  std::string channel;  // empty: the webhook's default channel
  // Templates (see template.h for the supported {{ }} subset); empty: the defaults, which
  // read like Alertmanager's slack.default.title / slack.default.text.
  std::string title;
  std::string text;
  bool send_resolved = false;  // Alertmanager's default for Slack
};

// POSTs PagerDuty Events API v2 `trigger` / `resolve` events to `url`.
struct PagerDutyConfig {
  std::string url = "https://events.pagerduty.com/v2/enqueue";
  std::string routing_key;
  std::string severity = "error";  // critical | error | warning | info
  bool send_resolved = true;
};

// The kinds of integration a receiver may have, and their metric label values.
enum class IntegrationKind { kWebhook, kSlack, kPagerDuty };
// "webhook", "slack", "pagerduty".
std::string_view IntegrationKindName(IntegrationKind kind);

struct ReceiverConfig {
  std::string name;
  std::vector<WebhookConfig> webhook_configs;
  std::vector<SlackConfig> slack_configs;
  std::vector<PagerDutyConfig> pagerduty_configs;

  size_t integration_count() const {
    return webhook_configs.size() + slack_configs.size() + pagerduty_configs.size();
  }
};

// One node of the routing tree. Children inherit receiver, group_by and the three intervals
// from their parent when they do not set them (ParseConfig resolves the inheritance, so every
// node here holds its effective values).
struct Route {
  std::string receiver;
  std::vector<std::string> group_by;  // label names, sorted and unique
  bool group_by_all = false;          // group_by: ['...']: every label
  core::Nanos group_wait = 30s;
  core::Nanos group_interval = 5min;
  core::Nanos repeat_interval = 4h;
  Matchers matchers;
  bool continue_matching = false;  // `continue`
  std::vector<Route> routes;
  // Identifies the node: "{}" for the root, then parent key + "/" + MatchersString(matchers)
  // + "/" + index among siblings. Part of every group key; Reload keeps the groups of a node
  // whose key and settings are unchanged.
  std::string key;
};

struct InhibitRule {
  Matchers source_matchers;
  Matchers target_matchers;
  std::vector<std::string> equal;  // label names whose values must be equal
};

// An external Alertmanager that receives every alert (POST <url>/api/v2/alerts).
struct AlertmanagerTarget {
  std::string url;
  core::Nanos timeout = 10s;
};

struct Config {
  // Applied to an alert received with no end time: it resolves this long after its last
  // update (Alertmanager's global.resolve_timeout).
  core::Nanos resolve_timeout = 5min;
  Route route;
  std::vector<ReceiverConfig> receivers;
  std::vector<InhibitRule> inhibit_rules;
  std::vector<AlertmanagerTarget> alertmanagers;

  // The receiver named `name`, or null.
  const ReceiverConfig* FindReceiver(std::string_view name) const;
};

// Parses and validates a config document. Errors: INVALID_ARGUMENT whose message lists every
// problem, one per line, each prefixed by its path ("route.routes[1].matchers[0]: ...");
// unknown keys, wrong types, bad durations, matchers, URLs and templates, references to
// receivers that do not exist, duplicate receiver names, matchers or `continue` on the root
// route. An empty document is an error (the root route needs a receiver).
core::Result<Config> ParseConfig(std::string_view yaml);

}  // namespace llmscope::notify
