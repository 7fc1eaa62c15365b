#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "alerts/rule_file.h"
#include "alerts/rules.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "promql/engine.h"
#include "promql/queryable.h"

namespace llmscope::alerts {

struct RuleManagerOptions {
  // Interval, resend delay, retention and template context of every group.
  RuleGroupOptions group;
  // Where active alerts are saved (SaveState) and restored from (RestoreState); empty:
  // no persistence.
  std::string state_file;
};

// Thread-safety: every method may be called from any thread. Load/LoadParsed are
// serialized among themselves; evaluation runs on shared_ptr copies of the groups, so a
// Load never waits for a query, only for the group it takes state from to finish.
//
// Holds the running rule groups. A load replaces the whole set only when every file is
// valid; otherwise the previous rules keep running and the errors are returned. Alerts and
// written-series sets move to the new set for rules whose group name, rule name and
// expression are unchanged; series of rules that went away get staleness markers.
class RuleManager {
 public:
  // All borrowed; they must outlive the manager. `sink` receives rule samples (may be
  // empty).
  RuleManager(RuleManagerOptions options, const promql::Engine& engine,
              const promql::Queryable& storage, const core::Clock& clock, core::Logger& logger,
              SampleSink sink);
  ~RuleManager();
  RuleManager(const RuleManager&) = delete;
  RuleManager& operator=(const RuleManager&) = delete;

  // Parses every file; on full success swaps in the new groups and returns OK, else returns
  // INVALID_ARGUMENT listing every error of every file and keeps the running set.
  core::Status Load(const std::vector<std::string>& files);
  // The same with files already parsed (e.g. the built-in pack next to user files).
  core::Status LoadParsed(std::vector<RuleFile> files);

  // The current groups, in file then group order.
  std::vector<std::shared_ptr<RuleGroup>> groups() const;

  // Evaluates `group` at `t_ms` (its samples go to the sink); returns alerts to notify.
  std::vector<NotifyAlert> EvalGroup(RuleGroup& group, int64_t t_ms);

  // For /api/v1/rules and /api/v1/alerts (see api_json.h).
  std::vector<GroupSnapshot> Snapshot() const;

  // Saves the active alerts of every group to options.state_file (OK when none is set).
  core::Status SaveState() const;
  // Restores alerts from options.state_file into the current groups (matched by group
  // name, rule name and labels). A missing file is OK; a corrupt one is logged and
  // returned as INVALID_ARGUMENT, and nothing is restored. `*restored` gets the count.
  core::Status RestoreState(size_t* restored = nullptr);

 private:
  const RuleManagerOptions options_;
  const promql::Engine& engine_;
  const promql::Queryable& storage_;
  const core::Clock& clock_;
  core::Logger& logger_;
  const SampleSink sink_;
  std::mutex load_mu_;
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<RuleGroup>> groups_;  // GUARDED_BY(mu_)
};

// Alerts for the notifier, from one group evaluation.
using NotifyFunc = std::function<void(std::vector<NotifyAlert>)>;

struct RuleRunnerOptions {
  // The longest real-time wait between looks at the Clock, so a clock that jumps (a fake
  // one in tests, a suspended machine) is noticed within this. REQUIRES: >= 1 ms.
  std::chrono::milliseconds max_wait = std::chrono::seconds(1);
  // Time between saves of the alert state on the Clock (Stop saves too). REQUIRES: >= 1 ms.
  std::chrono::milliseconds save_interval = std::chrono::minutes(1);
};

// Thread-safety: Start and Stop from one owning thread; RunDue may be called from any
// thread but not concurrently with the worker (tests call it without Start).
//
// Evaluates each group of the manager every group interval on a std::jthread, modeled on
// tsdb::ScrapeRunner: a group's evaluations are stamped with the scheduled times
// first + k * interval; one more than an interval late is taken at the Clock's time and
// its schedule restarts there. A group new after a reload is evaluated at once; a group
// that keeps its file, name and interval keeps its schedule. Alerts to send go to
// `notify` after each group evaluation that produced some.
class RuleRunner {
 public:
  // All borrowed; they must outlive the runner. `notify` may be empty.
  RuleRunner(RuleRunnerOptions options, RuleManager& manager, const core::Clock& clock,
             core::Logger& logger, NotifyFunc notify);
  // Stops (see Stop).
  ~RuleRunner();
  RuleRunner(const RuleRunner&) = delete;
  RuleRunner& operator=(const RuleRunner&) = delete;

  // Evaluates the due groups on the calling thread, then starts the worker.
  // INVALID_ARGUMENT for options outside their REQUIRES; FAILED_PRECONDITION when started.
  core::Status Start();
  // Stops and joins the worker (bounded by one group evaluation plus max_wait), then saves
  // the alert state; returns SaveState's status. Idempotent; without Start does nothing.
  core::Status Stop();

  // Evaluates every group whose time has come at the Clock's time; returns how many ran.
  int RunDue();
  // The Clock time (ms) of the next due evaluation, or INT64_MAX with no groups.
  int64_t NextDueMs() const;

 private:
  void Run(std::stop_token stop);

  const RuleRunnerOptions options_;
  RuleManager& manager_;
  const core::Clock& clock_;
  core::Logger& logger_;
  const NotifyFunc notify_;
  mutable std::mutex schedule_mu_;
  // Next evaluation per group key (file, name, interval).
  std::map<std::tuple<std::string, std::string, int64_t>, int64_t> next_;  // GUARDED_BY
  int64_t next_save_ms_ = 0;                                               // GUARDED_BY
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread worker_;
  bool started_ = false;
};

}  // namespace llmscope::alerts
