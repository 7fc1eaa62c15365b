#include "metrics/family.h"

#include <algorithm>
#include <cassert>
#include <mutex>
#include <type_traits>

#include "metrics/exposition.h"

namespace llmscope::metrics {
namespace {

std::vector<std::string> RenderBounds(const std::vector<double>& bounds) {
  std::vector<std::string> le;
  le.reserve(bounds.size() + 1);
  for (double b : bounds) le.push_back(FormatBucketBound(b));
  le.emplace_back("+Inf");
  return le;
}

template <typename T>
constexpr MetricType TypeOf() {
  if constexpr (std::is_same_v<T, Counter>) return MetricType::kCounter;
  if constexpr (std::is_same_v<T, Gauge>) return MetricType::kGauge;
  return MetricType::kHistogram;
}

}  // namespace

template <typename T>
Family<T>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                  FamilyOptions options, std::vector<double> bounds, Counter* overflow_counter)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names), TypeOf<T>()),
      series_cap_(options.series_cap),
      bounds_(std::move(bounds)),
      le_(std::is_same_v<T, Histogram> ? RenderBounds(bounds_) : std::vector<std::string>()),
      overflow_counter_(overflow_counter) {}

template <typename T>
T& Family<T>::WithLabels(std::span<const std::string_view> values) {
  return Lookup(values);
}

template <typename T>
T& Family<T>::WithLabels(std::span<const std::string> values) {
  return Lookup(values);
}

template <typename T>
template <typename Values>
T& Family<T>::Lookup(const Values& values) {
  if (values.size() != label_names().size()) {
    assert(false && "Family::WithLabels: wrong number of label values");
    std::unique_lock lock(mu_);
    return FoldLocked();
  }
  {
    std::shared_lock lock(mu_);
    if (auto it = series_.find(values); it != series_.end()) return *it->second;
    // Over the cap with the overflow series already there: fold without the exclusive lock,
    // so a flood of new label values does not serialise the hot path.
    if (regular_series_ >= series_cap_ && overflow_ != nullptr) {
      if (overflow_counter_ != nullptr) overflow_counter_->Inc();
      return *overflow_;
    }
  }
  std::unique_lock lock(mu_);
  if (auto it = series_.find(values); it != series_.end()) return *it->second;
  if (regular_series_ >= series_cap_) return FoldLocked();
  ++regular_series_;
  auto [it, inserted] =
      series_.emplace(std::vector<std::string>(values.begin(), values.end()), NewSeries());
  return *it->second;
}

template <typename T>
T& Family<T>::FoldLocked() {
  if (overflow_ == nullptr) {
    std::vector<std::string> key(label_names().size(), std::string(kOverflowLabelValue));
    auto it = series_.find(key);
    if (it == series_.end()) it = series_.emplace(std::move(key), NewSeries()).first;
    overflow_ = it->second.get();
  }
  if (overflow_counter_ != nullptr) overflow_counter_->Inc();
  return *overflow_;
}

template <typename T>
std::unique_ptr<T> Family<T>::NewSeries() const {
  if constexpr (std::is_same_v<T, Histogram>) {
    return std::make_unique<Histogram>(bounds_);
  } else {
    return std::make_unique<T>();
  }
}

template <typename T>
size_t Family<T>::series_count() const {
  std::shared_lock lock(mu_);
  return series_.size();
}

template <typename T>
void Family<T>::AppendSamples(const std::vector<std::string>& values, const T& series,
                              std::vector<Sample>& out) const {
  std::vector<Label> labels;
  labels.reserve(values.size() + 1);
  for (size_t i = 0; i < values.size(); ++i) labels.push_back({label_names()[i], values[i]});

  if constexpr (std::is_same_v<T, Histogram>) {
    Histogram::Snapshot h = series.Read();
    for (size_t i = 0; i < h.cumulative_counts.size(); ++i) {
      Sample s{"_bucket", labels, static_cast<double>(h.cumulative_counts[i]),
               std::move(h.exemplars[i])};
      s.labels.push_back({"le", le_[i]});
      out.push_back(std::move(s));
    }
    out.push_back(Sample{"_sum", labels, h.sum, std::nullopt});
    out.push_back(Sample{"_count", std::move(labels), static_cast<double>(h.count), std::nullopt});
  } else {
    out.push_back(Sample{"", std::move(labels), series.Value(), std::nullopt});
  }
}

template <typename T>
void Family<T>::Collect(std::vector<FamilySnapshot>& out) const {
  FamilySnapshot f{name(), help(), type(), {}};
  {
    std::shared_lock lock(mu_);
    // The map is unordered for fast lookups; sort per scrape for a stable exposition order.
    std::vector<const typename SeriesMap::value_type*> sorted;
    sorted.reserve(series_.size());
    for (const auto& entry : series_) sorted.push_back(&entry);
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
      return std::lexicographical_compare(a->first.begin(), a->first.end(), b->first.begin(),
                                          b->first.end());
    });
    f.samples.reserve(series_.size() * (std::is_same_v<T, Histogram> ? le_.size() + 2 : 1));
    for (const auto* entry : sorted) AppendSamples(entry->first, *entry->second, f.samples);
  }
  out.push_back(std::move(f));
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

}  // namespace llmscope::metrics
