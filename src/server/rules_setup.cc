#include "server/rules_setup.h"

#include <set>
#include <string>

#include "alerts/builtin_rules.h"

namespace llmscope::server {

core::Result<std::vector<alerts::RuleFile>> RuleFilesFor(const RulesConfig& rules) {
  std::vector<alerts::RuleFile> files;
  std::string errors;
  auto add_error = [&errors](const std::string& e) {
    if (!errors.empty()) errors += "\n";
    errors += e;
  };
  if (rules.builtin) {
    auto builtin = alerts::BuiltinRules();
    if (!builtin.ok()) return builtin.status();
    std::set<std::string> seen;
    for (auto& g : builtin->groups) {
      if (rules.builtin_interval) g.interval_ms = rules.builtin_interval->count();
      std::vector<alerts::RuleSpec> kept;
      for (auto& r : g.rules) {
        auto o = rules.builtin_overrides.find(r.name);
        if (o != rules.builtin_overrides.end()) {
          seen.insert(r.name);
          if (o->second.disabled) continue;
          if (o->second.for_duration) r.for_ms = o->second.for_duration->count();
        }
        kept.push_back(std::move(r));
      }
      g.rules = std::move(kept);
    }
    std::erase_if(builtin->groups, [](const alerts::GroupSpec& g) { return g.rules.empty(); });
    for (const auto& [name, o] : rules.builtin_overrides) {
      if (!seen.count(name)) {
        add_error("rules.builtin_overrides." + name +
                  ": no built-in alert has this name (see `llmscope rules export`)");
      }
    }
    files.push_back(std::move(*builtin));
  } else if (!rules.builtin_overrides.empty()) {
    add_error("rules.builtin_overrides: the built-in rules are off (rules.builtin: false)");
  }
  for (const auto& path : rules.files) {
    auto parsed = alerts::LoadRuleFileCollect(path);
    for (const auto& e : parsed.errors) add_error(e);
    if (parsed.errors.empty()) files.push_back(std::move(parsed.file));
  }
  if (!errors.empty()) return core::InvalidArgument(errors);
  return files;
}

alerts::SampleSink RuleSamplesInto(tsdb::Db& db) {
  return [&db](std::vector<alerts::RuleSample> samples) {
    std::vector<tsdb::LabeledSample> out;
    out.reserve(samples.size());
    for (auto& s : samples) {
      std::vector<tsdb::Label> labels;
      labels.reserve(s.labels.size());
      for (auto& l : s.labels) labels.push_back({std::move(l.name), std::move(l.value)});
      out.push_back({tsdb::MakeLabels(std::move(labels)), s.t_ms, s.v});
    }
    db.AppendBatch(out);
  };
}

core::Status LoadRules(const RulesConfig& rules, alerts::RuleManager& manager) {
  auto files = RuleFilesFor(rules);
  if (!files.ok()) return files.status();
  return manager.LoadParsed(std::move(*files));
}

}  // namespace llmscope::server
