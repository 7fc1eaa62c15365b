#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace llmscope::alerts {

// One rule of a group, as written in a Prometheus rule file.
struct RuleSpec {
  enum class Kind { kRecording, kAlerting };
  Kind kind = Kind::kAlerting;
  std::string name;  // `record:` or `alert:`
  std::string expr;
  int64_t for_ms = 0;              // alerting only
  int64_t keep_firing_for_ms = 0;  // alerting only
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;  // alerting only
  int line = 0;  // 1-based line of the rule in its file (0: unknown)

  bool operator==(const RuleSpec&) const = default;
};

// A rule group. Rules run in order, one after the other, every `interval`.
struct GroupSpec {
  std::string name;
  std::string file;                           // the file it came from
  int64_t interval_ms = 0;                    // 0: the manager's default interval
  int64_t query_offset_ms = 0;                // evaluate at t - query_offset (Prometheus 2.53+)
  int limit = 0;                              // 0: no limit on alerts / series per rule
  std::map<std::string, std::string> labels;  // added to every rule (Prometheus 3 group labels)
  std::vector<RuleSpec> rules;

  bool operator==(const GroupSpec&) const = default;
};

struct RuleFile {
  std::string path;
  std::vector<GroupSpec> groups;
  size_t NumRules() const;
};

// Parses a Prometheus rule file (`groups: [...]`) or a Kubernetes PrometheusRule manifest
// (`apiVersion: monitoring.coreos.com/v1`, `kind: PrometheusRule`, `spec: {groups: ...}`)
// and validates it as `promtool check rules` does: every expression parses, durations are
// Prometheus durations, a rule has exactly one of record/alert and an expr, recording
// rules have valid metric names and no for/keep_firing_for/annotations, label and
// annotation names are valid (legacy [a-zA-Z_][a-zA-Z0-9_]*, so files stay valid for
// Prometheus 2 too), `__name__` is no rule label, label values are UTF-8, alert label and
// annotation templates parse, group names are non-empty and unique in the file, and no
// unknown or repeated keys anywhere.
//
// Every problem is collected, in document order, each as
//   PATH:LINE:COL: group "G", rule N, "NAME": problem
// (N counts from 1; the position is where yaml-cpp marks the offending node).
// Thread-safety: pure functions.
struct RuleFileParse {
  RuleFile file;                    // complete only when errors is empty
  std::vector<std::string> errors;  // every problem found
};
RuleFileParse ParseRuleFileCollect(std::string_view path, std::string_view content);

// The same as a Result: INVALID_ARGUMENT whose message lists every error, one per line.
core::Result<RuleFile> ParseRuleFile(std::string_view path, std::string_view content);

// Reads `path` and parses it; NOT_FOUND/UNAVAILABLE when it cannot be read.
core::Result<RuleFile> LoadRuleFile(const std::string& path);
RuleFileParse LoadRuleFileCollect(const std::string& path);

// True for a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) / legacy label name.
bool IsLegacyMetricName(std::string_view s);
bool IsLegacyLabelName(std::string_view s);

}  // namespace llmscope::alerts
