#include "alerts/manager.h"

#include <algorithm>
#include <limits>

#include "alerts/state_file.h"

namespace llmscope::alerts {
namespace {
int64_t NowMs(const core::Clock& clock) { return clock.UnixNanos() / 1'000'000; }
}  // namespace

RuleManager::RuleManager(RuleManagerOptions options, const promql::Engine& engine,
                         const promql::Queryable& storage, const core::Clock& clock,
                         core::Logger& logger, SampleSink sink)
    : options_(std::move(options)),
      engine_(engine),
      storage_(storage),
      clock_(clock),
      logger_(logger),
      sink_(std::move(sink)) {}

RuleManager::~RuleManager() = default;

core::Status RuleManager::Load(const std::vector<std::string>& files) {
  std::vector<RuleFile> parsed;
  std::string errors;
  size_t count = 0;
  for (const std::string& f : files) {
    RuleFileParse p = LoadRuleFileCollect(f);
    for (const std::string& e : p.errors) {
      if (!errors.empty()) errors += "\n";
      errors += e;
      ++count;
    }
    parsed.push_back(std::move(p.file));
  }
  if (!errors.empty()) {
    logger_.Error("alerts: rule files invalid; the previous rules keep running",
                  {{"errors", std::to_string(count)}});
    return core::InvalidArgument(std::move(errors));
  }
  return LoadParsed(std::move(parsed));
}

core::Status RuleManager::LoadParsed(std::vector<RuleFile> files) {
  std::lock_guard load_lock(load_mu_);
  std::vector<std::shared_ptr<RuleGroup>> fresh;
  std::string errors;
  size_t rules = 0;
  for (RuleFile& f : files) {
    for (GroupSpec& g : f.groups) {
      if (g.file.empty()) g.file = f.path;
      rules += g.rules.size();
      const std::string where = g.file + ": group " + g.name + ": ";
      auto created = RuleGroup::Create(std::move(g), options_.group);
      if (!created.ok()) {
        if (!errors.empty()) errors += "\n";
        errors += where + created.status().message();
        continue;
      }
      fresh.push_back(std::move(*created));
    }
  }
  if (!errors.empty()) return core::InvalidArgument(std::move(errors));

  const std::vector<std::shared_ptr<RuleGroup>> old = groups();
  const int64_t now = NowMs(clock_);
  std::vector<RuleSample> stale;
  std::vector<bool> used(old.size(), false);
  for (auto& g : fresh) {
    for (size_t j = 0; j < old.size(); ++j) {
      if (used[j] || old[j]->name() != g->name()) continue;
      used[j] = true;
      for (auto& l : g->CopyStateFrom(*old[j]))
        stale.push_back({std::move(l), now, promql::StaleNaN()});
      break;
    }
  }
  for (size_t j = 0; j < old.size(); ++j) {
    if (used[j]) continue;
    for (auto& s : old[j]->StaleMarkers(now)) stale.push_back(std::move(s));
  }
  {
    std::lock_guard lock(mu_);
    groups_ = std::move(fresh);
  }
  if (!stale.empty() && sink_) sink_(std::move(stale));
  logger_.Info("alerts: rules loaded",
               {{"files", std::to_string(files.size())}, {"rules", std::to_string(rules)}});
  return core::Status::Ok();
}

std::vector<std::shared_ptr<RuleGroup>> RuleManager::groups() const {
  std::lock_guard lock(mu_);
  return groups_;
}

std::vector<NotifyAlert> RuleManager::EvalGroup(RuleGroup& group, int64_t t_ms) {
  return group.Eval(engine_, storage_, t_ms, sink_, clock_);
}

std::vector<GroupSnapshot> RuleManager::Snapshot() const {
  std::vector<GroupSnapshot> out;
  for (const auto& g : groups()) out.push_back(g->Snapshot());
  return out;
}

core::Status RuleManager::SaveState() const {
  if (options_.state_file.empty()) return core::Status::Ok();
  std::vector<PersistedAlert> all;
  for (const auto& g : groups()) {
    for (auto& a : g->PersistedAlerts()) all.push_back(std::move(a));
  }
  core::Status s = WriteAlertState(options_.state_file, all, NowMs(clock_));
  if (!s.ok()) logger_.Error("alerts: saving alert state failed", {{"error", s.message()}});
  return s;
}

core::Status RuleManager::RestoreState(size_t* restored) {
  if (restored) *restored = 0;
  if (options_.state_file.empty()) return core::Status::Ok();
  auto r = ReadAlertState(options_.state_file);
  if (!r.ok()) {
    if (r.status().code() == core::StatusCode::kNotFound) return core::Status::Ok();
    logger_.Warn("alerts: ignoring the alert state file", {{"error", r.status().message()}});
    return r.status();
  }
  size_t n = 0;
  for (const auto& g : groups()) n += g->RestoreAlerts(*r);
  if (restored) *restored = n;
  logger_.Info("alerts: alert state restored",
               {{"restored", std::to_string(n)}, {"saved", std::to_string(r->size())}});
  return core::Status::Ok();
}

// ---------------------------------------------------------------------------------------

RuleRunner::RuleRunner(RuleRunnerOptions options, RuleManager& manager, const core::Clock& clock,
                       core::Logger& logger, NotifyFunc notify)
    : options_(options),
      manager_(manager),
      clock_(clock),
      logger_(logger),
      notify_(std::move(notify)) {}

RuleRunner::~RuleRunner() { (void)Stop(); }

core::Status RuleRunner::Start() {
  if (started_) return core::FailedPrecondition("rule runner already started");
  if (options_.max_wait.count() < 1 || options_.save_interval.count() < 1) {
    return core::InvalidArgument("rule runner options: max_wait and save_interval must be >= 1ms");
  }
  RunDue();
  started_ = true;
  worker_ = std::jthread([this](std::stop_token stop) { Run(std::move(stop)); });
  return core::Status::Ok();
}

core::Status RuleRunner::Stop() {
  if (!started_) return core::Status::Ok();
  started_ = false;
  worker_.request_stop();
  if (worker_.joinable()) worker_.join();
  return manager_.SaveState();
}

int RuleRunner::RunDue() {
  const int64_t now = NowMs(clock_);
  int ran = 0;
  std::map<std::tuple<std::string, std::string, int64_t>, int64_t> seen;
  for (const auto& g : manager_.groups()) {
    const auto key = std::make_tuple(g->spec().file, g->name(), g->interval_ms());
    int64_t due;
    {
      std::lock_guard lock(schedule_mu_);
      auto it = next_.find(key);
      due = it == next_.end() ? now : it->second;
    }
    if (now < due) {
      seen[key] = due;
      continue;
    }
    const int64_t interval = g->interval_ms();
    // On schedule: stamp with the scheduled time; far behind: now, restarting the schedule.
    const int64_t t = now - due < interval ? due : now;
    std::vector<NotifyAlert> alerts = manager_.EvalGroup(*g, t);
    seen[key] = t + interval;
    ++ran;
    if (!alerts.empty() && notify_) notify_(std::move(alerts));
  }
  bool save = false;
  {
    std::lock_guard lock(schedule_mu_);
    next_ = std::move(seen);  // groups gone after a reload drop out of the schedule
    if (next_save_ms_ == 0) next_save_ms_ = now + options_.save_interval.count();
    if (now >= next_save_ms_) {
      save = true;
      next_save_ms_ = now + options_.save_interval.count();
    }
  }
  if (save) (void)manager_.SaveState();
  return ran;
}

int64_t RuleRunner::NextDueMs() const {
  const int64_t now = NowMs(clock_);
  int64_t next = std::numeric_limits<int64_t>::max();
  std::lock_guard lock(schedule_mu_);
  for (const auto& g : manager_.groups()) {
    auto it = next_.find(std::make_tuple(g->spec().file, g->name(), g->interval_ms()));
    next = std::min(next, it == next_.end() ? now : it->second);
  }
  return next;
}

void RuleRunner::Run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const int64_t now = NowMs(clock_);
    const int64_t next = NextDueMs();
    if (now >= next) {
      lock.unlock();
      RunDue();
      lock.lock();
      continue;
    }
    // Waits in real time for what remains on the Clock, capped by max_wait; wakes at once
    // on stop.
    const int64_t wait = std::min<int64_t>(next - now, options_.max_wait.count());
    cv_.wait_for(lock, stop, std::chrono::milliseconds(wait), [] { return false; });
  }
}

}  // namespace llmscope::alerts
