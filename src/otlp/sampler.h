#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/span.h"
#include "metrics/registry.h"

namespace llmscope::otlp {

struct SamplerOptions {
  // The share of ordinary traces kept, in [0, 1], decided on the trace id alone (as
  // OpenTelemetry's TraceIdRatioBased does), so every llmscope with the same ratio keeps
  // the same traces.
  double ratio = 1.0;
  // Keep every trace with a span whose status is ERROR (a failed call).
  bool keep_errors = true;
  // Keep every trace with a span that lasted longer than this (a slow call); 0: off.
  core::Nanos slow = std::chrono::seconds(10);
  // Keep every trace with a call that cost more than this (the llmscope.cost_usd of a
  // gateway span, see SpanFromCall); <= 0: off.
  double expensive_usd = 0.5;
  // A trace whose root span has not arrived this long after its first span is decided on
  // what it has.
  core::Nanos decision_wait = std::chrono::seconds(5);
  // Traces waiting for a decision. Beyond it the oldest is decided at once, on what it has
  // (counted in llmscope_otlp_sampler_early_decisions_total). REQUIRES: >= 1.
  size_t max_traces = 50'000;
};

// Why a trace was kept or dropped (the `reason` label).
enum class SampleReason : uint8_t { kError, kSlow, kExpensive, kRatio, kNotSampled };
std::string_view SampleReasonName(SampleReason r);  // "error", "slow", ..., "not_sampled"

// Whether the trace id falls in the kept share: its low 8 bytes (big-endian, bytes 8..15)
// as an unsigned number below ratio * 2^64. Ratio 1 keeps all, 0 none. Pure.
bool TraceIdSampled(const core::TraceId& id, double ratio);

// Thread-safety: Add, Tick, Flush and pending() from any threads (one mutex); Start and
// Stop from one owning thread. `out` is called without the lock held, from the thread that
// made the decision, and must not block (the exporter's Enqueue).
//
// Tail sampling: the spans of a trace are held until the trace is decided, then the spans
// of a kept trace go to `out` together. Kept: a trace with an error (keep_errors), a slow
// span or an expensive call, whatever the ratio; otherwise the trace-id ratio decides.
// A trace is decided when its root span (no parent) arrives, or decision_wait after its
// first span (Tick), or when it is the oldest and max_traces are pending, or at Flush.
// Spans of a trace that arrive after its decision follow it (sent on when kept, dropped
// when not): the most recent max_traces decisions are remembered for that.
// Counts llmscope_otlp_sampled_traces_total{decision="kept|dropped",reason}.
class TailSampler {
 public:
  using Output = std::function<void(std::vector<core::Span>&&)>;
  // `clock` borrowed; `registry` may be null (no metrics).
  TailSampler(SamplerOptions options, Output out, const core::Clock& clock,
              metrics::Registry* registry);
  ~TailSampler();
  TailSampler(const TailSampler&) = delete;
  TailSampler& operator=(const TailSampler&) = delete;

  // Takes spans (from the OTLP receiver, or gateway calls made spans). Never blocks long.
  void Add(std::vector<core::Span> spans);
  // Decides every trace whose decision_wait has passed on the clock.
  void Tick();
  // Decides every pending trace now, on what it has.
  void Flush();
  size_t pending() const;

  // Starts a thread that calls Tick a few times per decision_wait (real time).
  void Start();
  // Stops that thread, then Flush. Idempotent.
  void Stop();

 private:
  struct TraceHash {
    size_t operator()(const core::TraceId& id) const;
  };
  struct Pending {
    uint64_t seq = 0;  // arrival order of the trace's first span: its key in order_
    core::MonoTime first_seen;
    std::vector<core::Span> spans;
  };
  // Decides the pending trace `it` points at; appends its spans to `kept` when kept.
  // REQUIRES: mu_ held.
  void Decide(std::unordered_map<core::TraceId, Pending, TraceHash>::iterator it,
              std::vector<std::vector<core::Span>>& kept);
  void Remember(const core::TraceId& id, bool kept);  // REQUIRES: mu_ held
  void Emit(std::vector<std::vector<core::Span>>& kept);

  const SamplerOptions options_;
  const Output out_;
  const core::Clock& clock_;

  mutable std::mutex mu_;
  std::unordered_map<core::TraceId, Pending, TraceHash> pending_;  // GUARDED_BY(mu_)
  std::map<uint64_t, core::TraceId> order_;  // pending traces, oldest first; GUARDED_BY(mu_)
  uint64_t next_seq_ = 0;                    // GUARDED_BY(mu_)
  // Recent decisions, for spans that arrive late, and their order for eviction.
  std::unordered_map<core::TraceId, bool, TraceHash> decided_;  // GUARDED_BY(mu_)
  std::deque<core::TraceId> decided_order_;                     // GUARDED_BY(mu_)

  std::mutex thread_mu_;
  std::condition_variable_any thread_cv_;  // never notified; woken by the stop token
  std::jthread ticker_;

  // One series per reason (kept for error, slow, expensive, ratio; dropped for
  // not_sampled), resolved once.
  metrics::Counter* counts_[5] = {};
  metrics::Counter* early_ = nullptr;
};

}  // namespace llmscope::otlp
