#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/log.h"
#include "core/record_sink.h"
#include "core/span.h"
#include "core/status.h"
#include "metrics/metric.h"
#include "metrics/registry.h"
#include "pipeline/spill_queue.h"
#include "storage/store.h"

namespace llmscope::pipeline {

// Settings of a StoreWriter, fixed at construction.
struct StoreWriterOptions {
  // The most records (calls plus spans) held in memory: queued for the writer thread plus
  // the batch it is writing. A batch that does not fit goes to the spill queue, or is dropped
  // and counted when there is none or it is full. A single batch larger than this never fits
  // in memory. REQUIRES: >= 1.
  size_t max_pending_records = 100'000;
  // The most records in one Store::WriteCalls or WriteSpans call. REQUIRES: >= 1.
  size_t write_batch_records = 5'000;
  // How long, on the Clock, queued records wait for a write batch to fill before a partial
  // batch is written. A waiting Flush or Stop cuts it short. REQUIRES: >= 0.
  core::Nanos max_write_delay = std::chrono::milliseconds(200);
  // Directory of the on-disk spill queue (SpillQueue). Empty: no spill, memory only; then a
  // backend outage keeps at most max_pending_records and drops the rest, and records still
  // held at Stop are lost (counted).
  std::string spill_dir;
  // Disk bound of the spill queue (SpillQueueOptions::max_bytes). REQUIRES: >= 1.
  uint64_t spill_max_bytes = uint64_t{1} << 30;  // 1 GiB
  // Segment size of the spill queue (SpillQueueOptions::segment_bytes). REQUIRES: >= 1.
  uint64_t spill_segment_bytes = uint64_t{16} << 20;  // 16 MiB
  // The longest spilled data stays unsynced when no Flush asks for it earlier
  // (SpillQueueOptions::sync_interval): the window a machine failure can lose.
  // REQUIRES: >= 0.
  core::Nanos spill_sync_interval = std::chrono::seconds(1);
  // Backoff between probes (Store::Ping) of a backend that failed, on the Clock: starts at
  // the minimum, doubles after every failure (a failed probe, or a failed write after a
  // probe succeeded), capped at the maximum; a successful write resets it.
  // REQUIRES: 0 < min <= max.
  core::Nanos retry_backoff_min = std::chrono::milliseconds(100);
  core::Nanos retry_backoff_max = std::chrono::seconds(30);
  // How long BatchSink::Flush() (the pipeline's shutdown hook) waits; see Flush(timeout).
  core::Nanos flush_timeout = std::chrono::seconds(10);
  // How long Stop() keeps writing to the store, on the Clock, checked between batches;
  // what is left then goes to the spill queue (or is dropped and counted without one).
  core::Nanos stop_timeout = std::chrono::seconds(10);
};

// Thread-safety: Consume, SubmitSpans, Flush, Drain and the accessors may be called from any
// number of threads at once, also concurrently with Start and Stop. Start and Stop are for
// the owning (wiring) thread and not concurrent with each other. The Store is called from
// the writer thread only.
//
// The durable write path between the pipeline and the event store. Consume (on the
// pipeline's worker) and SubmitSpans (from any thread, e.g. the OTLP receiver) copy or move
// a batch into a bounded memory queue under a short mutex and return; they never wait on the
// store, so a backend that is down or slow never slows capture or the other sinks. Where a
// batch goes:
//   backend up, memory has room          -> memory queue (the writer thread writes it)
//   backend down (with a spill), or memory full -> spill queue (write(2) to the page cache,
//                                           never a sync, never the store)
//   spill refused (full or failing) and memory has room -> memory queue
//   otherwise                            -> dropped and counted (memory_full_no_spill,
//                                           spill_full, spill_error)
//
// The writer thread (std::jthread) takes up to write_batch_records queued records of one
// kind once the batch is full or max_write_delay has passed (at once when a Flush or Stop
// waits) and writes them with Store::WriteCalls / WriteSpans. On an error it marks the
// backend down (a warning, once per change of state; llmscope_storage_backend_up 0), moves
// the batch and everything queued to the spill queue, and probes the backend with Ping
// after an exponential backoff on the Clock. Once a probe succeeds (an info log) it writes
// again and replays the spill queue oldest first, each spill record acknowledged only after
// its write returned OK, alternating with fresh batches so neither starves. Without a
// spill, failed batches stay in memory and are retried.
//
// Durability: a record handed in is in one of three places: memory (lost if the process
// dies), the spill queue (survives kill -9 once appended; survives a machine failure once
// synced, at the latest spill_sync_interval after the append) or the store (a returned OK
// means durable). Flush(timeout) returning true means every record accepted before the call
// is in the store or in the synced spill: a kill -9 (or power loss) after it loses none of
// them; they are either stored or replayed from the spill by the next StoreWriter on the
// same spill_dir, which replays at Start whatever a previous process left. Replays are at
// least once: a record may be written twice (after a crash between a write and the
// persisted acknowledgement), which Store's idempotent writes absorb.
//
// Time: max_write_delay, the retry backoff, spill syncs and the stop deadline are measured
// on the injected Clock; the thread sleeps on a condition variable for the remaining Clock
// time and is woken by new work, Flush, Drain and Stop, so tests drive it with a FakeClock
// and never sleep. Flush and Drain timeouts are real-time bounds on waits.
//
// Metrics registered on the given registry at construction (a registration failure is
// returned by Start):
//   llmscope_storage_records_written_total{kind}       calls | spans, replays included
//   llmscope_storage_write_errors_total                failed WriteCalls/WriteSpans calls
//   llmscope_storage_write_duration_seconds            histogram per write call
//   llmscope_storage_backend_up                        gauge 0/1
//   llmscope_storage_pending_records                   gauge: records held in memory
//   llmscope_storage_spill_bytes                       gauge (scrape time)
//   llmscope_storage_spill_records                     gauge (scrape time)
//   llmscope_storage_spill_oldest_age_seconds          gauge (scrape time), 0 when empty
//   llmscope_storage_records_dropped_total{reason}     memory_full_no_spill | spill_full |
//                                                      spill_error | abandoned
//   llmscope_storage_spill_corrupt_records_total       corrupt spill frames or payloads
//   llmscope_storage_spill_torn_tails_total            torn tails truncated at Start
class StoreWriter final : public core::BatchSink {
 public:
  // `store`, `registry`, `logger` and `clock` are borrowed and must outlive the writer.
  StoreWriter(StoreWriterOptions options, storage::Store& store, metrics::Registry& registry,
              core::Logger& logger, const core::Clock& clock);
  // Stops (see Stop) if still running.
  ~StoreWriter() override;
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Opens the spill queue (recovering what a previous process left, which the thread then
  // replays) and starts the writer thread. Records handed in before Start wait in memory.
  // Errors: the metric registration failure; INVALID_ARGUMENT listing every option outside
  // its REQUIRES; the spill queue's Open error (the directory cannot be used, or another
  // writer holds it); FAILED_PRECONDITION when already started or stopped.
  core::Status Start();

  // Writes what memory holds to the store until stop_timeout passes on the Clock (checked
  // between batches; a backend that is down gets one probe); whatever remains goes to the
  // spill queue, which is then synced. Without a spill (or when it refuses) the rest is
  // dropped and counted (reason "abandoned") and logged. Records already in the spill stay
  // there for the next start. A Store call in progress cannot be interrupted: Stop waits
  // for it (Store implementations bound their own I/O time). Records handed in after Stop
  // has begun are dropped (reason "abandoned"). Idempotent; valid without Start.
  void Stop();

  // BatchSink: copies `batch` (see the routing table above) and returns. Never blocks on the
  // store; a spill append is a write(2) to the page cache.
  void Consume(const std::vector<core::LlmCall>& batch) override;
  // The same for spans. Returns false when (part of) the batch was dropped and counted.
  bool SubmitSpans(std::vector<core::Span>&& spans);

  // Waits until every record accepted before this call is durable: written to the store, or
  // appended to the spill queue and synced (the thread syncs at once for a waiting Flush and
  // cuts max_write_delay short). Returns whether that happened within `timeout` (real
  // time). Records refused when handed in (dropped and counted) are not waited for; records
  // accepted and then abandoned by Stop make it return false. Also false while the backend
  // is down and there is no spill (memory is not durable), and before Start.
  bool Flush(core::Nanos timeout);
  // BatchSink's shutdown hook: Flush(options.flush_timeout); a timeout is logged.
  void Flush() override;

  // Waits until nothing is pending: memory is empty and the spill queue holds no record
  // (everything accepted so far, and everything a previous process spilled, is in the
  // store). Returns whether that happened within `timeout` (real time). Wakes the thread so
  // a backoff that has expired on the Clock is acted on. For tests and operational checks;
  // under continuous load it may never be true.
  bool Drain(core::Nanos timeout);

  // Records held in memory (queued plus being written).
  size_t pending_records() const;
  // Whether the last write or probe of the backend succeeded (true before the first).
  bool backend_up() const;
  // The spill queue, or null without a spill dir or before Start. For tests and status.
  const SpillQueue* spill() const { return spill_.get(); }

 private:
  using Records = std::variant<std::vector<core::LlmCall>, std::vector<core::Span>>;
  // One accepted batch (or several merged) and the tickets of the batches it holds.
  struct Entry {
    Records records;
    std::vector<uint64_t> tickets;
    core::MonoTime queued_at;
  };
  struct ScrapeState;  // shared with the scrape-time collector, which may outlive us
  class SpillCollector;

  void RegisterMetrics(metrics::Registry& registry);
  core::Status ValidateOptions() const;
  void Run(std::stop_token stop);
  // Routes an accepted batch (see the class comment). Returns false when records were
  // dropped.
  bool Accept(Records&& records);

  // Thread steps; each takes the lock held, may release it while doing I/O, and returns
  // with it held.
  void WriteQueued(std::unique_lock<std::mutex>& lock);
  void SpillQueued(std::unique_lock<std::mutex>& lock);
  void SyncSpill(std::unique_lock<std::mutex>& lock);
  void Probe(std::unique_lock<std::mutex>& lock);
  void DrainOnStop(std::unique_lock<std::mutex>& lock);
  // Replays the oldest spill record. Called unlocked.
  void ReplayOne();

  // Writes `records` in chunks of write_batch_records; returns how many were written (a
  // prefix) and the first error. Counts and times every call.
  std::pair<size_t, core::Status> WriteToStore(const Records& records);
  // Appends `records` to the spill (several spill records when one would exceed the
  // record size limit); returns how many were appended (a prefix) and the first error.
  std::pair<size_t, core::Status> AppendToSpill(const Records& records);

  void MarkDownLocked(const core::Status& why);
  void MarkUpLocked();
  // Releases one instance of each ticket and wakes Flush waiters. REQUIRES: mu_ held.
  void SettleLocked(const std::vector<uint64_t>& tickets);
  void UpdatePendingLocked();
  // Counts `n` dropped records for `reason`, logging at most once per 10 s of the Clock.
  void CountDrop(metrics::Counter& counter, const char* reason, size_t n);
  // Adds what the spill queue counted since the last call to the corrupt-record counter.
  void ReportSpillCorruption();
  // Wakes the thread. REQUIRES: mu_ held.
  void WakeLocked();
  bool FlushPendingLocked() const;

  const StoreWriterOptions options_;
  storage::Store& store_;
  core::Logger& logger_;
  const core::Clock& clock_;
  core::Status init_status_;  // set at construction, then immutable

  // Metrics; unregistered fallbacks when registration failed, so updates never check.
  metrics::Counter fallback_counter_;
  metrics::Gauge fallback_gauge_;
  std::unique_ptr<metrics::Histogram> fallback_histogram_;
  metrics::Counter* written_calls_ = &fallback_counter_;
  metrics::Counter* written_spans_ = &fallback_counter_;
  metrics::Counter* write_errors_ = &fallback_counter_;
  metrics::Histogram* write_duration_ = nullptr;  // set in the constructor
  metrics::Gauge* backend_up_gauge_ = &fallback_gauge_;
  metrics::Gauge* pending_gauge_ = &fallback_gauge_;
  metrics::Counter* dropped_memory_full_ = &fallback_counter_;
  metrics::Counter* dropped_spill_full_ = &fallback_counter_;
  metrics::Counter* dropped_spill_error_ = &fallback_counter_;
  metrics::Counter* dropped_abandoned_ = &fallback_counter_;
  metrics::Counter* spill_corrupt_ = &fallback_counter_;
  metrics::Counter* spill_torn_ = &fallback_counter_;
  std::shared_ptr<ScrapeState> scrape_;

  // Drop warnings: at most one per 10 s of the Clock, carrying the count since the last.
  std::atomic<int64_t> last_drop_warn_mono_ns_{INT64_MIN};
  std::atomic<uint64_t> drops_since_warn_{0};

  // Set by Start before the thread exists and never reset until destruction; read by
  // Consume/SubmitSpans under mu_ (then used unlocked: SpillQueue is thread-safe).
  std::unique_ptr<SpillQueue> spill_;
  // Writer-thread only.
  uint64_t corrupt_reported_ = 0;
  bool prefer_spill_ = false;        // alternates replay with fresh batches
  bool spill_read_failing_ = false;  // logs a spill read failure once per change

  mutable std::mutex mu_;
  std::condition_variable_any work_cv_;  // the thread: new work, flush, drain, stop
  std::condition_variable settled_cv_;   // Flush and Drain waiters
  std::deque<Entry> queue_;              // guarded by mu_: oldest first
  size_t queued_records_ = 0;            // guarded by mu_: records in queue_
  size_t in_flight_records_ = 0;         // guarded by mu_: taken by the thread from queue_
  uint64_t last_ticket_ = 0;             // guarded by mu_: one per accepted batch
  // Guarded by mu_: one instance per place an accepted batch (or part of one) is held
  // without being durable: a queue entry, a batch in flight, an unsynced spill append.
  std::multiset<uint64_t> unsettled_;
  std::vector<uint64_t> spilled_unsynced_;  // guarded by mu_: tickets appended, not synced
  uint64_t flush_target_ = 0;               // guarded by mu_: highest ticket a Flush awaits
  uint64_t wake_gen_ = 0;                   // guarded by mu_: bumped to wake the thread
  bool backend_up_ = true;                  // guarded by mu_
  core::Nanos backoff_{0};                  // guarded by mu_: the current retry backoff
  core::MonoTime next_probe_{};             // guarded by mu_: when down, the next Ping
  core::MonoTime next_sync_try_{};          // guarded by mu_: after a failed spill Sync
  core::MonoTime replay_paused_until_{};    // guarded by mu_: after a failed spill read
  bool spill_blocked_ = false;  // guarded by mu_: spill refused while down; retried per probe
  bool spill_append_failing_ = false;  // guarded by mu_: logs spill write failures per change
  bool spill_sync_failing_ = false;    // guarded by mu_: logs spill sync failures per change
  bool started_ = false;               // guarded by mu_
  bool stopping_ = false;              // guarded by mu_: Accept refuses from here on
  bool exited_ = false;                // guarded by mu_: the thread has finished
  core::MonoTime stop_deadline_{};     // guarded by mu_

  std::jthread worker_;  // last: joined (in ~StoreWriter via Stop) before members go away
};

}  // namespace llmscope::pipeline
