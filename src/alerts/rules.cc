#include "alerts/rules.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>
#include <utility>

#include "alerts/template.h"

namespace llmscope::alerts {

const char* AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    default:
      return "inactive";
  }
}

const char* RuleHealthName(RuleHealth h) {
  switch (h) {
    case RuleHealth::kOk:
      return "ok";
    case RuleHealth::kErr:
      return "err";
    default:
      return "unknown";
  }
}

namespace {

using LabelSet = std::unordered_set<promql::Labels, promql::LabelsHash>;

std::map<std::string, std::string> ToMap(const promql::Labels& l) {
  std::map<std::string, std::string> m;
  for (const auto& x : l) m[x.name] = x.value;
  return m;
}

}  // namespace

struct RuleGroup::Rule {
  RuleSpec spec;  // the group's labels merged in
  std::unique_ptr<promql::Expr> expr;
  std::string query;
  std::vector<std::pair<std::string, Template>> labels;       // alerting: templates
  std::vector<std::pair<std::string, Template>> annotations;  // alerting: templates
  promql::Labels static_labels;  // recording: added as they are; alerting: the raw labels

  // State: written only under the group's eval_mu_ and mu_; read under either.
  std::map<promql::Labels, Alert> active;
  RuleHealth health = RuleHealth::kUnknown;
  std::string last_error;
  int64_t last_evaluation_ms = 0;
  double evaluation_seconds = 0;
  LabelSet written;  // series written by the last successful evaluation
};

RuleGroup::RuleGroup(GroupSpec spec, RuleGroupOptions options)
    : spec_(std::move(spec)),
      options_(std::move(options)),
      interval_ms_(spec_.interval_ms > 0 ? spec_.interval_ms : options_.default_interval_ms) {}

RuleGroup::~RuleGroup() = default;

core::Result<std::unique_ptr<RuleGroup>> RuleGroup::Create(GroupSpec spec,
                                                           RuleGroupOptions options) {
  std::unique_ptr<RuleGroup> g(new RuleGroup(std::move(spec), std::move(options)));
  if (g->interval_ms_ <= 0) return core::InvalidArgument("group interval must be positive");
  for (const RuleSpec& rs : g->spec_.rules) {
    auto r = std::make_unique<Rule>();
    r->spec = rs;
    for (const auto& [k, v] : g->spec_.labels) r->spec.labels.emplace(k, v);  // rule wins
    auto e = promql::ParseExpr(rs.expr);
    if (!e.ok()) {
      return core::InvalidArgument("group " + g->spec_.name + ", rule " + rs.name + ": " +
                                   e.status().message());
    }
    r->expr = std::move(*e);
    r->query = r->expr->ToString();
    std::vector<promql::Label> sl;
    for (const auto& [k, v] : r->spec.labels) sl.push_back({k, v});
    r->static_labels = promql::Labels::FromVector(std::move(sl));
    if (rs.kind == RuleSpec::Kind::kAlerting) {
      const std::string tname = "__alert_" + rs.name;
      for (const auto& [k, v] : r->spec.labels) {
        auto t = Template::Parse(tname, v);
        if (!t.ok()) return core::InvalidArgument("label " + k + ": " + t.status().message());
        r->labels.emplace_back(k, std::move(*t));
      }
      for (const auto& [k, v] : r->spec.annotations) {
        auto t = Template::Parse(tname, v);
        if (!t.ok()) return core::InvalidArgument("annotation " + k + ": " + t.status().message());
        r->annotations.emplace_back(k, std::move(*t));
      }
    }
    g->rules_.push_back(std::move(r));
  }
  return g;
}

std::vector<NotifyAlert> RuleGroup::Eval(const promql::Engine& engine,
                                         const promql::Queryable& storage, int64_t t_ms,
                                         const SampleSink& sink, const core::Clock& clock) {
  std::lock_guard eval_lock(eval_mu_);
  const core::MonoTime group_start = clock.Now();
  const int64_t ts = t_ms - spec_.query_offset_ms;
  std::vector<NotifyAlert> notify;
  for (auto& rp : rules_) {
    Rule& r = *rp;
    const core::MonoTime start = clock.Now();
    core::Status err;
    promql::Vector vec;
    auto res = engine.EvalInstant(storage, *r.expr, ts);
    if (!res.ok()) {
      err = res.status();
    } else if (auto* s = std::get_if<promql::Scalar>(&*res)) {
      vec.push_back({promql::Labels(), s->t, s->v});
    } else if (auto* v = std::get_if<promql::Vector>(&*res)) {
      vec = std::move(*v);
    } else {
      err = core::InvalidArgument("rule result is not a vector or scalar");
    }
    std::vector<RuleSample> samples;
    if (err.ok()) {
      auto out = r.spec.kind == RuleSpec::Kind::kRecording
                     ? EvalRecording(r, vec, ts)
                     : EvalAlerting(r, vec, ts, t_ms, engine, storage);
      if (out.ok()) {
        samples = std::move(*out);
      } else {
        err = out.status();
      }
    }
    LabelSet now_written;
    if (err.ok()) {
      for (const RuleSample& s : samples) now_written.insert(s.labels);
      for (const promql::Labels& l : r.written) {
        if (!now_written.count(l)) samples.push_back({l, ts, promql::StaleNaN()});
      }
    }
    const double secs = std::chrono::duration<double>(clock.Now() - start).count();
    {
      std::lock_guard lock(mu_);
      r.last_evaluation_ms = t_ms;
      r.evaluation_seconds = secs;
      if (err.ok()) {
        r.health = RuleHealth::kOk;
        r.last_error.clear();
        r.written = std::move(now_written);
      } else {
        r.health = RuleHealth::kErr;
        r.last_error = err.message();
      }
      if (err.ok() && r.spec.kind == RuleSpec::Kind::kAlerting) {
        CollectNotifications(r, t_ms, notify);
      }
    }
    if (!samples.empty() && sink) sink(std::move(samples));
  }
  std::lock_guard lock(mu_);
  last_evaluation_ms_ = t_ms;
  evaluation_seconds_ = std::chrono::duration<double>(clock.Now() - group_start).count();
  return notify;
}

core::Result<std::vector<RuleSample>> RuleGroup::EvalRecording(Rule& r, const promql::Vector& v,
                                                               int64_t ts) {
  std::vector<RuleSample> out;
  out.reserve(v.size());
  LabelSet seen;
  for (const promql::Sample& s : v) {
    promql::Labels l = s.labels.With(promql::kMetricName, r.spec.name);
    for (const auto& x : r.static_labels) l = l.With(x.name, x.value);
    if (!seen.insert(l).second) {
      return core::InvalidArgument(
          "vector contains metrics with the same labelset after applying rule labels");
    }
    out.push_back({std::move(l), ts, s.v});
  }
  if (spec_.limit > 0 && static_cast<int>(out.size()) > spec_.limit) {
    return core::InvalidArgument("exceeded limit of " + std::to_string(spec_.limit) + " with " +
                                 std::to_string(out.size()) + " series");
  }
  return out;
}

core::Result<std::vector<RuleSample>> RuleGroup::EvalAlerting(Rule& r, const promql::Vector& v,
                                                              int64_t ts, int64_t t_ms,
                                                              const promql::Engine& engine,
                                                              const promql::Queryable& storage) {
  // Expand labels and annotations per sample (outside mu_: templates may run queries).
  std::map<promql::Labels, Alert> fresh;
  auto query = [&engine, &storage,
                ts](std::string_view q) -> core::Result<std::vector<TemplateSample>> {
    auto res = engine.InstantQuery(storage, q, ts);
    if (!res.ok()) return res.status();
    std::vector<TemplateSample> out;
    if (auto* s = std::get_if<promql::Scalar>(&*res)) {
      out.push_back({{}, s->v});
    } else if (auto* vec = std::get_if<promql::Vector>(&*res)) {
      for (const auto& x : *vec) out.push_back({ToMap(x.labels), x.v});
    } else {
      return core::InvalidArgument("query result is not a vector or scalar");
    }
    return out;
  };
  for (const promql::Sample& s : v) {
    TemplateData data;
    data.labels = ToMap(s.labels);
    data.external_labels = options_.external_labels;
    data.external_url = options_.external_url;
    data.value = s.v;
    data.query = query;
    promql::Labels l = s.labels.WithoutMetricName();
    for (const auto& [k, t] : r.labels) l = l.With(k, t.Expand(data));
    l = l.With("alertname", r.spec.name);
    Alert a;
    for (const auto& [k, t] : r.annotations) a.annotations[k] = t.Expand(data);
    a.labels = l;
    a.state = AlertState::kPending;
    a.value = s.v;
    a.active_at_ms = t_ms;
    if (!fresh.emplace(std::move(l), std::move(a)).second) {
      return core::InvalidArgument(
          "vector contains metrics with the same labelset after applying alert labels");
    }
  }

  std::lock_guard lock(mu_);
  for (auto& [l, a] : fresh) {
    auto it = r.active.find(l);
    if (it != r.active.end() && it->second.state != AlertState::kInactive) {
      it->second.value = a.value;
      it->second.annotations = std::move(a.annotations);
      continue;
    }
    r.active[l] = std::move(a);
  }
  std::vector<RuleSample> out;
  int num_active = 0;
  for (auto it = r.active.begin(); it != r.active.end();) {
    Alert& a = it->second;
    if (!fresh.count(it->first)) {
      bool keep_firing = false;
      if (a.state == AlertState::kFiring && r.spec.keep_firing_for_ms > 0) {
        if (a.keep_firing_since_ms == 0) a.keep_firing_since_ms = t_ms;
        keep_firing = t_ms - a.keep_firing_since_ms < r.spec.keep_firing_for_ms;
      }
      const bool drop =
          a.state == AlertState::kPending ||
          (a.resolved_at_ms != 0 && t_ms - a.resolved_at_ms > options_.resolved_retention_ms);
      if (a.state != AlertState::kInactive && !keep_firing) {
        a.state = AlertState::kInactive;
        a.resolved_at_ms = t_ms;
      }
      if (drop) {
        it = r.active.erase(it);
        continue;
      }
      if (!keep_firing) {
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since_ms = 0;
    }
    ++num_active;
    if (a.state == AlertState::kPending && t_ms - a.active_at_ms >= r.spec.for_ms) {
      a.state = AlertState::kFiring;
      a.fired_at_ms = t_ms;
    }
    // ALERTS and ALERTS_FOR_STATE start from the rule's raw labels, as Prometheus does.
    promql::Labels base = r.static_labels;
    for (const auto& x : a.labels) base = base.With(x.name, x.value);
    base = base.With("alertname", r.spec.name);
    out.push_back(
        {base.With(promql::kMetricName, "ALERTS").With("alertstate", AlertStateName(a.state)), ts,
         1});
    const double active_secs = static_cast<double>(
        a.active_at_ms >= 0 ? a.active_at_ms / 1000 : (a.active_at_ms - 999) / 1000);
    out.push_back({base.With(promql::kMetricName, "ALERTS_FOR_STATE"), ts, active_secs});
    ++it;
  }
  if (spec_.limit > 0 && num_active > spec_.limit) {
    r.active.clear();
    return core::InvalidArgument("exceeded limit of " + std::to_string(spec_.limit) + " with " +
                                 std::to_string(num_active) + " alerts");
  }
  return out;
}

void RuleGroup::CollectNotifications(Rule& r, int64_t t_ms, std::vector<NotifyAlert>& out) {
  const int64_t delta = std::max(options_.resend_delay_ms, interval_ms_);
  for (auto& [l, a] : r.active) {
    if (a.state == AlertState::kPending) continue;
    const bool needs =
        a.resolved_at_ms > a.last_sent_at_ms || a.last_sent_at_ms + options_.resend_delay_ms < t_ms;
    if (!needs) continue;
    a.last_sent_at_ms = t_ms;
    a.valid_until_ms = t_ms + 4 * delta;
    NotifyAlert n;
    n.labels = a.labels;
    n.annotations = a.annotations;
    n.starts_at_ms = a.fired_at_ms;
    n.resolved = a.resolved_at_ms != 0;
    n.ends_at_ms = n.resolved ? a.resolved_at_ms : a.valid_until_ms;
    // As Prometheus: the external URL plus the expression's table view.
    if (!options_.external_url.empty()) {
      n.generator_url = options_.external_url + ExpressionLink(r.query, true);
    }
    out.push_back(std::move(n));
  }
}

std::vector<RuleSample> RuleGroup::StaleMarkers(int64_t t_ms) const {
  std::lock_guard lock(mu_);
  std::vector<RuleSample> out;
  for (const auto& r : rules_) {
    for (const auto& l : r->written) out.push_back({l, t_ms, promql::StaleNaN()});
  }
  return out;
}

std::vector<promql::Labels> RuleGroup::CopyStateFrom(const RuleGroup& old) {
  std::lock_guard eval_lock(eval_mu_);
  std::lock_guard old_eval_lock(old.eval_mu_);
  std::scoped_lock lock(mu_, old.mu_);
  std::vector<bool> taken(old.rules_.size(), false);
  for (auto& r : rules_) {
    for (size_t j = 0; j < old.rules_.size(); ++j) {
      const Rule& o = *old.rules_[j];
      if (taken[j] || o.spec.name != r->spec.name || o.spec.expr != r->spec.expr ||
          o.spec.kind != r->spec.kind) {
        continue;
      }
      taken[j] = true;
      r->active = o.active;
      r->written = o.written;
      r->health = o.health;
      r->last_error = o.last_error;
      r->last_evaluation_ms = o.last_evaluation_ms;
      r->evaluation_seconds = o.evaluation_seconds;
      break;
    }
  }
  last_evaluation_ms_ = old.last_evaluation_ms_;
  evaluation_seconds_ = old.evaluation_seconds_;
  std::vector<promql::Labels> orphans;
  for (size_t j = 0; j < old.rules_.size(); ++j) {
    if (taken[j]) continue;
    for (const auto& l : old.rules_[j]->written) orphans.push_back(l);
  }
  return orphans;
}

std::vector<PersistedAlert> RuleGroup::PersistedAlerts() const {
  std::lock_guard lock(mu_);
  std::vector<PersistedAlert> out;
  for (const auto& r : rules_) {
    for (const auto& [l, a] : r->active) out.push_back({spec_.name, r->spec.name, a});
  }
  return out;
}

size_t RuleGroup::RestoreAlerts(const std::vector<PersistedAlert>& alerts) {
  std::lock_guard eval_lock(eval_mu_);
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const PersistedAlert& p : alerts) {
    if (p.group != spec_.name) continue;
    for (auto& r : rules_) {
      if (r->spec.kind != RuleSpec::Kind::kAlerting || r->spec.name != p.rule) continue;
      bool fits = p.alert.labels.Get("alertname") == r->spec.name;
      for (const auto& [k, t] : r->labels) {
        if (t.is_literal() && p.alert.labels.Get(k) != t.text()) fits = false;
      }
      if (!fits || r->active.count(p.alert.labels)) continue;
      r->active[p.alert.labels] = p.alert;
      ++n;
      break;
    }
  }
  return n;
}

GroupSnapshot RuleGroup::Snapshot() const {
  std::lock_guard lock(mu_);
  GroupSnapshot g;
  g.name = spec_.name;
  g.file = spec_.file;
  g.interval_ms = interval_ms_;
  g.limit = spec_.limit;
  g.last_evaluation_ms = last_evaluation_ms_;
  g.evaluation_seconds = evaluation_seconds_;
  for (const auto& r : rules_) {
    RuleSnapshot s;
    s.spec = r->spec;
    s.query = r->query;
    s.health = r->health;
    s.last_error = r->last_error;
    s.last_evaluation_ms = r->last_evaluation_ms;
    s.evaluation_seconds = r->evaluation_seconds;
    for (const auto& [l, a] : r->active) {
      if (a.state == AlertState::kInactive) continue;
      if (a.state > s.state) s.state = a.state;
      s.alerts.push_back(a);
    }
    g.rules.push_back(std::move(s));
  }
  return g;
}

}  // namespace llmscope::alerts
