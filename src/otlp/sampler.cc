#include "otlp/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>

namespace llmscope::otlp {
namespace {

std::optional<double> CostOf(const core::Span& s) {
  for (const auto& a : s.attributes) {
    if (a.key != "llmscope.cost_usd") continue;
    if (const auto* d = std::get_if<double>(&a.value)) return *d;
    if (const auto* i = std::get_if<int64_t>(&a.value)) return static_cast<double>(*i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view SampleReasonName(SampleReason r) {
  switch (r) {
    case SampleReason::kError:
      return "error";
    case SampleReason::kSlow:
      return "slow";
    case SampleReason::kExpensive:
      return "expensive";
    case SampleReason::kRatio:
      return "ratio";
    case SampleReason::kNotSampled:
      return "not_sampled";
  }
  return "unknown";
}

bool TraceIdSampled(const core::TraceId& id, double ratio) {
  if (!(ratio > 0)) return false;
  if (ratio >= 1) return true;
  uint64_t low = 0;
  for (int i = 8; i < 16; ++i) low = (low << 8) | id[i];
  // ratio * 2^64 as a 64-bit bound: ldexp is exact, and ratio < 1 keeps it below 2^64.
  const auto bound = static_cast<uint64_t>(std::ldexp(ratio, 64));
  return low < bound;
}

size_t TailSampler::TraceHash::operator()(const core::TraceId& id) const {
  uint64_t h;
  std::memcpy(&h, id.data() + 8, sizeof h);  // trace ids are random: half of one is a hash
  return static_cast<size_t>(h);
}

TailSampler::TailSampler(SamplerOptions options, Output out, const core::Clock& clock,
                         metrics::Registry* registry)
    : options_(std::move(options)), out_(std::move(out)), clock_(clock) {
  if (registry == nullptr) return;
  if (auto f = registry->AddCounter("llmscope_otlp_sampled_traces",
                                    "Traces decided by the export sampler: kept (for an error, a "
                                    "slow span, an expensive call, or the ratio) or dropped.",
                                    {"decision", "reason"});
      f.ok()) {
    for (int r = 0; r < 5; ++r) {
      const auto reason = static_cast<SampleReason>(r);
      counts_[r] = &(*f)->WithLabels(
          {reason == SampleReason::kNotSampled ? "dropped" : "kept", SampleReasonName(reason)});
    }
  }
  if (auto f = registry->AddCounter("llmscope_otlp_sampler_early_decisions",
                                    "Traces the export sampler decided before their root span "
                                    "or decision_wait, because max_traces were pending.",
                                    {});
      f.ok()) {
    early_ = &(*f)->WithLabels({});
  }
}

TailSampler::~TailSampler() { Stop(); }

void TailSampler::Add(std::vector<core::Span> spans) {
  std::vector<std::vector<core::Span>> kept;
  std::vector<core::Span> late;  // spans of traces already kept
  {
    std::lock_guard lock(mu_);
    const core::MonoTime now = clock_.Now();
    for (core::Span& s : spans) {
      if (auto d = decided_.find(s.trace_id); d != decided_.end()) {
        if (d->second) late.push_back(std::move(s));
        continue;
      }
      auto [it, fresh] = pending_.try_emplace(s.trace_id);
      if (fresh) {
        it->second.seq = next_seq_++;
        it->second.first_seen = now;
        order_.emplace(it->second.seq, s.trace_id);
      }
      const bool root = !core::IsValid(s.parent_span_id);
      it->second.spans.push_back(std::move(s));
      if (root) {
        Decide(it, kept);
      } else if (fresh && pending_.size() > options_.max_traces) {
        // Memory bound: the oldest pending trace is decided now, on what it has.
        Decide(pending_.find(order_.begin()->second), kept);
        if (early_ != nullptr) early_->Inc();
      }
    }
  }
  if (!late.empty()) kept.push_back(std::move(late));
  Emit(kept);
}

void TailSampler::Tick() {
  std::vector<std::vector<core::Span>> kept;
  {
    std::lock_guard lock(mu_);
    const core::MonoTime now = clock_.Now();
    while (!order_.empty()) {
      auto it = pending_.find(order_.begin()->second);
      if (now - it->second.first_seen < options_.decision_wait) break;
      Decide(it, kept);
    }
  }
  Emit(kept);
}

void TailSampler::Flush() {
  std::vector<std::vector<core::Span>> kept;
  {
    std::lock_guard lock(mu_);
    while (!order_.empty()) Decide(pending_.find(order_.begin()->second), kept);
  }
  Emit(kept);
}

size_t TailSampler::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void TailSampler::Decide(std::unordered_map<core::TraceId, Pending, TraceHash>::iterator it,
                         std::vector<std::vector<core::Span>>& kept) {
  const std::vector<core::Span>& spans = it->second.spans;
  bool error = false, slow = false, expensive = false;
  for (const core::Span& s : spans) {
    error = error || s.status == core::SpanStatus::kError;
    slow = slow || (options_.slow > core::Nanos(0) &&
                    s.end_unix_nanos - s.start_unix_nanos > options_.slow.count());
    if (options_.expensive_usd > 0 && !expensive) {
      const auto cost = CostOf(s);
      expensive = cost && *cost > options_.expensive_usd;
    }
  }
  SampleReason reason = SampleReason::kNotSampled;
  if (error && options_.keep_errors) {
    reason = SampleReason::kError;
  } else if (slow) {
    reason = SampleReason::kSlow;
  } else if (expensive) {
    reason = SampleReason::kExpensive;
  } else if (TraceIdSampled(it->first, options_.ratio)) {
    reason = SampleReason::kRatio;
  }
  const bool keep = reason != SampleReason::kNotSampled;
  if (auto* c = counts_[static_cast<int>(reason)]) c->Inc();
  const core::TraceId id = it->first;
  if (keep) kept.push_back(std::move(it->second.spans));
  order_.erase(it->second.seq);
  pending_.erase(it);
  Remember(id, keep);
}

void TailSampler::Remember(const core::TraceId& id, bool kept) {
  decided_[id] = kept;
  decided_order_.push_back(id);
  while (decided_order_.size() > options_.max_traces) {
    decided_.erase(decided_order_.front());
    decided_order_.pop_front();
  }
}

void TailSampler::Emit(std::vector<std::vector<core::Span>>& kept) {
  for (auto& spans : kept) out_(std::move(spans));
}

void TailSampler::Start() {
  if (ticker_.joinable()) return;
  // A few ticks per decision_wait: a trace waits at most about a quarter longer.
  const core::Nanos interval = std::clamp<core::Nanos>(
      options_.decision_wait / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
  ticker_ = std::jthread([this, interval](std::stop_token stop) {
    while (!stop.stop_requested()) {
      {
        std::unique_lock lock(thread_mu_);
        thread_cv_.wait_for(lock, stop, interval, [] { return false; });
      }
      if (!stop.stop_requested()) Tick();
    }
  });
}

void TailSampler::Stop() {
  if (ticker_.joinable()) {
    ticker_.request_stop();
    ticker_.join();
  }
  Flush();
}

}  // namespace llmscope::otlp
