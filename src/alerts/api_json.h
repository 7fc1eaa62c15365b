#pragma once

#include <string>
#include <vector>

#include "alerts/rules.h"

namespace llmscope::alerts {

enum class RuleTypeFilter { kAll, kAlerting, kRecording };

// The body of Prometheus' GET /api/v1/rules in its exact shape:
//   {"status":"success","data":{"groups":[{"name","file","rules":[...],"interval",
//    "limit","evaluationTime","lastEvaluation"}]}}
// Alerting rules: state, name, query, duration, keepFiringFor, labels, annotations, alerts,
// health, lastError (only when set), evaluationTime, lastEvaluation, type "alerting".
// Recording rules: name, query, labels (only when set), health, lastError, evaluationTime,
// lastEvaluation, type "recording". Times are RFC 3339 in UTC ("0001-01-01T00:00:00Z"
// before the first evaluation), durations and intervals in seconds.
// `type` keeps only one kind of rule (the `type=alert|record` parameter); groups left
// without rules are dropped then, as Prometheus does.
// Thread-safety: a pure function.
std::string RenderRulesJson(const std::vector<GroupSnapshot>& groups,
                            RuleTypeFilter type = RuleTypeFilter::kAll);

// The body of GET /api/v1/alerts: {"status":"success","data":{"alerts":[{"labels",
// "annotations","state","activeAt","keepFiringSince"(when set),"value"}]}} with every
// pending and firing alert, rule by rule; value as Go's FormatFloat(v, 'e', -1).
std::string RenderAlertsJson(const std::vector<GroupSnapshot>& groups);

}  // namespace llmscope::alerts
