#pragma once

#include <vector>

#include "alerts/manager.h"
#include "alerts/rule_file.h"
#include "core/status.h"
#include "server/config.h"
#include "tsdb/db.h"

namespace llmscope::server {

// The rule files that `rules` asks for: the built-in pack (unless switched off) with its
// overrides applied (a new `for`, a disabled alert, builtin_interval on every group), then
// each user file. Every problem of every file is collected; an override that names no
// built-in alert is one. INVALID_ARGUMENT lists them all, one per line.
core::Result<std::vector<alerts::RuleFile>> RuleFilesFor(const RulesConfig& rules);

// The sink of a RuleManager over the metrics history: recording rules' series and ALERTS /
// ALERTS_FOR_STATE go back into `db` (which must outlive the manager).
alerts::SampleSink RuleSamplesInto(tsdb::Db& db);

// Loads them into `manager`: on any error the running rules stay as they were.
core::Status LoadRules(const RulesConfig& rules, alerts::RuleManager& manager);

}  // namespace llmscope::server
