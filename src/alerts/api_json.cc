#include "alerts/api_json.h"

#include <cmath>

#include "alerts/go_format.h"
#include "core/json_string.h"

namespace llmscope::alerts {
namespace {

void Str(std::string& out, std::string_view s) { core::AppendJsonString(out, s); }

void Num(std::string& out, double v) {
  // JSON has no NaN/Inf; Prometheus never produces them for these fields.
  out += std::isfinite(v) ? GoJsonFloat(v) : "0";
}

void Time(std::string& out, int64_t ms) {
  Str(out, ms == 0 ? std::string("0001-01-01T00:00:00Z") : FormatRfc3339Millis(ms));
}

template <typename Pairs>
void Object(std::string& out, const Pairs& pairs) {
  out += "{";
  bool first = true;
  for (const auto& p : pairs) {
    if (!first) out += ",";
    first = false;
    if constexpr (requires { p.name; }) {
      Str(out, p.name);
      out += ":";
      Str(out, p.value);
    } else {
      Str(out, p.first);
      out += ":";
      Str(out, p.second);
    }
  }
  out += "}";
}

void AlertJson(std::string& out, const Alert& a) {
  out += "{\"labels\":";
  Object(out, a.labels);
  out += ",\"annotations\":";
  Object(out, a.annotations);
  out += ",\"state\":";
  Str(out, AlertStateName(a.state));
  if (a.active_at_ms != 0) {
    out += ",\"activeAt\":";
    Time(out, a.active_at_ms);
  }
  if (a.keep_firing_since_ms != 0) {
    out += ",\"keepFiringSince\":";
    Time(out, a.keep_firing_since_ms);
  }
  out += ",\"value\":";
  Str(out, GoFormatFloat(a.value, 'e', -1));
  out += "}";
}

void RuleJson(std::string& out, const RuleSnapshot& r) {
  const bool alerting = r.spec.kind == RuleSpec::Kind::kAlerting;
  out += "{";
  if (alerting) {
    out += "\"state\":";
    Str(out, AlertStateName(r.state));
    out += ",";
  }
  out += "\"name\":";
  Str(out, r.spec.name);
  out += ",\"query\":";
  Str(out, r.query);
  if (alerting) {
    out += ",\"duration\":";
    Num(out, static_cast<double>(r.spec.for_ms) / 1000);
    out += ",\"keepFiringFor\":";
    Num(out, static_cast<double>(r.spec.keep_firing_for_ms) / 1000);
    out += ",\"labels\":";
    Object(out, r.spec.labels);
    out += ",\"annotations\":";
    Object(out, r.spec.annotations);
    out += ",\"alerts\":[";
    for (size_t i = 0; i < r.alerts.size(); ++i) {
      if (i) out += ",";
      AlertJson(out, r.alerts[i]);
    }
    out += "]";
  } else if (!r.spec.labels.empty()) {
    out += ",\"labels\":";
    Object(out, r.spec.labels);
  }
  out += ",\"health\":";
  Str(out, RuleHealthName(r.health));
  if (!r.last_error.empty()) {
    out += ",\"lastError\":";
    Str(out, r.last_error);
  }
  out += ",\"evaluationTime\":";
  Num(out, r.evaluation_seconds);
  out += ",\"lastEvaluation\":";
  Time(out, r.last_evaluation_ms);
  out += ",\"type\":";
  Str(out, alerting ? "alerting" : "recording");
  out += "}";
}

}  // namespace

std::string RenderRulesJson(const std::vector<GroupSnapshot>& groups, RuleTypeFilter type) {
  std::string out = "{\"status\":\"success\",\"data\":{\"groups\":[";
  bool first_group = true;
  for (const GroupSnapshot& g : groups) {
    std::string rules;
    size_t n = 0;
    for (const RuleSnapshot& r : g.rules) {
      const bool alerting = r.spec.kind == RuleSpec::Kind::kAlerting;
      if ((type == RuleTypeFilter::kAlerting && !alerting) ||
          (type == RuleTypeFilter::kRecording && alerting)) {
        continue;
      }
      if (n++) rules += ",";
      RuleJson(rules, r);
    }
    if (type != RuleTypeFilter::kAll && n == 0) continue;
    if (!first_group) out += ",";
    first_group = false;
    out += "{\"name\":";
    Str(out, g.name);
    out += ",\"file\":";
    Str(out, g.file);
    out += ",\"rules\":[" + rules + "],\"interval\":";
    Num(out, static_cast<double>(g.interval_ms) / 1000);
    out += ",\"limit\":" + std::to_string(g.limit) + ",\"evaluationTime\":";
    Num(out, g.evaluation_seconds);
    out += ",\"lastEvaluation\":";
    Time(out, g.last_evaluation_ms);
    out += "}";
  }
  out += "]}}";
  return out;
}

std::string RenderAlertsJson(const std::vector<GroupSnapshot>& groups) {
  std::string out = "{\"status\":\"success\",\"data\":{\"alerts\":[";
  bool first = true;
  for (const GroupSnapshot& g : groups) {
    for (const RuleSnapshot& r : g.rules) {
      for (const Alert& a : r.alerts) {
        if (!first) out += ",";
        first = false;
        AlertJson(out, a);
      }
    }
  }
  out += "]}}";
  return out;
}

}  // namespace llmscope::alerts
