#include "notify/dispatcher.h"

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

namespace llmscope::notify {

namespace json = boost::json;

namespace {

void MatchInto(const Route& r, const LabelSet& labels, std::vector<const Route*>& out) {
  // Precondition: r's own matchers matched.
  const size_t before = out.size();
  for (const Route& child : r.routes) {
    if (!MatchesAll(child.matchers, labels)) continue;
    MatchInto(child, labels, out);
    if (!child.continue_matching) break;
  }
  if (out.size() == before) out.push_back(&r);
}

std::vector<IntegrationConfig> IntegrationsOf(const ReceiverConfig& r) {
  std::vector<IntegrationConfig> out;
  for (const WebhookConfig& c : r.webhook_configs) out.emplace_back(c);
  for (const SlackConfig& c : r.slack_configs) out.emplace_back(c);
  for (const PagerDutyConfig& c : r.pagerduty_configs) out.emplace_back(c);
  return out;
}

bool SendResolved(const IntegrationConfig& c) {
  return std::visit([](const auto& x) { return x.send_resolved; }, c);
}

bool IsSubset(const std::set<uint64_t>& sub, const std::set<uint64_t>& super) {
  return std::includes(super.begin(), super.end(), sub.begin(), sub.end());
}

// Equal when a route's groups can be kept across a reload.
bool SameGroupSettings(const Route& a, const Route& b) {
  return a.key == b.key && a.receiver == b.receiver && a.group_by == b.group_by &&
         a.group_by_all == b.group_by_all && a.group_wait == b.group_wait &&
         a.group_interval == b.group_interval && a.repeat_interval == b.repeat_interval;
}

const Route* FindRoute(const Route& r, const std::string& key) {
  if (r.key == key) return &r;
  for (const Route& c : r.routes) {
    if (const Route* f = FindRoute(c, key)) return f;
  }
  return nullptr;
}

LabelSet GroupLabels(const Route& r, const LabelSet& labels) {
  if (r.group_by_all) return labels;
  LabelSet out;
  for (const std::string& name : r.group_by) {
    auto it = labels.find(name);
    if (it != labels.end() && !it->second.empty()) out.insert(*it);
  }
  return out;
}

}  // namespace

IntegrationKind KindOf(const IntegrationConfig& c) {
  return static_cast<IntegrationKind>(c.index());
}

std::vector<const Route*> MatchRoutes(const Route& root, const LabelSet& labels) {
  std::vector<const Route*> out;
  if (MatchesAll(root.matchers, labels)) MatchInto(root, labels, out);
  return out;
}

Dispatcher::Dispatcher(std::shared_ptr<const Config> config, const Silences* silences,
                       const core::Clock& clock, std::string external_url)
    : silences_(silences),
      clock_(clock),
      external_url_(std::move(external_url)),
      config_(std::move(config)) {}

size_t Dispatcher::Put(const std::vector<Alert>& alerts) {
  const core::MonoTime now = clock_.Now();
  const int64_t now_unix = clock_.UnixNanos();
  size_t ignored = 0;
  std::lock_guard lock(mu_);
  for (const Alert& in : alerts) {
    if (in.labels.empty()) {
      ++ignored;
      continue;
    }
    Alert a = in;
    if (a.starts_at_unix_nanos == 0) a.starts_at_unix_nanos = now_unix;
    if (a.ends_at_unix_nanos == 0) {
      a.ends_at_unix_nanos = now_unix + config_->resolve_timeout.count();
    }
    const uint64_t fp = Fingerprint(a.labels);
    auto it = store_.find(fp);
    if (it != store_.end()) {
      const Alert& old = it->second.alert;
      // The same alert still firing (its old instance not resolved when this one started):
      // keep the earliest start, as Alertmanager's merge does.
      if (!IsResolved(old, a.starts_at_unix_nanos) &&
          old.starts_at_unix_nanos < a.starts_at_unix_nanos) {
        a.starts_at_unix_nanos = old.starts_at_unix_nanos;
      }
    }
    store_[fp] = StoredAlert{a, now_unix};
    RouteLocked(fp, a, now, now_unix);
  }
  return ignored;
}

void Dispatcher::RouteLocked(uint64_t fp, const Alert& a, core::MonoTime now, int64_t now_unix) {
  for (const Route* r : MatchRoutes(config_->route, a.labels)) {
    LabelSet gl = GroupLabels(*r, a.labels);
    std::string key = r->key + ":" + LabelSetString(gl);
    auto [it, created] = groups_.try_emplace(std::move(key));
    Group& g = it->second;
    if (created) {
      g.id = next_group_id_++;
      g.route = r;
      g.group_labels = std::move(gl);
      g.next_flush = now + r->group_wait;
    }
    // An alert that started more than group_wait ago needs no more waiting.
    if (!g.has_flushed && a.starts_at_unix_nanos + r->group_wait.count() < now_unix &&
        g.next_flush > now) {
      g.next_flush = now;
    }
    g.alerts[fp] = a;
  }
}

bool Dispatcher::MutedLocked(uint64_t fp, const Alert& a, int64_t now_unix,
                             std::vector<std::string>* silenced_by,
                             std::vector<std::string>* inhibited_by) const {
  bool muted = false;
  if (silences_) {
    std::vector<std::string> ids = silences_->Mutes(a.labels);
    muted = !ids.empty();
    if (silenced_by) *silenced_by = std::move(ids);
  }
  for (const InhibitRule& rule : config_->inhibit_rules) {
    if (!MatchesAll(rule.target_matchers, a.labels)) continue;
    const bool target_is_source = MatchesAll(rule.source_matchers, a.labels);
    for (const auto& [sfp, stored] : store_) {
      const Alert& s = stored.alert;
      if (sfp == fp || IsResolved(s, now_unix)) continue;
      if (!MatchesAll(rule.source_matchers, s.labels)) continue;
      if (target_is_source && MatchesAll(rule.target_matchers, s.labels)) continue;
      bool equal = true;
      for (const std::string& name : rule.equal) {
        auto x = a.labels.find(name);
        auto y = s.labels.find(name);
        const std::string_view xv = x == a.labels.end() ? "" : std::string_view(x->second);
        const std::string_view yv = y == s.labels.end() ? "" : std::string_view(y->second);
        if (xv != yv) {
          equal = false;
          break;
        }
      }
      if (!equal) continue;
      muted = true;
      if (!inhibited_by) return true;
      const std::string hex = FingerprintHex(sfp);
      if (std::find(inhibited_by->begin(), inhibited_by->end(), hex) == inhibited_by->end()) {
        inhibited_by->push_back(hex);
      }
    }
  }
  if (inhibited_by) std::sort(inhibited_by->begin(), inhibited_by->end());
  return muted;
}

std::optional<Notification> Dispatcher::FlushLocked(const std::string& key, Group& g,
                                                    core::MonoTime now, int64_t now_unix) {
  g.next_flush = now + g.route->group_interval;
  g.has_flushed = true;
  PendingFlush f;
  f.group_key = key;
  f.group_id = g.id;
  f.at_unix_nanos = now_unix;
  std::vector<AlertView> views;
  for (const auto& [fp, a] : g.alerts) {
    const bool resolved = IsResolved(a, now_unix);
    if (resolved) f.resolved_alerts[fp] = a;
    if (MutedLocked(fp, a, now_unix, nullptr, nullptr)) continue;
    (resolved ? f.resolved : f.firing).insert(fp);
    views.push_back(AlertView{a, fp, resolved});
  }
  Notification n;
  const ReceiverConfig* receiver = config_->FindReceiver(g.route->receiver);
  // Nothing left after muting: nothing to say, and the log keeps what was last said
  // (Alertmanager's pipeline stops before its dedup stage).
  if (!views.empty() && receiver != nullptr) {
    const std::vector<IntegrationConfig> integrations = IntegrationsOf(*receiver);
    for (size_t i = 0; i < integrations.size(); ++i) {
      const bool send_resolved = SendResolved(integrations[i]);
      const std::string log_key = key + '\x1f' + receiver->name + '\x1f' + std::to_string(i);
      auto e = log_.find(log_key);
      bool needed;
      if (e == log_.end()) {
        needed = !f.firing.empty();
      } else if (!IsSubset(f.firing, e->second.firing)) {
        needed = true;
      } else if (f.firing.empty()) {
        // Everything resolved: tell (or, without send_resolved, clear the log) once.
        needed = !e->second.firing.empty();
      } else if (send_resolved && !IsSubset(f.resolved, e->second.resolved)) {
        needed = true;
      } else {
        needed = now_unix >= e->second.at_unix_nanos + g.route->repeat_interval.count();
      }
      if (!needed) continue;
      std::vector<AlertView> shown;
      for (const AlertView& v : views) {
        if (!v.resolved || send_resolved) shown.push_back(v);
      }
      if (shown.empty()) {
        // Only resolved alerts and no send_resolved: nothing is sent, but the log learns
        // that nothing fires any more.
        log_[log_key] = LogEntry{f.firing, f.resolved, now_unix};
        continue;
      }
      n.deliveries.push_back(Delivery{
          i, integrations[i],
          MakeMessage(receiver->name, key, g.group_labels, std::move(shown), external_url_)});
      f.log_keys.push_back(log_key);
    }
  }
  if (n.deliveries.empty()) {
    FinishFlushLocked(key, f, true);
    return std::nullopt;
  }
  g.in_flight = true;
  n.flush_id = next_flush_id_++;
  n.group_key = key;
  n.receiver = receiver->name;
  pending_[n.flush_id] = std::move(f);
  return n;
}

void Dispatcher::FinishFlushLocked(const std::string& group_key, const PendingFlush& f,
                                   bool all_ok) {
  auto it = groups_.find(group_key);
  if (it == groups_.end() || it->second.id != f.group_id) return;
  Group& g = it->second;
  g.in_flight = false;
  if (!all_ok) return;
  for (const auto& [fp, flushed] : f.resolved_alerts) {
    auto a = g.alerts.find(fp);
    if (a != g.alerts.end() && a->second == flushed) g.alerts.erase(a);
  }
  if (g.alerts.empty()) {
    const std::string prefix = group_key + '\x1f';
    for (auto e = log_.lower_bound(prefix); e != log_.end() && e->first.starts_with(prefix);) {
      e = log_.erase(e);
    }
    groups_.erase(it);
  }
}

std::vector<Notification> Dispatcher::Tick() {
  const core::MonoTime now = clock_.Now();
  const int64_t now_unix = clock_.UnixNanos();
  std::vector<Notification> out;
  std::lock_guard lock(mu_);
  std::vector<std::string> due;
  for (const auto& [key, g] : groups_) {
    if (!g.in_flight && g.next_flush <= now) due.push_back(key);
  }
  for (const std::string& key : due) {
    auto it = groups_.find(key);
    if (it == groups_.end()) continue;
    if (auto n = FlushLocked(key, it->second, now, now_unix)) out.push_back(std::move(*n));
  }
  // Resolved alerts that no group holds any more are done with.
  std::set<uint64_t> held;
  for (const auto& [key, g] : groups_) {
    for (const auto& [fp, a] : g.alerts) held.insert(fp);
  }
  std::erase_if(store_, [&](const auto& kv) {
    return IsResolved(kv.second.alert, now_unix) && !held.contains(kv.first);
  });
  return out;
}

void Dispatcher::Done(const Notification& n, const std::vector<bool>& delivered) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(n.flush_id);
  if (it == pending_.end()) return;
  const PendingFlush f = std::move(it->second);
  pending_.erase(it);
  bool all_ok = true;
  for (size_t i = 0; i < f.log_keys.size() && i < delivered.size(); ++i) {
    if (delivered[i]) {
      log_[f.log_keys[i]] = LogEntry{f.firing, f.resolved, f.at_unix_nanos};
    } else {
      all_ok = false;
    }
  }
  if (delivered.size() < f.log_keys.size()) all_ok = false;
  FinishFlushLocked(f.group_key, f, all_ok);
}

void Dispatcher::ApplyConfig(std::shared_ptr<const Config> config) {
  const core::MonoTime now = clock_.Now();
  const int64_t now_unix = clock_.UnixNanos();
  std::lock_guard lock(mu_);
  // The old tree stays alive until every group has left it (groups point into it).
  const std::shared_ptr<const Config> old = std::exchange(config_, std::move(config));
  for (auto it = groups_.begin(); it != groups_.end();) {
    const Route* r = FindRoute(config_->route, it->second.route->key);
    if (r != nullptr && SameGroupSettings(*r, *it->second.route)) {
      it->second.route = r;
      ++it;
      continue;
    }
    const std::string prefix = it->first + '\x1f';
    for (auto e = log_.lower_bound(prefix); e != log_.end() && e->first.starts_with(prefix);) {
      e = log_.erase(e);
    }
    it = groups_.erase(it);
  }
  // A flush in flight for a dropped group finishes without effect (FinishFlushLocked finds
  // no group).
  for (const auto& [fp, stored] : store_) {
    if (IsResolved(stored.alert, now_unix)) continue;
    RouteLocked(fp, stored.alert, now, now_unix);
  }
}

std::optional<core::MonoTime> Dispatcher::NextFlush() const {
  std::lock_guard lock(mu_);
  std::optional<core::MonoTime> next;
  for (const auto& [key, g] : groups_) {
    if (g.in_flight) continue;
    if (!next || g.next_flush < *next) next = g.next_flush;
  }
  return next;
}

std::vector<AlertStatus> Dispatcher::Alerts() const {
  const int64_t now_unix = clock_.UnixNanos();
  std::vector<AlertStatus> out;
  std::lock_guard lock(mu_);
  for (const auto& [fp, stored] : store_) {
    if (IsResolved(stored.alert, now_unix)) continue;
    AlertStatus s;
    s.alert = stored.alert;
    s.fingerprint = fp;
    s.updated_at_unix_nanos = stored.updated_at;
    for (const Route* r : MatchRoutes(config_->route, stored.alert.labels)) {
      if (std::find(s.receivers.begin(), s.receivers.end(), r->receiver) == s.receivers.end()) {
        s.receivers.push_back(r->receiver);
      }
    }
    (void)MutedLocked(fp, stored.alert, now_unix, &s.silenced_by, &s.inhibited_by);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<GroupInfo> Dispatcher::Groups() const {
  std::lock_guard lock(mu_);
  std::vector<GroupInfo> out;
  for (const auto& [key, g] : groups_) {
    GroupInfo info{key, g.route->receiver, g.group_labels, {}};
    for (const auto& [fp, a] : g.alerts) info.fingerprints.push_back(fp);
    out.push_back(std::move(info));
  }
  return out;
}

std::string RenderAlertsJson(const std::vector<AlertStatus>& alerts) {
  json::array arr;
  for (const AlertStatus& s : alerts) {
    json::object o;
    json::object annotations;
    for (const auto& [k, v] : s.alert.annotations) annotations[k] = v;
    o["annotations"] = std::move(annotations);
    o["endsAt"] = FormatRfc3339(s.alert.ends_at_unix_nanos);
    o["fingerprint"] = FingerprintHex(s.fingerprint);
    json::array receivers;
    for (const std::string& r : s.receivers) receivers.push_back(json::object{{"name", r}});
    o["receivers"] = std::move(receivers);
    o["startsAt"] = FormatRfc3339(s.alert.starts_at_unix_nanos);
    json::object status;
    json::array inhibited(s.inhibited_by.begin(), s.inhibited_by.end());
    json::array silenced(s.silenced_by.begin(), s.silenced_by.end());
    status["inhibitedBy"] = std::move(inhibited);
    status["silencedBy"] = std::move(silenced);
    status["state"] = s.suppressed() ? "suppressed" : "active";
    o["status"] = std::move(status);
    o["updatedAt"] = FormatRfc3339(s.updated_at_unix_nanos);
    o["generatorURL"] = s.alert.generator_url;
    json::object labels;
    for (const auto& [k, v] : s.alert.labels) labels[k] = v;
    o["labels"] = std::move(labels);
    arr.push_back(std::move(o));
  }
  return json::serialize(arr);
}

}  // namespace llmscope::notify
