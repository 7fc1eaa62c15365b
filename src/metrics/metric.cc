#include "metrics/metric.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace llmscope::metrics {

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds),
      counts_(new std::atomic<uint64_t>[bounds.size() + 1]),
      exemplars_(new ExemplarSlot[bounds.size() + 1]) {
  assert(std::adjacent_find(bounds.begin(), bounds.end(), std::greater_equal<>()) == bounds.end());
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

size_t Histogram::BucketIndex(double v) const {
  // lower_bound finds the first bound >= v, which is the `le` bucket. NaN compares false
  // against everything, so route it to +Inf explicitly (as client_golang does).
  if (std::isnan(v)) return bounds_.size();
  return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
}

void Histogram::Observe(double v) {
  counts_[BucketIndex(v)].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

void Histogram::Observe(double v, const Exemplar& exemplar) {
  const size_t i = BucketIndex(v);
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);

  size_t label_chars = 0;
  if (!exemplar.trace_id.empty()) label_chars += 8 + exemplar.trace_id.size();  // "trace_id"
  if (!exemplar.span_id.empty()) label_chars += 7 + exemplar.span_id.size();    // "span_id"
  if (label_chars > kMaxExemplarLabelChars) return;

  ExemplarSlot& slot = exemplars_[i];
  std::unique_lock lock(slot.mu, std::try_to_lock);
  if (!lock.owns_lock()) return;  // someone else is writing a fresher one; never block
  // assign() reuses the strings' capacity, so steady state does not allocate.
  slot.ex.trace_id.assign(exemplar.trace_id);
  slot.ex.span_id.assign(exemplar.span_id);
  slot.ex.value = v;
  slot.ex.timestamp_seconds = exemplar.timestamp_seconds;
  slot.set = true;
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  const size_t n = bounds_.size() + 1;
  s.cumulative_counts.resize(n);
  s.exemplars.resize(n);
  uint64_t running = 0;
  for (size_t i = 0; i < n; ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative_counts[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    ExemplarSlot& slot = exemplars_[i];
    std::lock_guard lock(slot.mu);
    if (slot.set) s.exemplars[i] = slot.ex;
  }
  return s;
}

std::vector<double> DefaultBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  assert(start > 0 && factor > 1 && count >= 1);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::max(count, 0)));
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  assert(width > 0 && count >= 1);
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::max(count, 0)));
  // start + i*width rather than repeated addition, so rounding errors do not accumulate.
  for (int i = 0; i < count; ++i) out.push_back(start + i * width);
  return out;
}

}  // namespace llmscope::metrics
