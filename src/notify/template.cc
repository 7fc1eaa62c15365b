#include "notify/template.h"

#include <algorithm>
#include <cctype>

namespace llmscope::notify {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Removes spaces around '|' so ".Alerts.Firing|len" and ".Alerts.Firing | len" compare equal.
std::string Normalize(std::string_view action) {
  std::string out;
  for (char c : Trim(action)) {
    if (c == ' ' || c == '\t') continue;
    out += c;
  }
  return out;
}

std::string Lookup(const LabelSet& set, std::string_view name) {
  auto it = set.find(std::string(name));
  return it == set.end() ? std::string() : it->second;
}

// Evaluates one normalized action. Returns false for an unsupported one.
bool Eval(const std::string& a, const Message* m, std::string& out) {
  auto field = [&](std::string_view prefix, const LabelSet* set) {
    if (!a.starts_with(prefix) || a.size() == prefix.size()) return false;
    const std::string_view name = std::string_view(a).substr(prefix.size());
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    }
    if (m) out = Lookup(*set, name);
    return true;
  };
  if (a == ".Status") {
    if (m) out = m->status();
    return true;
  }
  if (a == ".Receiver") {
    if (m) out = m->receiver;
    return true;
  }
  if (a == ".GroupKey") {
    if (m) out = m->group_key;
    return true;
  }
  if (a == ".ExternalURL") {
    if (m) out = m->external_url;
    return true;
  }
  if (a == ".Alerts|len") {
    if (m) out = std::to_string(m->alerts.size());
    return true;
  }
  if (a == ".Alerts.Firing|len") {
    if (m) out = std::to_string(m->firing_count());
    return true;
  }
  if (a == ".Alerts.Resolved|len") {
    if (m) out = std::to_string(m->resolved_count());
    return true;
  }
  return field(".GroupLabels.", m ? &m->group_labels : nullptr) ||
         field(".CommonLabels.", m ? &m->common_labels : nullptr) ||
         field(".CommonAnnotations.", m ? &m->common_annotations : nullptr);
}

// Walks the template; calls `literal` and `action` in order. Returns an error for an
// unterminated or unsupported action.
template <typename Literal, typename Action>
core::Status Walk(std::string_view t, Literal literal, Action action) {
  size_t i = 0;
  while (i < t.size()) {
    const size_t open = t.find("{{", i);
    if (open == std::string_view::npos) {
      literal(t.substr(i));
      break;
    }
    literal(t.substr(i, open - i));
    const size_t close = t.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return core::InvalidArgument("unterminated {{ at offset " + std::to_string(open));
    }
    if (core::Status s = action(t.substr(open + 2, close - open - 2)); !s.ok()) return s;
    i = close + 2;
  }
  return core::Status::Ok();
}

bool LessByLabels(const AlertView& a, const AlertView& b) {
  return a.alert.labels < b.alert.labels;
}

}  // namespace

size_t Message::firing_count() const {
  return static_cast<size_t>(
      std::count_if(alerts.begin(), alerts.end(), [](const AlertView& a) { return !a.resolved; }));
}

size_t Message::resolved_count() const { return alerts.size() - firing_count(); }

Message MakeMessage(std::string receiver, std::string group_key, LabelSet group_labels,
                    std::vector<AlertView> alerts, std::string external_url) {
  Message m;
  m.receiver = std::move(receiver);
  m.group_key = std::move(group_key);
  m.group_labels = std::move(group_labels);
  m.external_url = std::move(external_url);
  std::stable_partition(alerts.begin(), alerts.end(),
                        [](const AlertView& a) { return !a.resolved; });
  auto firing_end =
      std::find_if(alerts.begin(), alerts.end(), [](const AlertView& a) { return a.resolved; });
  std::sort(alerts.begin(), firing_end, LessByLabels);
  std::sort(firing_end, alerts.end(), LessByLabels);
  m.firing = firing_end != alerts.begin();
  if (!alerts.empty()) {
    m.common_labels = alerts.front().alert.labels;
    m.common_annotations = alerts.front().alert.annotations;
    for (const AlertView& a : alerts) {
      std::erase_if(m.common_labels, [&](const auto& kv) {
        auto it = a.alert.labels.find(kv.first);
        return it == a.alert.labels.end() || it->second != kv.second;
      });
      std::erase_if(m.common_annotations, [&](const auto& kv) {
        auto it = a.alert.annotations.find(kv.first);
        return it == a.alert.annotations.end() || it->second != kv.second;
      });
    }
  }
  m.alerts = std::move(alerts);
  return m;
}

core::Status CheckTemplate(std::string_view tmpl) {
  return Walk(
      tmpl, [](std::string_view) {},
      [](std::string_view action) {
        std::string ignored;
        if (Eval(Normalize(action), nullptr, ignored)) return core::Status::Ok();
        return core::InvalidArgument("unsupported template action {{" + std::string(action) +
                                     "}} (supported: .Status, .Receiver, .GroupKey, "
                                     ".ExternalURL, .GroupLabels.<name>, .CommonLabels.<name>, "
                                     ".CommonAnnotations.<name>, .Alerts | len, "
                                     ".Alerts.Firing | len, .Alerts.Resolved | len)");
      });
}

std::string ExpandTemplate(std::string_view tmpl, const Message& m) {
  std::string out;
  (void)Walk(
      tmpl, [&](std::string_view lit) { out += lit; },
      [&](std::string_view action) {
        std::string v;
        if (Eval(Normalize(action), &m, v)) out += v;
        return core::Status::Ok();
      });
  return out;
}

std::string DefaultTitle(const Message& m) {
  std::string out = "[";
  std::string status = m.status();
  for (char& c : status) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  out += status;
  if (m.firing) out += ":" + std::to_string(m.firing_count());
  out += "]";
  for (const auto& [name, value] : m.group_labels) out += " " + value;
  std::string extra;
  for (const auto& [name, value] : m.common_labels) {
    if (m.group_labels.contains(name)) continue;
    extra += (extra.empty() ? "" : " ") + value;
  }
  if (!extra.empty()) out += " (" + extra + ")";
  return out;
}

std::string DefaultText(const Message& m) {
  std::string out;
  for (const AlertView& a : m.alerts) {
    out += a.resolved ? "[RESOLVED] " : "[FIRING] ";
    out += Lookup(a.alert.labels, "alertname");
    std::string summary = Lookup(a.alert.annotations, "summary");
    if (summary.empty()) summary = Lookup(a.alert.annotations, "description");
    if (!summary.empty()) out += ": " + summary;
    out += "\n";
    std::string labels;
    for (const auto& [name, value] : a.alert.labels) {
      if (name == "alertname") continue;
      labels += (labels.empty() ? "" : ", ") + name + "=" + value;
    }
    if (!labels.empty()) out += "  " + labels + "\n";
  }
  if (m.truncated_alerts > 0) {
    out += "(" + std::to_string(m.truncated_alerts) + " more alerts not shown)\n";
  }
  return out;
}

}  // namespace llmscope::notify
