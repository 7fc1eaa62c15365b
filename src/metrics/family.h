#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/metric.h"
#include "metrics/snapshot.h"

namespace llmscope::metrics {

class Registry;

// Per-family settings, fixed at registration.
struct FamilyOptions {
  // The most distinct label sets the family keeps. Once it holds this many, every lookup of a
  // label set it does not already have returns ONE shared overflow series whose label values
  // are all kOverflowLabelValue, and increments the registry's
  // llmscope_metric_series_overflow_total{family="<name>"} (once per such lookup, so the
  // counter measures folded traffic, not distinct label sets). Must be >= 1.
  size_t series_cap = 1000;
};

// The label value of every label of a family's overflow series.
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

// Thread-safety: accessors return immutable data and are safe from any thread.
// What the Registry keeps of every family; the typed API is Family<T>.
class FamilyBase : public Collector {
 public:
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names,
             MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        type_(type) {}

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const MetricType type_;
};

// Thread-safety: all methods are safe from any number of threads. WithLabels takes a shared
// lock to find an existing series (an exclusive one only to create a series); callers on
// hot paths may keep the returned reference and skip the lookup. Updating the returned
// metric never locks (see Counter, Gauge, Histogram).
// One metric family: a name, help, label names and one series (a T) per label-value tuple.
// Created only by Registry::Add*, which owns it; pointers and the references WithLabels
// returns stay valid for the registry's lifetime.
template <typename T>
class Family final : public FamilyBase {
 public:
  Family(const Family&) = delete;
  Family& operator=(const Family&) = delete;

  // The series for these label values, given in label_names() order, created on first use
  // (or the overflow series once the series cap is reached; see FamilyOptions).
  // REQUIRES: exactly label_names().size() values. A wrong count asserts in debug builds; in
  // release it returns the overflow series and counts a fold, never crashing.
  T& WithLabels(std::initializer_list<std::string_view> values) {
    return WithLabels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  T& WithLabels(std::span<const std::string_view> values);
  T& WithLabels(std::span<const std::string> values);

  // Distinct series currently held, the overflow series included.
  size_t series_count() const;

  // Appends one FamilySnapshot; series sorted by label values (lexicographic, in label-name
  // order).
  void Collect(std::vector<FamilySnapshot>& out) const override;

 private:
  friend class Registry;
  // REQUIRES (checked by Registry): valid names, cap >= 1, `bounds` strictly increasing and
  // finite (histograms only). `overflow_counter` may be null (the overflow family itself).
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         FamilyOptions options, std::vector<double> bounds, Counter* overflow_counter);

  // Hash and equality over label-value tuples, transparent so that a lookup with string_views
  // needs no copies (C++20 heterogeneous unordered lookup).
  struct ValuesHash {
    using is_transparent = void;
    template <typename Values>
    size_t operator()(const Values& values) const {
      size_t h = values.size();
      for (std::string_view v : values) {
        h ^= std::hash<std::string_view>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
      }
      return h;
    }
  };
  struct ValuesEqual {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                        [](std::string_view x, std::string_view y) { return x == y; });
    }
  };
  using SeriesMap =
      std::unordered_map<std::vector<std::string>, std::unique_ptr<T>, ValuesHash, ValuesEqual>;

  template <typename Values>
  T& Lookup(const Values& values);
  T& FoldLocked();  // REQUIRES: mu_ held exclusively
  std::unique_ptr<T> NewSeries() const;
  void AppendSamples(const std::vector<std::string>& values, const T& series,
                     std::vector<Sample>& out) const;

  const size_t series_cap_;
  const std::vector<double> bounds_;   // histograms only
  const std::vector<std::string> le_;  // histograms only: rendered bounds, then "+Inf"
  Counter* const overflow_counter_;    // registry-owned; null for the overflow family
  mutable std::shared_mutex mu_;
  SeriesMap series_;           // guarded by mu_; element addresses are stable
  size_t regular_series_ = 0;  // guarded by mu_: series created below the cap
  T* overflow_ = nullptr;      // guarded by mu_: the overflow series once created
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

}  // namespace llmscope::metrics
