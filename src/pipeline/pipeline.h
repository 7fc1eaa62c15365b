#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/log.h"
#include "core/record_sink.h"
#include "core/status.h"
#include "metrics/metric.h"
#include "metrics/registry.h"
#include "pricing/price_catalog.h"

namespace llmscope::pipeline {

// Settings of a Pipeline, fixed at construction.
struct PipelineOptions {
  // The most records held at once: queued plus taken by the worker and not yet consumed by
  // every sink. A Submit beyond it drops the record (capture never waits on analysis).
  // REQUIRES: >= 1.
  size_t queue_capacity = 65536;
  // The most records handed to the sinks in one Consume call. REQUIRES: >= 1.
  size_t max_batch = 512;
  // How long the worker waits for a batch to fill once its first record has arrived; a
  // partial batch goes out after this. Bounds the delay a record sees in a quiet system.
  core::Nanos max_batch_delay = std::chrono::milliseconds(100);
  // How long Stop() keeps draining queued records before abandoning the rest (counted in
  // llmscope_pipeline_records_dropped_total{reason="abandoned"} and logged). Measured on
  // the pipeline's Clock, checked between batches.
  core::Nanos stop_timeout = std::chrono::seconds(5);
};

// The pipeline's pricing step, exposed for callers and tests that price outside a Pipeline.
// Prices `call` in place with `catalog`: looks up response_model (requested_model when the
// response model is empty or unpriced) at start_unix_nanos; sets cost_usd when found, sets
// unpriced = true and leaves cost_usd empty when not (never a silent $0). A call that
// already carries a cost (priced upstream, e.g. by an OTLP producer) is left unchanged.
// Thread-safety: pure apart from `call`; safe from any thread.
void PriceCall(const pricing::PriceCatalog& catalog, core::LlmCall& call);

// Thread-safety: Submit and Flush may be called from any number of threads at once, also
// concurrently with Start and Stop. AddSink, Start and Stop are for the owning (wiring)
// thread: AddSink only before Start; Start and Stop not concurrently with each other.
// Sinks are called from the worker thread only, one batch at a time, in AddSink order.
//
// The bounded queue between capture (gateway and OTLP threads) and analysis/storage.
// Submit moves a finished call into the queue under a short mutex (never waiting on the
// worker or on a sink); one worker thread takes batches, prices each record (PriceCall)
// and hands the batch to every sink in turn. A full queue drops and counts, never blocks.
//
// Metrics registered on the given registry at construction:
//   llmscope_pipeline_records_processed_total          records handed to every sink
//   llmscope_pipeline_records_dropped_total{reason}    queue_full | stopped | abandoned
//   llmscope_pipeline_queue_depth                      gauge (scrape time): records held
//   llmscope_pipeline_queue_capacity                   gauge (scrape time): queue_capacity
//   llmscope_pipeline_batch_size                       histogram of records per Consume
// A registration failure (e.g. a second Pipeline on the same registry) is returned by
// Start(); the pipeline is then unusable.
class Pipeline final : public core::RecordSink {
 public:
  // `catalog` may be null: records are then passed on unpriced (cost_usd empty, unpriced
  // left false: nothing was looked up). `registry`, `logger` and `clock` are borrowed and
  // must outlive the pipeline. The first form uses the system clock.
  Pipeline(PipelineOptions options, std::shared_ptr<const pricing::PriceCatalog> catalog,
           metrics::Registry& registry, core::Logger& logger);
  Pipeline(PipelineOptions options, std::shared_ptr<const pricing::PriceCatalog> catalog,
           metrics::Registry& registry, core::Logger& logger, const core::Clock& clock);
  // Stops (see Stop) if still running.
  ~Pipeline() override;
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Adds a consumer. `sink` is borrowed and must outlive the pipeline.
  // REQUIRES: before Start(); a sink added later (or a null one) is ignored and logged.
  void AddSink(core::BatchSink* sink);

  // A step run on the worker for every call, after pricing and before the sinks: what the
  // sinks see, the transform has already changed (redaction of captured content, say).
  // REQUIRES: before Start(); later calls are ignored and logged.
  void SetTransform(std::function<void(core::LlmCall&)> transform);

  // Starts the worker thread. Records submitted before Start wait in the queue.
  // Errors: the metric registration failure from construction; FAILED_PRECONDITION when
  // already started or stopped; INVALID_ARGUMENT for a zero queue_capacity or max_batch.
  core::Status Start();

  // Rejects further records (reason "stopped"), drains what is queued to the sinks, calls
  // each sink's Flush once after its last Consume, and joins the worker. Draining stops at
  // stop_timeout (on the Clock, checked between batches); what remains is abandoned,
  // counted (reason "abandoned") and logged. A sink blocked inside Consume cannot be
  // interrupted: Stop waits for that call to return (BatchSink's contract forbids long
  // blocking). Idempotent; also valid when never started (queued records are then
  // abandoned and counted).
  void Stop();

  // Submits a finished call. Never blocks on the worker: returns false, counts the drop and
  // leaves `call` untouched when the queue already holds queue_capacity records (reason
  // "queue_full") or Stop has begun (reason "stopped"). Drops are logged as a warning at
  // most once per 10 s (on the Clock), with the number dropped since the last warning.
  bool Submit(core::LlmCall&& call) override;

  // Waits until every record accepted before this call has been consumed by all sinks, or
  // `timeout` (real time) passes. Returns whether they all were. Wakes the worker so a
  // partial batch goes out without waiting for max_batch_delay. Returns false at once when
  // the worker has exited with records abandoned or was never started with records queued
  // and Stop was called. For tests and shutdown.
  bool Flush(core::Nanos timeout);

  // Records held now (queued plus taken and not yet consumed).
  size_t depth() const;

 private:
  struct Gauges;  // shared with the scrape-time collector, which may outlive us
  class QueueCollector;

  void RegisterMetrics(metrics::Registry& registry);
  void Run(std::stop_token stop);
  // Enriches and hands one batch to every sink, then settles it. Worker thread only.
  void Deliver(std::vector<core::LlmCall>& batch);
  // Counts `n` records as dropped for `reason` and rate-limits the warning.
  void CountDrop(metrics::Counter& counter, const char* reason, size_t n);
  // Releases `n` records from the held count and updates the depth gauge.
  // REQUIRES: mu_ held.
  void ReleaseLocked(size_t n);

  const PipelineOptions options_;
  const std::shared_ptr<const pricing::PriceCatalog> catalog_;
  core::Logger& logger_;
  const core::SystemClock system_clock_;  // used when no clock is handed in
  const core::Clock& clock_;
  core::Status init_status_;  // set at construction, then immutable

  // Metrics. If registration failed they point at the unregistered fallbacks below, so the
  // hot path never checks for null.
  metrics::Counter fallback_counter_;
  std::unique_ptr<metrics::Histogram> fallback_histogram_;
  metrics::Counter* processed_ = &fallback_counter_;
  metrics::Counter* dropped_full_ = &fallback_counter_;
  metrics::Counter* dropped_stopped_ = &fallback_counter_;
  metrics::Counter* dropped_abandoned_ = &fallback_counter_;
  metrics::Histogram* batch_size_ = nullptr;  // set in the constructor
  std::shared_ptr<Gauges> gauges_;

  // Drop warnings: at most one per kDropWarnInterval, carrying the count since the last.
  std::atomic<int64_t> last_drop_warn_mono_ns_{INT64_MIN};
  std::atomic<uint64_t> drops_since_warn_{0};

  std::vector<core::BatchSink*> sinks_;  // written before Start only, then read by the worker
  std::function<void(core::LlmCall&)> transform_;  // the same

  mutable std::mutex mu_;
  // Worker wake-ups: first record, a full batch, a flush request (stop via the stop token).
  std::condition_variable_any work_cv_;
  std::condition_variable settled_cv_;  // Flush waiters: consumed_ advanced, worker exited
  std::vector<core::LlmCall> queue_;    // guarded by mu_: accepted, not yet taken
  size_t held_ = 0;                     // guarded by mu_: queue_ plus taken, not consumed
  uint64_t accepted_ = 0;               // guarded by mu_: records ever accepted
  uint64_t consumed_ = 0;               // guarded by mu_: records consumed by every sink
  uint64_t flush_target_ = 0;           // guarded by mu_: highest accepted_ a Flush awaits
  bool started_ = false;                // guarded by mu_
  bool stopping_ = false;               // guarded by mu_: Submit rejects from here on
  bool worker_exited_ = false;          // guarded by mu_
  std::atomic<int64_t> stop_deadline_mono_ns_{INT64_MAX};  // set by Stop before stopping_

  std::jthread worker_;  // last: joined (in ~Pipeline via Stop) before members go away
};

}  // namespace llmscope::pipeline
