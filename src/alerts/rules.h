#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "alerts/rule_file.h"
#include "core/clock.h"
#include "core/status.h"
#include "promql/engine.h"
#include "promql/labels.h"
#include "promql/queryable.h"

namespace llmscope::alerts {

// A sample written by a rule: a recording rule's output, an ALERTS / ALERTS_FOR_STATE
// series, or a staleness marker (v is promql::StaleNaN()).
struct RuleSample {
  promql::Labels labels;  // with __name__
  int64_t t_ms = 0;
  double v = 0;
};

// Receives the samples of one rule evaluation (called once per rule that produced or
// ended series, on the evaluating thread). A later rule of the same group sees what an
// earlier one recorded only when the sink has appended the samples before it returns.
using SampleSink = std::function<void(std::vector<RuleSample>)>;

enum class AlertState { kInactive, kPending, kFiring };
// "inactive", "pending", "firing".
const char* AlertStateName(AlertState s);

enum class RuleHealth { kUnknown, kOk, kErr };
// "unknown", "ok", "err" (Prometheus' RuleHealth strings).
const char* RuleHealthName(RuleHealth h);

// One alert of an alerting rule: a label set that the expression returned.
struct Alert {
  promql::Labels labels;  // the sample's labels without __name__, plus the rule's
                          // (templated) labels and alertname
  std::map<std::string, std::string> annotations;  // templated
  AlertState state = AlertState::kInactive;
  double value = 0;
  int64_t active_at_ms = 0;
  int64_t fired_at_ms = 0;      // 0: never fired
  int64_t resolved_at_ms = 0;   // 0: not resolved
  int64_t last_sent_at_ms = 0;  // 0: never sent
  int64_t valid_until_ms = 0;
  int64_t keep_firing_since_ms = 0;  // 0: not kept firing by keep_firing_for

  bool operator==(const Alert&) const = default;
};

// An alert handed to the notifier (Prometheus' notifier.Alert).
struct NotifyAlert {
  promql::Labels labels;
  std::map<std::string, std::string> annotations;
  int64_t starts_at_ms = 0;   // when it started firing
  int64_t ends_at_ms = 0;     // resolved time, or the time until which it is valid
  std::string generator_url;  // external_url + /graph?g0.expr=...&g0.tab=1; empty without one
  bool resolved = false;      // ends_at_ms is the time it was resolved
};

// The state of one rule for /api/v1/rules.
struct RuleSnapshot {
  RuleSpec spec;      // with the group's labels merged in
  std::string query;  // the expression as the parser prints it
  RuleHealth health = RuleHealth::kUnknown;
  std::string last_error;
  int64_t last_evaluation_ms = 0;  // 0: never evaluated
  double evaluation_seconds = 0;
  AlertState state = AlertState::kInactive;  // the highest state of its alerts
  std::vector<Alert> alerts;                 // pending and firing alerts, by labels
};

struct GroupSnapshot {
  std::string name;
  std::string file;
  int64_t interval_ms = 0;
  int limit = 0;
  int64_t last_evaluation_ms = 0;
  double evaluation_seconds = 0;
  std::vector<RuleSnapshot> rules;
};

// An active alert written to the state file, identified by group, rule and labels.
struct PersistedAlert {
  std::string group;
  std::string rule;
  Alert alert;

  bool operator==(const PersistedAlert&) const = default;
};

struct RuleGroupOptions {
  // Interval of a group whose file sets none (Prometheus' global evaluation_interval).
  int64_t default_interval_ms = 60'000;
  // Least time between two notifications of the same unchanged alert (Prometheus'
  // --rules.alert.resend-delay).
  int64_t resend_delay_ms = 60'000;
  // How long a resolved alert is kept and re-sent as resolved (Prometheus' 15m).
  int64_t resolved_retention_ms = 15 * 60'000;
  // $externalLabels and $externalURL in templates.
  std::map<std::string, std::string> external_labels;
  std::string external_url;
};

// Thread-safety: Eval, RestoreAlerts and CopyStateFrom are serialized by an internal mutex
// (one evaluation at a time); Snapshot, PersistedAlerts and the accessors may be called
// from any thread concurrently with them.
//
// One rule group evaluated with Prometheus' semantics. Recording rules: the result vector
// renamed to the rule name with the rule's labels added; an error when two samples end up
// with the same labels, or when the group's limit is exceeded. Alerting rules: each label
// set of the result is an alert, inactive -> pending -> firing once it has been active for
// `for`; when the expression stops returning it a pending alert is dropped and a firing
// one becomes inactive (resolved), unless keep_firing_for keeps it firing that long after
// the condition cleared; resolved alerts are kept (and re-sent) for resolved_retention.
// Labels and annotations are templates expanded per alert with $labels and $value; an
// error expanding one yields "<error expanding template: ...>" in place. Each evaluation
// writes ALERTS{alertstate} = 1 and ALERTS_FOR_STATE = active_at (seconds) for every
// pending/firing alert. Series a rule wrote in its previous evaluation and not in this one
// get a staleness marker. Errors (query, limit, duplicate labels) are recorded on the rule
// (health "err", last_error) and never stop the group.
class RuleGroup {
 public:
  // INVALID_ARGUMENT when an expression or template does not parse (ParseRuleFile has
  // already checked them for specs that come from a file).
  static core::Result<std::unique_ptr<RuleGroup>> Create(GroupSpec spec,
                                                         RuleGroupOptions options = {});
  ~RuleGroup();
  RuleGroup(const RuleGroup&) = delete;
  RuleGroup& operator=(const RuleGroup&) = delete;

  // Evaluates every rule in order at `t_ms` (minus the group's query_offset), handing
  // samples to `sink` (may be empty). Returns the alerts to send to the notifier now:
  // firing alerts not sent within resend_delay and alerts resolved since they were last
  // sent. `clock` measures evaluation time only.
  std::vector<NotifyAlert> Eval(const promql::Engine& engine, const promql::Queryable& storage,
                                int64_t t_ms, const SampleSink& sink, const core::Clock& clock);

  // Staleness markers at `t_ms` for every series the rules wrote in their last evaluation
  // (for a group that is being removed).
  std::vector<RuleSample> StaleMarkers(int64_t t_ms) const;

  // Takes over the alerts and written-series sets of the rules of `old` whose name and
  // expression are unchanged (in order, for rules with equal names and expressions).
  // Returns the series of `old`'s rules that nobody took over, for staleness markers.
  std::vector<promql::Labels> CopyStateFrom(const RuleGroup& old);

  // The pending, firing and retained resolved alerts of every alerting rule.
  std::vector<PersistedAlert> PersistedAlerts() const;
  // Puts back alerts saved by PersistedAlerts (group name must match; the caller checks):
  // each goes to the first alerting rule of that name whose literal labels it carries, as
  // long as the rule has no alert with those labels yet. Returns how many were restored.
  size_t RestoreAlerts(const std::vector<PersistedAlert>& alerts);

  GroupSnapshot Snapshot() const;

  const GroupSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int64_t interval_ms() const { return interval_ms_; }

 private:
  struct Rule;
  RuleGroup(GroupSpec spec, RuleGroupOptions options);
  // Each returns the rule's samples; an error is recorded by the caller.
  core::Result<std::vector<RuleSample>> EvalRecording(Rule& r, const promql::Vector& v, int64_t ts);
  core::Result<std::vector<RuleSample>> EvalAlerting(Rule& r, const promql::Vector& v, int64_t ts,
                                                     int64_t t_ms, const promql::Engine& engine,
                                                     const promql::Queryable& storage);
  void CollectNotifications(Rule& r, int64_t t_ms, std::vector<NotifyAlert>& out);

  const GroupSpec spec_;
  const RuleGroupOptions options_;
  const int64_t interval_ms_;
  mutable std::mutex eval_mu_;  // serializes Eval, RestoreAlerts, CopyStateFrom
  mutable std::mutex mu_;       // guards the rules' state
  std::vector<std::unique_ptr<Rule>> rules_;
  int64_t last_evaluation_ms_ = 0;  // GUARDED_BY(mu_)
  double evaluation_seconds_ = 0;   // GUARDED_BY(mu_)
};

}  // namespace llmscope::alerts
