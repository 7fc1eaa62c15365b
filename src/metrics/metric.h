#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace llmscope::metrics {

// A pointer from a histogram bucket to one trace that landed in it (OpenMetrics exemplar).
// Rendered only in the OpenMetrics format, as `# {trace_id="..",span_id=".."} value ts`.
struct Exemplar {
  std::string trace_id;          // lowercase hex; empty: the label is left out
  std::string span_id;           // lowercase hex; empty: the label is left out
  double value = 0;              // the observed value; Histogram::Observe overwrites it
  double timestamp_seconds = 0;  // Unix seconds; <= 0 (or NaN) means "no timestamp"
};

// The OpenMetrics limit on an exemplar's label set: names plus values, in characters.
// Histogram::Observe drops (does not store) exemplars over it.
inline constexpr size_t kMaxExemplarLabelChars = 128;

// Thread-safety: every method is lock-free and safe from any number of threads.
// A monotonically increasing value (requests, tokens, dollars).
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // Adds v. Negative and NaN increments are ignored: a counter never goes down.
  void Inc(double v = 1.0) {
    if (!(v >= 0)) return;
    value_.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Thread-safety: every method is lock-free and safe from any number of threads.
// A value that goes up and down (queue depth, in-flight requests, last batch size).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Thread-safety: Observe(v) is lock-free. Observe(v, exemplar) additionally try-locks one
// per-bucket mutex to store the exemplar and skips storing it when that mutex is busy
// (latest-wins, so a lost exemplar is harmless); it never blocks. Read() is safe
// concurrently with Observe; under concurrent updates the sum may lag the counts slightly,
// while _count always equals the +Inf bucket.
// Counts observations into fixed buckets (`le` semantics: a value v lands in the first bucket
// whose upper bound is >= v; NaN and values above the last bound land in +Inf) and keeps
// their sum and the latest exemplar per bucket.
class Histogram {
 public:
  // REQUIRES: `bounds` strictly increasing and finite (the +Inf bucket is implicit); it must
  // outlive this histogram (the owning family keeps it).
  explicit Histogram(std::span<const double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v);
  // Observes v and records `exemplar` (with its value set to v) as the latest exemplar of the
  // bucket v lands in. An exemplar whose label set exceeds kMaxExemplarLabelChars is dropped.
  void Observe(double v, const Exemplar& exemplar);

  // A consistent-enough copy for exposition.
  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // bounds().size() + 1 entries; last is +Inf
    double sum = 0;
    uint64_t count = 0;                              // == cumulative_counts.back()
    std::vector<std::optional<Exemplar>> exemplars;  // per bucket, same indexing
  };
  Snapshot Read() const;

  std::span<const double> bounds() const { return bounds_; }

 private:
  size_t BucketIndex(double v) const;

  struct ExemplarSlot {
    std::mutex mu;
    bool set = false;  // guarded by mu
    Exemplar ex;       // guarded by mu
  };

  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
  std::unique_ptr<ExemplarSlot[]> exemplars_;
};

// Bucket layouts. Each returns strictly increasing finite bounds (no +Inf).
// The Prometheus client defaults: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 (seconds).
std::vector<double> DefaultBuckets();
// start, start*factor, ... (`count` bounds). REQUIRES: start > 0, factor > 1, count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// start, start+width, ... (`count` bounds). REQUIRES: width > 0, count >= 1.
std::vector<double> LinearBuckets(double start, double width, int count);

}  // namespace llmscope::metrics
