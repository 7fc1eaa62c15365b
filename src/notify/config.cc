#include "notify/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <set>

#include "http/client.h"
#include "notify/template.h"

namespace llmscope::notify {

namespace {

// Collects every problem with its path, so one look at the error shows all that is wrong.
class Problems {
 public:
  void Add(const std::string& path, std::string_view problem) {
    lines_.push_back(path + ": " + std::string(problem));
  }
  bool empty() const { return lines_.empty(); }
  std::string str() const {
    std::string out;
    for (const std::string& l : lines_) out += (out.empty() ? "" : "\n") + l;
    return out;
  }

 private:
  std::vector<std::string> lines_;
};

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// A map node's keys must be in `allowed`. Returns false when the node is not a map.
bool CheckMap(const YAML::Node& n, const std::string& path, std::set<std::string> allowed,
              Problems& p) {
  if (!n.IsMap()) {
    p.Add(path, "must be a map");
    return false;
  }
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>("");
    if (!allowed.contains(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      p.Add(Join(path, k), "unknown key (expected one of: " + list + ")");
    }
  }
  return true;
}

bool Present(const YAML::Node& map, const char* key) {
  const YAML::Node n = map[key];
  return n.IsDefined() && !n.IsNull();
}

std::optional<std::string> GetString(const YAML::Node& map, const char* key,
                                     const std::string& path, Problems& p) {
  if (!Present(map, key)) return std::nullopt;
  const YAML::Node n = map[key];
  if (!n.IsScalar()) {
    p.Add(Join(path, key), "must be a string");
    return std::nullopt;
  }
  return n.Scalar();
}

void GetBool(const YAML::Node& map, const char* key, const std::string& path, bool& out,
             Problems& p) {
  if (!Present(map, key)) return;
  try {
    out = map[key].as<bool>();
  } catch (const YAML::Exception&) {
    p.Add(Join(path, key), "must be a boolean");
  }
}

std::optional<core::Nanos> GetDuration(const YAML::Node& map, const char* key,
                                       const std::string& path, Problems& p, bool allow_zero) {
  auto s = GetString(map, key, path, p);
  if (!s) return std::nullopt;
  auto d = ParseDuration(*s);
  if (!d.ok()) {
    p.Add(Join(path, key), d.status().message());
    return std::nullopt;
  }
  if (!allow_zero && d->count() == 0) {
    p.Add(Join(path, key), "must be greater than 0");
    return std::nullopt;
  }
  return *d;
}

std::vector<std::string> GetStringList(const YAML::Node& map, const char* key,
                                       const std::string& path, Problems& p) {
  std::vector<std::string> out;
  if (!Present(map, key)) return out;
  const YAML::Node n = map[key];
  if (!n.IsSequence()) {
    p.Add(Join(path, key), "must be a list of strings");
    return out;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsScalar()) {
      p.Add(Index(Join(path, key), i), "must be a string");
      continue;
    }
    out.push_back(n[i].Scalar());
  }
  return out;
}

bool ValidLabelName(std::string_view n) {
  if (n.empty()) return false;
  for (size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

Matchers GetMatchers(const YAML::Node& map, const char* key, const std::string& path, Problems& p) {
  Matchers out;
  const std::vector<std::string> texts = GetStringList(map, key, path, p);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto m = ParseMatcher(texts[i]);
    if (!m.ok()) {
      p.Add(Index(Join(path, key), i), m.status().message());
      continue;
    }
    out.push_back(std::move(m).value());
  }
  return out;
}

void CheckUrl(const std::string& url, const std::string& path, Problems& p) {
  if (url.empty()) {
    p.Add(path, "is required");
    return;
  }
  auto o = http::Origin::Parse(url);
  if (!o.ok()) p.Add(path, o.status().message());
}

void CheckLabelNames(const std::vector<std::string>& names, const std::string& path, Problems& p) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (!ValidLabelName(names[i])) p.Add(Index(path, i), "invalid label name \"" + names[i] + "\"");
  }
}

// What a route inherits from its parent.
struct Inherited {
  std::string receiver;
  std::vector<std::string> group_by;
  bool group_by_all = false;
  core::Nanos group_wait = 30s;
  core::Nanos group_interval = 5min;
  core::Nanos repeat_interval = 4h;
};

void ParseRoute(const YAML::Node& n, const std::string& path, const Inherited& parent, bool is_root,
                const std::string& key_prefix, size_t index, Route& r, Problems& p) {
  if (!CheckMap(n, path,
                {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval",
                 "matchers", "continue", "routes"},
                p)) {
    return;
  }
  r.receiver = GetString(n, "receiver", path, p).value_or(parent.receiver);
  if (is_root && r.receiver.empty()) p.Add(Join(path, "receiver"), "is required on the root route");
  if (Present(n, "group_by")) {
    std::vector<std::string> g = GetStringList(n, "group_by", path, p);
    const bool all = std::find(g.begin(), g.end(), "...") != g.end();
    if (all && g.size() > 1) {
      p.Add(Join(path, "group_by"), "'...' must be the only element when present");
    }
    r.group_by_all = all;
    if (!all) {
      CheckLabelNames(g, Join(path, "group_by"), p);
      std::sort(g.begin(), g.end());
      if (std::adjacent_find(g.begin(), g.end()) != g.end()) {
        p.Add(Join(path, "group_by"), "duplicate label name");
      }
      g.erase(std::unique(g.begin(), g.end()), g.end());
      r.group_by = std::move(g);
    }
  } else {
    r.group_by = parent.group_by;
    r.group_by_all = parent.group_by_all;
  }
  r.group_wait = GetDuration(n, "group_wait", path, p, true).value_or(parent.group_wait);
  r.group_interval =
      GetDuration(n, "group_interval", path, p, false).value_or(parent.group_interval);
  r.repeat_interval =
      GetDuration(n, "repeat_interval", path, p, false).value_or(parent.repeat_interval);
  r.matchers = GetMatchers(n, "matchers", path, p);
  GetBool(n, "continue", path, r.continue_matching, p);
  if (is_root) {
    if (!r.matchers.empty()) p.Add(Join(path, "matchers"), "not allowed on the root route");
    if (r.continue_matching) p.Add(Join(path, "continue"), "not allowed on the root route");
    r.key = "{}";
  } else {
    r.key = key_prefix + "/" + MatchersString(r.matchers) + "/" + std::to_string(index);
  }
  Inherited mine{r.receiver,   r.group_by,       r.group_by_all,
                 r.group_wait, r.group_interval, r.repeat_interval};
  if (Present(n, "routes")) {
    const YAML::Node routes = n["routes"];
    const std::string rpath = Join(path, "routes");
    if (!routes.IsSequence()) {
      p.Add(rpath, "must be a list of routes");
      return;
    }
    r.routes.resize(routes.size());
    for (size_t i = 0; i < routes.size(); ++i) {
      ParseRoute(routes[i], Index(rpath, i), mine, false, r.key, i, r.routes[i], p);
    }
  }
}

void CheckReceiverRefs(const Route& r, const std::string& path, const std::set<std::string>& names,
                       Problems& p) {
  if (!r.receiver.empty() && !names.contains(r.receiver)) {
    p.Add(Join(path, "receiver"), "undefined receiver \"" + r.receiver + "\"");
  }
  for (size_t i = 0; i < r.routes.size(); ++i) {
    CheckReceiverRefs(r.routes[i], Index(Join(path, "routes"), i), names, p);
  }
}

void CheckTemplateField(const std::string& tmpl, const std::string& path, Problems& p) {
  if (core::Status s = CheckTemplate(tmpl); !s.ok()) p.Add(path, s.message());
}

template <typename T, typename F>
void ParseList(const YAML::Node& map, const char* key, const std::string& path, std::vector<T>& out,
               Problems& p, F parse_one) {
  if (!Present(map, key)) return;
  const YAML::Node n = map[key];
  const std::string lpath = Join(path, key);
  if (!n.IsSequence()) {
    p.Add(lpath, "must be a list");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    T item;
    parse_one(n[i], Index(lpath, i), item);
    out.push_back(std::move(item));
  }
}

void ParseReceiver(const YAML::Node& n, const std::string& path, ReceiverConfig& r, Problems& p) {
  if (!CheckMap(n, path, {"name", "webhook_configs", "slack_configs", "pagerduty_configs"}, p)) {
    return;
  }
  r.name = GetString(n, "name", path, p).value_or("");
  if (r.name.empty()) p.Add(Join(path, "name"), "is required");
  ParseList(n, "webhook_configs", path, r.webhook_configs, p,
            [&](const YAML::Node& c, const std::string& cpath, WebhookConfig& w) {
              if (!CheckMap(c, cpath, {"url", "send_resolved", "max_alerts"}, p)) return;
              w.url = GetString(c, "url", cpath, p).value_or("");
              CheckUrl(w.url, Join(cpath, "url"), p);
              GetBool(c, "send_resolved", cpath, w.send_resolved, p);
              if (Present(c, "max_alerts")) {
                int64_t v = -1;
                try {
                  v = c["max_alerts"].as<int64_t>();
                } catch (const YAML::Exception&) {
                  v = -1;
                }
                if (v < 0) {
                  p.Add(Join(cpath, "max_alerts"), "must be a whole number >= 0");
                } else {
                  w.max_alerts = static_cast<size_t>(v);
                }
              }
            });
  ParseList(
      n, "slack_configs", path, r.slack_configs, p,
      [&](const YAML::Node& c, const std::string& cpath, SlackConfig& s) {
        if (!CheckMap(c, cpath, {"api_url", "channel", "title", "text", "send_resolved"}, p)) {
          return;
        }
        s.api_url = GetString(c, "api_url", cpath, p).value_or("");
        CheckUrl(s.api_url, Join(cpath, "api_url"), p);
        s.channel = GetString(c, "channel", cpath, p).value_or("");
        s.title = GetString(c, "title", cpath, p).value_or("");
        s.text = GetString(c, "text", cpath, p).value_or("");
        CheckTemplateField(s.title, Join(cpath, "title"), p);
        CheckTemplateField(s.text, Join(cpath, "text"), p);
        GetBool(c, "send_resolved", cpath, s.send_resolved, p);
      });
  ParseList(
      n, "pagerduty_configs", path, r.pagerduty_configs, p,
      [&](const YAML::Node& c, const std::string& cpath, PagerDutyConfig& d) {
        if (!CheckMap(c, cpath, {"url", "routing_key", "severity", "send_resolved"}, p)) {
          return;
        }
        d.url = GetString(c, "url", cpath, p).value_or(d.url);
        CheckUrl(d.url, Join(cpath, "url"), p);
        d.routing_key = GetString(c, "routing_key", cpath, p).value_or("");
        if (d.routing_key.empty()) p.Add(Join(cpath, "routing_key"), "is required");
        d.severity = GetString(c, "severity", cpath, p).value_or(d.severity);
        static const std::set<std::string> kSeverities = {"critical", "error", "warning", "info"};
        if (!kSeverities.contains(d.severity)) {
          p.Add(Join(cpath, "severity"),
                "must be one of critical, error, warning, info (got \"" + d.severity + "\")");
        }
        GetBool(c, "send_resolved", cpath, d.send_resolved, p);
      });
}

}  // namespace

std::string_view IntegrationKindName(IntegrationKind kind) {
  switch (kind) {
    case IntegrationKind::kWebhook:
      return "webhook";
    case IntegrationKind::kSlack:
      return "slack";
    case IntegrationKind::kPagerDuty:
      return "pagerduty";
  }
  return "webhook";
}

const ReceiverConfig* Config::FindReceiver(std::string_view name) const {
  for (const ReceiverConfig& r : receivers) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

core::Result<Config> ParseConfig(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return core::InvalidArgument("not valid YAML: " + e.msg + " (line " +
                                 std::to_string(e.mark.line + 1) + ")");
  }
  if (!root.IsDefined() || root.IsNull()) {
    return core::InvalidArgument("route: is required (the config is empty)");
  }
  Problems p;
  Config c;
  if (!CheckMap(root, "config", {"global", "route", "receivers", "inhibit_rules", "alertmanagers"},
                p)) {
    return core::InvalidArgument(p.str());
  }
  if (Present(root, "global")) {
    const YAML::Node g = root["global"];
    if (CheckMap(g, "global", {"resolve_timeout"}, p)) {
      c.resolve_timeout =
          GetDuration(g, "resolve_timeout", "global", p, false).value_or(c.resolve_timeout);
    }
  }
  if (!Present(root, "route")) {
    p.Add("route", "is required");
  } else {
    ParseRoute(root["route"], "route", Inherited{}, true, "", 0, c.route, p);
  }
  ParseList(root, "receivers", "", c.receivers, p,
            [&](const YAML::Node& n, const std::string& path, ReceiverConfig& r) {
              ParseReceiver(n, path, r, p);
            });
  std::set<std::string> names;
  for (size_t i = 0; i < c.receivers.size(); ++i) {
    const std::string& name = c.receivers[i].name;
    if (name.empty()) continue;
    if (!names.insert(name).second) {
      p.Add(Index("receivers", i) + ".name", "duplicate receiver name \"" + name + "\"");
    }
  }
  if (Present(root, "route")) CheckReceiverRefs(c.route, "route", names, p);
  ParseList(root, "inhibit_rules", "", c.inhibit_rules, p,
            [&](const YAML::Node& n, const std::string& path, InhibitRule& r) {
              if (!CheckMap(n, path, {"source_matchers", "target_matchers", "equal"}, p)) return;
              r.source_matchers = GetMatchers(n, "source_matchers", path, p);
              r.target_matchers = GetMatchers(n, "target_matchers", path, p);
              r.equal = GetStringList(n, "equal", path, p);
              CheckLabelNames(r.equal, Join(path, "equal"), p);
            });
  ParseList(root, "alertmanagers", "", c.alertmanagers, p,
            [&](const YAML::Node& n, const std::string& path, AlertmanagerTarget& t) {
              if (!CheckMap(n, path, {"url", "timeout"}, p)) return;
              t.url = GetString(n, "url", path, p).value_or("");
              CheckUrl(t.url, Join(path, "url"), p);
              while (!t.url.empty() && t.url.back() == '/') t.url.pop_back();
              t.timeout = GetDuration(n, "timeout", path, p, false).value_or(t.timeout);
            });
  if (!p.empty()) return core::InvalidArgument(p.str());
  return c;
}

}  // namespace llmscope::notify
