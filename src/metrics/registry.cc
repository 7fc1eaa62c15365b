#include "metrics/registry.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <string_view>
#include <utility>

#include "metrics/names.h"

namespace llmscope::metrics {
namespace {

// Every sample name a family exposes, plus its own name: two families may share none.
// `_created` is reserved for counters and histograms although we do not emit it yet.
std::vector<std::string> ExposedNames(MetricType type, const std::string& name) {
  switch (type) {
    case MetricType::kCounter:
      return {name, name + "_total", name + "_created"};
    case MetricType::kHistogram:
      return {name, name + "_bucket", name + "_sum", name + "_count", name + "_created"};
    case MetricType::kGauge:
    case MetricType::kUnknown:
      break;
  }
  return {name};
}

bool SuffixAllowed(MetricType type, std::string_view suffix) {
  if (type == MetricType::kHistogram) {
    return suffix == "_bucket" || suffix == "_sum" || suffix == "_count";
  }
  return suffix.empty();
}

// Checks a family a user Collector produced; on success reserves its exposed names.
bool AcceptCollected(const FamilySnapshot& f, std::unordered_set<std::string>& exposed) {
  if (!IsValidMetricName(f.name)) return false;
  for (const Sample& s : f.samples) {
    if (!SuffixAllowed(f.type, s.suffix)) return false;
    for (const Label& l : s.labels) {
      if (!IsValidLabelName(l.name)) return false;
    }
  }
  const std::vector<std::string> names = ExposedNames(f.type, f.name);
  for (const std::string& n : names) {
    if (exposed.contains(n)) return false;
  }
  exposed.insert(names.begin(), names.end());
  return true;
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

}  // namespace

Registry::Registry() {
  auto overflow = AddCounter(
      "llmscope_metric_series_overflow",
      "Lookups of a new label set that were folded into the family's overflow series because "
      "the family had reached its series cap.",
      {"family"}, FamilyOptions{.series_cap = std::numeric_limits<size_t>::max()});
  assert(overflow.ok());
  overflow_family_ = *overflow;
  auto dropped = AddCounter(
      "llmscope_metric_collector_families_dropped",
      "Metric families from scrape-time collectors dropped for an invalid or colliding name.", {});
  assert(dropped.ok());
  collector_dropped_ = &(*dropped)->WithLabels({});
}

Registry::~Registry() = default;

template <typename F>
core::Result<F*> Registry::Add(MetricType type, std::string name, std::string help,
                               std::vector<std::string> label_names, std::vector<double> buckets,
                               FamilyOptions options) {
  const std::string what = "metric " + Quote(name) + ": ";
  if (!IsValidMetricName(name)) {
    return core::InvalidArgument(
        what + "not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*, no leading \"__\")");
  }
  if (type == MetricType::kCounter && name.ends_with("_total")) {
    return core::InvalidArgument(
        what + "register counters without the \"_total\" suffix; the exposition appends it");
  }
  if (help.empty()) return core::InvalidArgument(what + "help text is empty");
  if (options.series_cap == 0) return core::InvalidArgument(what + "series_cap must be >= 1");
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    if (!IsValidLabelName(l)) {
      return core::InvalidArgument(what + "label name " + Quote(l) +
                                   " is not valid ([a-zA-Z_][a-zA-Z0-9_]*, no leading \"__\")");
    }
    if (type == MetricType::kHistogram && l == "le") {
      return core::InvalidArgument(what + "a histogram may not have a label named 'le'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (label_names[j] == l) return core::InvalidArgument(what + "label " + Quote(l) + " twice");
    }
  }
  if (type == MetricType::kHistogram) {
    if (!buckets.empty() && buckets.back() == std::numeric_limits<double>::infinity()) {
      buckets.pop_back();  // +Inf is implicit
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
      if (!std::isfinite(buckets[i])) {
        return core::InvalidArgument(what + "bucket bounds must be finite (+Inf only last)");
      }
      if (i > 0 && !(buckets[i] > buckets[i - 1])) {
        return core::InvalidArgument(what + "bucket bounds must be strictly increasing");
      }
    }
  }

  std::lock_guard lock(mu_);
  std::vector<std::string> exposed = ExposedNames(type, name);
  for (const std::string& n : exposed) {
    if (exposed_.contains(n)) {
      return core::Status(core::StatusCode::kAlreadyExists,
                          what + "the name " + Quote(n) + " is already used by another family");
    }
  }
  // Resolve the family's overflow counter now, so its series exists (at 0) from the start
  // and folding never has to look it up.
  Counter* overflow_counter =
      overflow_family_ == nullptr ? nullptr : &overflow_family_->WithLabels({name});
  std::shared_ptr<F> family(new F(std::move(name), std::move(help), std::move(label_names), options,
                                  std::move(buckets), overflow_counter));
  F* raw = family.get();
  entries_.push_back(Entry{std::move(family), /*is_family=*/true});
  exposed_.insert(exposed.begin(), exposed.end());
  return raw;
}

core::Result<CounterFamily*> Registry::AddCounter(std::string name, std::string help,
                                                  std::vector<std::string> label_names,
                                                  FamilyOptions options) {
  return Add<CounterFamily>(MetricType::kCounter, std::move(name), std::move(help),
                            std::move(label_names), {}, options);
}

core::Result<GaugeFamily*> Registry::AddGauge(std::string name, std::string help,
                                              std::vector<std::string> label_names,
                                              FamilyOptions options) {
  return Add<GaugeFamily>(MetricType::kGauge, std::move(name), std::move(help),
                          std::move(label_names), {}, options);
}

core::Result<HistogramFamily*> Registry::AddHistogram(std::string name, std::string help,
                                                      std::vector<std::string> label_names,
                                                      std::vector<double> buckets,
                                                      FamilyOptions options) {
  return Add<HistogramFamily>(MetricType::kHistogram, std::move(name), std::move(help),
                              std::move(label_names), std::move(buckets), options);
}

void Registry::AddCollector(std::shared_ptr<const Collector> collector) {
  if (collector == nullptr) return;
  std::lock_guard lock(mu_);
  entries_.push_back(Entry{std::move(collector), /*is_family=*/false});
}

void Registry::Collect(std::vector<FamilySnapshot>& out) const {
  // Copy the list and collect without holding mu_: collectors may be slow, and registration
  // must not wait on a scrape.
  std::vector<Entry> entries;
  std::unordered_set<std::string> exposed;
  {
    std::lock_guard lock(mu_);
    entries = entries_;
    const bool any_collector =
        std::any_of(entries.begin(), entries.end(), [](const Entry& e) { return !e.is_family; });
    if (any_collector) exposed = exposed_;
  }
  for (const Entry& e : entries) {
    const size_t first = out.size();
    e.collector->Collect(out);
    if (e.is_family) continue;
    size_t keep = first;
    for (size_t i = first; i < out.size(); ++i) {
      if (!AcceptCollected(out[i], exposed)) {
        collector_dropped_->Inc();
        continue;
      }
      if (keep != i) out[keep] = std::move(out[i]);
      ++keep;
    }
    out.erase(out.begin() + static_cast<std::ptrdiff_t>(keep), out.end());
  }
}

std::string Registry::Render(Format format) const {
  std::vector<FamilySnapshot> families;
  Collect(families);
  return metrics::Render(families, format);
}

}  // namespace llmscope::metrics
