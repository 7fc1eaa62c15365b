#include "alerts/rule_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "alerts/template.h"
#include "promql/labels.h"
#include "promql/parser.h"

namespace llmscope::alerts {

size_t RuleFile::NumRules() const {
  size_t n = 0;
  for (const auto& g : groups) n += g.rules.size();
  return n;
}

bool IsLegacyMetricName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLegacyLabelName(std::string_view s) {
  return IsLegacyMetricName(s) && s.find(':') == std::string_view::npos;
}

namespace {

// yaml-cpp throws; every call into it stays inside ParseRuleFileCollect's try block.
class FileParser {
 public:
  explicit FileParser(std::string_view path) : path_(path) {}

  // Every problem with its position (problems without one sort last).
  std::vector<std::pair<std::pair<int, int>, std::string>> errors;

  void Error(const YAML::Mark& mark, const std::string& where, const std::string& msg) {
    std::string e = path_;
    if (!mark.is_null() && mark.line >= 0) {
      e += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    }
    e += ": ";
    if (!where.empty()) e += where + ": ";
    e += msg;
    std::pair<int, int> at = mark.is_null() || mark.line < 0 ? std::pair{INT32_MAX, 0}
                                                             : std::pair{mark.line, mark.column};
    errors.push_back({at, std::move(e)});
  }

  // Calls visit(key, value) for each entry of a mapping, reporting unknown, repeated and
  // non-scalar keys. False when `node` is not a mapping (reported).
  template <typename Visit>
  bool Fields(const YAML::Node& node, const std::string& where, const char* what,
              std::initializer_list<std::string_view> allowed, Visit visit) {
    if (!node.IsMap()) {
      Error(node.Mark(), where, std::string(what) + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : node) {
      const YAML::Node& key = kv.first;
      if (!key.IsScalar()) {
        Error(key.Mark(), where, "field names must be strings");
        continue;
      }
      const std::string& k = key.Scalar();
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string msg = "field " + k + " not found in " + what + " (allowed:";
        for (std::string_view a : allowed) msg += " " + std::string(a);
        Error(key.Mark(), where, msg + ")");
        continue;
      }
      if (!seen.insert(k).second) {
        Error(key.Mark(), where, "field " + k + " repeated");
        continue;
      }
      visit(k, kv.second, key.Mark());
    }
    return true;
  }

  std::optional<std::string> Scalar(const YAML::Node& n, const std::string& where,
                                    const std::string& field) {
    if (n.IsNull()) return std::string();
    if (!n.IsScalar()) {
      Error(n.Mark(), where, "field " + field + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<int64_t> Duration(const YAML::Node& n, const std::string& where,
                                  const std::string& field) {
    auto s = Scalar(n, where, field);
    if (!s) return std::nullopt;
    if (s->empty()) return 0;
    auto d = promql::ParseDuration(*s);
    if (!d.ok()) {
      Error(n.Mark(), where,
            "field " + field + ": not a valid duration string: " + promql::QuoteString(*s));
      return std::nullopt;
    }
    return *d;
  }

  std::map<std::string, std::string> StringMap(const YAML::Node& n, const std::string& where,
                                               const std::string& field, bool annotations) {
    std::map<std::string, std::string> out;
    if (n.IsNull()) return out;
    if (!n.IsMap()) {
      Error(n.Mark(), where, "field " + field + " must be a mapping of strings");
      return out;
    }
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) {
        Error(kv.first.Mark(), where, field + " names must be strings");
        continue;
      }
      const std::string& k = kv.first.Scalar();
      if (!IsLegacyLabelName(k) || (!annotations && k == promql::kMetricName)) {
        Error(kv.first.Mark(), where,
              std::string(annotations ? "invalid annotation name: " : "invalid label name: ") + k);
      }
      if (out.count(k)) {
        Error(kv.first.Mark(), where, field + " " + promql::QuoteString(k) + " repeated");
        continue;
      }
      std::string v;
      if (kv.second.IsScalar()) {
        v = kv.second.Scalar();
      } else if (!kv.second.IsNull()) {
        Error(kv.second.Mark(), where, field + " " + promql::QuoteString(k) + " must be a string");
        continue;
      }
      if (!promql::IsValidUtf8(v)) {
        Error(kv.second.Mark(), where, "invalid " + field + " value: not valid UTF-8");
      }
      out[k] = v;
    }
    return out;
  }

  void Rule(const YAML::Node& node, GroupSpec& g, size_t index) {
    RuleSpec r;
    r.line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    // The rule's name is only known after reading it; read record/alert first.
    std::string name;
    if (node.IsMap()) {
      if (node["alert"] && node["alert"].IsScalar()) name = node["alert"].Scalar();
      if (name.empty() && node["record"] && node["record"].IsScalar()) {
        name = node["record"].Scalar();
      }
    }
    const std::string where = "group " + promql::QuoteString(g.name) + ", rule " +
                              std::to_string(index + 1) + ", " + promql::QuoteString(name);
    bool has_record = false, has_alert = false, has_expr = false;
    YAML::Mark expr_mark, for_mark, kff_mark, ann_mark;
    bool has_for = false, has_kff = false, has_ann = false;
    std::map<std::string, YAML::Mark> label_marks, ann_marks;
    const YAML::Mark rule_mark = node.Mark();
    bool ok =
        Fields(node, where, "rule",
               {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"},
               [&](const std::string& k, const YAML::Node& v, const YAML::Mark& km) {
                 if (k == "record" || k == "alert") {
                   auto s = Scalar(v, where, k);
                   if (!s) return;
                   if (s->empty()) return;
                   (k == "record" ? has_record : has_alert) = true;
                   r.kind = k == "record" ? RuleSpec::Kind::kRecording : RuleSpec::Kind::kAlerting;
                   r.name = *s;
                   if (k == "record") {
                     if (!IsLegacyMetricName(*s)) {
                       Error(v.Mark(), where, "invalid recording rule name: " + *s);
                     }
                   }
                 } else if (k == "expr") {
                   auto s = Scalar(v, where, k);
                   if (!s) return;
                   expr_mark = v.Mark();
                   if (s->empty()) return;
                   has_expr = true;
                   r.expr = *s;
                   auto e = promql::ParseExpr(*s);
                   if (!e.ok()) {
                     Error(v.Mark(), where, "could not parse expression: " + e.status().message());
                   }
                 } else if (k == "for" || k == "keep_firing_for") {
                   auto d = Duration(v, where, k);
                   if (!d) return;
                   if (k == "for") {
                     r.for_ms = *d;
                     has_for = *d != 0;
                     for_mark = km;
                   } else {
                     r.keep_firing_for_ms = *d;
                     has_kff = *d != 0;
                     kff_mark = km;
                   }
                 } else if (k == "labels") {
                   r.labels = StringMap(v, where, "label", false);
                   if (v.IsMap()) {
                     for (const auto& kv : v) label_marks[kv.first.Scalar()] = kv.second.Mark();
                   }
                 } else {
                   r.annotations = StringMap(v, where, "annotation", true);
                   has_ann = !r.annotations.empty();
                   ann_mark = km;
                   if (v.IsMap()) {
                     for (const auto& kv : v) ann_marks[kv.first.Scalar()] = kv.second.Mark();
                   }
                 }
               });
    if (!ok) return;
    if (has_record && has_alert) {
      Error(rule_mark, where, "only one of 'record' and 'alert' must be set");
    }
    if (!has_record && !has_alert) {
      Error(rule_mark, where, "one of 'record' or 'alert' must be set");
    }
    if (!has_expr)
      Error(expr_mark.is_null() ? rule_mark : expr_mark, where, "field 'expr' must be set in rule");
    if (has_record && !has_alert) {
      if (has_ann) Error(ann_mark, where, "invalid field 'annotations' in recording rule");
      if (has_for) Error(for_mark, where, "invalid field 'for' in recording rule");
      if (has_kff) Error(kff_mark, where, "invalid field 'keep_firing_for' in recording rule");
    }
    if (has_alert) {
      const std::string tname = "__alert_" + r.name;
      for (const auto& [k, v] : r.labels) {
        auto t = Template::Parse(tname, v);
        if (!t.ok()) {
          Error(label_marks[k], where,
                "label " + promql::QuoteString(k) + ": " + t.status().message());
        }
      }
      for (const auto& [k, v] : r.annotations) {
        auto t = Template::Parse(tname, v);
        if (!t.ok()) {
          Error(ann_marks[k], where,
                "annotation " + promql::QuoteString(k) + ": " + t.status().message());
        }
      }
    }
    g.rules.push_back(std::move(r));
  }

  void Group(const YAML::Node& node, std::set<std::string>& names, RuleFile& file) {
    GroupSpec g;
    g.file = path_;
    if (node.IsMap() && node["name"] && node["name"].IsScalar()) g.name = node["name"].Scalar();
    const std::string where = "group " + promql::QuoteString(g.name);
    YAML::Node rules;
    bool ok = Fields(node, where, "group",
                     {"name", "interval", "query_offset", "limit", "labels", "rules"},
                     [&](const std::string& k, const YAML::Node& v, const YAML::Mark&) {
                       if (k == "name") {
                         if (!v.IsScalar()) Error(v.Mark(), where, "field name must be a string");
                       } else if (k == "interval") {
                         auto d = Duration(v, where, k);
                         if (d) g.interval_ms = *d;
                       } else if (k == "query_offset") {
                         auto d = Duration(v, where, k);
                         if (d) g.query_offset_ms = *d;
                       } else if (k == "limit") {
                         auto s = Scalar(v, where, k);
                         if (!s) return;
                         char* end = nullptr;
                         long n = std::strtol(s->c_str(), &end, 10);
                         if (s->empty() || *end != '\0' || n < 0 || n > INT32_MAX) {
                           Error(v.Mark(), where, "field limit must be a non-negative integer");
                           return;
                         }
                         g.limit = static_cast<int>(n);
                       } else if (k == "labels") {
                         g.labels = StringMap(v, where, "label", false);
                       } else {
                         rules = v;
                       }
                     });
    if (!ok) return;
    if (g.name.empty()) Error(node.Mark(), where, "Groupname must not be empty");
    if (!g.name.empty() && !names.insert(g.name).second) {
      Error(node["name"].Mark(), where,
            promql::QuoteString(g.name) + " is repeated in the same file");
    }
    if (rules && !rules.IsNull()) {
      if (!rules.IsSequence()) {
        Error(rules.Mark(), where, "field rules must be a list");
      } else {
        for (size_t i = 0; i < rules.size(); ++i) Rule(rules[i], g, i);
      }
    }
    file.groups.push_back(std::move(g));
  }

  void Groups(const YAML::Node& groups, RuleFile& file) {
    if (!groups || groups.IsNull()) return;
    if (!groups.IsSequence()) {
      Error(groups.Mark(), "", "field groups must be a list");
      return;
    }
    std::set<std::string> names;
    for (const auto& g : groups) Group(g, names, file);
  }

  void Document(const YAML::Node& root, RuleFile& file) {
    if (!root || root.IsNull()) return;  // an empty file has no groups, as in Prometheus
    if (!root.IsMap()) {
      Error(root.Mark(), "", "a rule file must be a mapping with a groups list");
      return;
    }
    const bool wrapped = root["kind"] || root["apiVersion"] || root["spec"];
    if (!wrapped) {
      YAML::Node groups;
      Fields(root, "", "rule file", {"groups"},
             [&](const std::string&, const YAML::Node& v, const YAML::Mark&) { groups = v; });
      Groups(groups, file);
      return;
    }
    YAML::Node spec;
    std::string kind, api;
    Fields(root, "", "PrometheusRule", {"apiVersion", "kind", "metadata", "spec"},
           [&](const std::string& k, const YAML::Node& v, const YAML::Mark&) {
             if (k == "kind" && v.IsScalar()) kind = v.Scalar();
             if (k == "apiVersion" && v.IsScalar()) api = v.Scalar();
             if (k == "spec") spec = v;
           });
    if (kind != "PrometheusRule") {
      Error(root["kind"] ? root["kind"].Mark() : root.Mark(), "",
            "kind must be PrometheusRule, got " + promql::QuoteString(kind));
    }
    if (api.rfind("monitoring.coreos.com/", 0) != 0) {
      Error(root["apiVersion"] ? root["apiVersion"].Mark() : root.Mark(), "",
            "apiVersion must be monitoring.coreos.com/v1, got " + promql::QuoteString(api));
    }
    if (!spec || spec.IsNull()) return;
    YAML::Node groups;
    Fields(spec, "spec", "PrometheusRule spec", {"groups"},
           [&](const std::string&, const YAML::Node& v, const YAML::Mark&) { groups = v; });
    Groups(groups, file);
  }

 private:
  std::string path_;
};

}  // namespace

RuleFileParse ParseRuleFileCollect(std::string_view path, std::string_view content) {
  RuleFileParse out;
  out.file.path = std::string(path);
  FileParser p(path);
  try {
    std::vector<YAML::Node> docs = YAML::LoadAll(std::string(content));
    if (docs.size() > 1) {
      p.Error(docs[1].Mark(), "", "a rule file must hold one YAML document");
    }
    if (!docs.empty()) p.Document(docs[0], out.file);
  } catch (const YAML::Exception& e) {
    p.Error(e.mark, "", "yaml: " + e.msg);
  }
  // Document order, whatever order the checks ran in.
  std::stable_sort(p.errors.begin(), p.errors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [at, e] : p.errors) out.errors.push_back(std::move(e));
  return out;
}

core::Result<RuleFile> ParseRuleFile(std::string_view path, std::string_view content) {
  RuleFileParse p = ParseRuleFileCollect(path, content);
  if (!p.errors.empty()) {
    std::string msg;
    for (const auto& e : p.errors) {
      if (!msg.empty()) msg += "\n";
      msg += e;
    }
    return core::InvalidArgument(std::move(msg));
  }
  return std::move(p.file);
}

RuleFileParse LoadRuleFileCollect(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    RuleFileParse out;
    out.file.path = path;
    out.errors.push_back(path + ": cannot read file: " + std::strerror(errno));
    return out;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRuleFileCollect(path, ss.str());
}

core::Result<RuleFile> LoadRuleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound(path + ": cannot read file: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseRuleFile(path, ss.str());
}

}  // namespace llmscope::alerts
