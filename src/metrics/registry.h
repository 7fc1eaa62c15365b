#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "metrics/exposition.h"
#include "metrics/family.h"
#include "metrics/snapshot.h"

namespace llmscope::metrics {

// Thread-safety: every method is safe from any number of threads. Registration is meant for
// start-up but is safe at any time; Collect/Render run concurrently with updates and with
// registration, and see each metric's latest value.
//
// The process's metric families and scrape-time collectors, and their exposition.
// There is no global instance: the server creates one and hands it (by reference) to every
// module that records metrics.
//
// Naming: counter families are registered WITHOUT the "_total" suffix ("llm_requests") and
// the exposition appends it to every counter sample ("llm_requests_total"), in the Prometheus
// text format and OpenMetrics alike; the Prometheus text format also names the family
// "llm_requests_total" in HELP/TYPE, while OpenMetrics names it "llm_requests" there.
// Registering a counter whose name already ends in "_total" is an error.
//
// Cardinality: every family has a series cap (FamilyOptions::series_cap). Label sets beyond
// it fold into one overflow series (all label values "__overflow__"), and each folded lookup
// increments llmscope_metric_series_overflow_total{family="<name>"}, a counter the registry
// registers itself (one series per family, present from registration at 0).
//
// Order: families render in registration order (the registry's own two families first),
// collectors at the position they were added; series within a family sorted by label values.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registers a family. Errors (nothing is registered):
  //   INVALID_ARGUMENT: name or a label name not valid Prometheus syntax or starting with
  //     "__"; a repeated label name; empty help; series_cap == 0; a counter name ending in
  //     "_total"; for histograms, a label named "le", or buckets that are not strictly
  //     increasing finite numbers (one trailing +Inf is accepted and dropped).
  //   ALREADY_EXISTS: the name, or a name it exposes (counter: name_total; histogram:
  //     name_bucket, name_sum, name_count), is already exposed by a registered family.
  // The returned family is owned by the registry and valid for its lifetime.
  core::Result<CounterFamily*> AddCounter(std::string name, std::string help,
                                          std::vector<std::string> label_names,
                                          FamilyOptions options = {});
  core::Result<GaugeFamily*> AddGauge(std::string name, std::string help,
                                      std::vector<std::string> label_names,
                                      FamilyOptions options = {});
  core::Result<HistogramFamily*> AddHistogram(std::string name, std::string help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> buckets,
                                              FamilyOptions options = {});

  // Adds a scrape-time source of families (see Collector). The registry shares ownership.
  // At scrape time a collected family with an invalid metric or label name, an unknown
  // sample suffix, or a name that collides with another family's is dropped and counted in
  // llmscope_metric_collector_families_dropped_total. A null collector is ignored.
  void AddCollector(std::shared_ptr<const Collector> collector);

  // Appends a snapshot of every family, in exposition order (for rendering, or for a
  // self-scrape into a time-series store).
  void Collect(std::vector<FamilySnapshot>& out) const;

  // Collect + metrics::Render: the body of a /metrics response.
  std::string Render(Format format) const;

 private:
  struct Entry {
    std::shared_ptr<const Collector> collector;
    bool is_family;  // registered family (trusted) rather than a user collector (checked)
  };

  template <typename F>
  core::Result<F*> Add(MetricType type, std::string name, std::string help,
                       std::vector<std::string> label_names, std::vector<double> buckets,
                       FamilyOptions options);

  mutable std::mutex mu_;
  std::vector<Entry> entries_;                // guarded by mu_
  std::unordered_set<std::string> exposed_;   // guarded by mu_: names families expose
  CounterFamily* overflow_family_ = nullptr;  // set in the constructor, then immutable
  Counter* collector_dropped_ = nullptr;      // set in the constructor, then immutable
};

}  // namespace llmscope::metrics
