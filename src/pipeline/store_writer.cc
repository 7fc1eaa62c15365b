#include "pipeline/store_writer.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

#include "pipeline/record_codec.h"

namespace llmscope::pipeline {
namespace {

using Records = std::variant<std::vector<core::LlmCall>, std::vector<core::Span>>;

constexpr int64_t kDropWarnIntervalNs = 10'000'000'000;  // 10 s

// 1 ms to ~33 s: a healthy embedded write takes milliseconds, a struggling remote backend
// seconds; the tail is what tells them apart.
std::vector<double> WriteDurationBuckets() { return metrics::ExponentialBuckets(0.001, 2, 16); }

// Bounds for the fallback histogram used when registration failed; must outlive it.
constexpr std::array<double, 1> kFallbackBounds = {1};

size_t Size(const Records& r) {
  return std::visit([](const auto& v) { return v.size(); }, r);
}

void ErasePrefix(Records& r, size_t n) {
  std::visit([n](auto& v) { v.erase(v.begin(), v.begin() + static_cast<ptrdiff_t>(n)); }, r);
}

core::MonoTime SaturatingAdd(core::MonoTime t, core::Nanos d) {
  if (d.count() > 0 &&
      t.time_since_epoch().count() > std::numeric_limits<int64_t>::max() - d.count()) {
    return core::MonoTime::max();
  }
  return t + d;
}

double Seconds(core::Nanos d) { return static_cast<double>(d.count()) / 1e9; }

std::string Encode(std::span<const core::LlmCall> items) { return EncodeCalls(items); }
std::string Encode(std::span<const core::Span> items) { return EncodeSpans(items); }
RecordKind KindOf(std::span<const core::LlmCall>) { return RecordKind::kCalls; }
RecordKind KindOf(std::span<const core::Span>) { return RecordKind::kSpans; }

// Appends `items` as one spill record, or, when the encoding exceeds the record size limit,
// as several (halving until each fits). Returns how many items (a prefix) were appended.
template <typename T>
std::pair<size_t, core::Status> AppendItems(SpillQueue& spill, std::span<const T> items) {
  std::string payload = Encode(items);
  if (payload.size() > spill.options().max_record_bytes && items.size() > 1) {
    payload = std::string();
    const size_t half = items.size() / 2;
    auto first = AppendItems(spill, items.first(half));
    if (!first.second.ok()) return first;
    auto second = AppendItems(spill, items.subspan(half));
    return {half + second.first, std::move(second.second)};
  }
  core::Status s = spill.Append(KindOf(items), payload);
  return {s.ok() ? items.size() : 0, std::move(s)};
}

}  // namespace

// Scrape-time access to the spill queue. The registry owns the collector and may outlive
// the writer, so the writer clears `spill` (under `mu`) before the queue goes away.
struct StoreWriter::ScrapeState {
  std::mutex mu;
  const SpillQueue* spill = nullptr;  // guarded by mu
};

// Thread-safety: Collect may run concurrently from any number of threads.
// Exposes llmscope_storage_spill_bytes, _spill_records and _spill_oldest_age_seconds.
class StoreWriter::SpillCollector final : public metrics::Collector {
  static void Gauge(std::vector<metrics::FamilySnapshot>& out, std::string name, std::string help,
                    double value) {
    metrics::AppendSingleValueFamily(out, std::move(name), std::move(help),
                                     metrics::MetricType::kGauge, value);
  }

 public:
  explicit SpillCollector(std::shared_ptr<ScrapeState> state) : state_(std::move(state)) {}

  void Collect(std::vector<metrics::FamilySnapshot>& out) const override {
    double bytes = 0;
    double records = 0;
    double age = 0;
    {
      std::lock_guard lock(state_->mu);
      if (const SpillQueue* spill = state_->spill; spill != nullptr) {
        bytes = static_cast<double>(spill->bytes());
        records = static_cast<double>(spill->records());
        if (std::optional<core::Nanos> a = spill->oldest_age()) age = Seconds(*a);
      }
    }
    Gauge(out, "llmscope_storage_spill_bytes",
          "Bytes of the storage spill queue's segment files on disk.", bytes);
    Gauge(out, "llmscope_storage_spill_records",
          "Records (batches) in the storage spill queue waiting to be replayed.", records);
    Gauge(out, "llmscope_storage_spill_oldest_age_seconds",
          "Age of the oldest record in the storage spill queue; 0 when it is empty.", age);
  }

 private:
  std::shared_ptr<ScrapeState> state_;
};

StoreWriter::StoreWriter(StoreWriterOptions options, storage::Store& store,
                         metrics::Registry& registry, core::Logger& logger,
                         const core::Clock& clock)
    : options_(std::move(options)),
      store_(store),
      logger_(logger),
      clock_(clock),
      fallback_histogram_(std::make_unique<metrics::Histogram>(kFallbackBounds)),
      write_duration_(fallback_histogram_.get()),
      scrape_(std::make_shared<ScrapeState>()),
      backoff_(options_.retry_backoff_min) {
  RegisterMetrics(registry);
  backend_up_gauge_->Set(1);
}

StoreWriter::~StoreWriter() {
  Stop();
  std::lock_guard lock(scrape_->mu);
  scrape_->spill = nullptr;  // before spill_ is destroyed
}

void StoreWriter::RegisterMetrics(metrics::Registry& registry) {
  auto written =
      registry.AddCounter("llmscope_storage_records_written",
                          "Records written to the event store (replays included).", {"kind"});
  auto errors = registry.AddCounter("llmscope_storage_write_errors",
                                    "Event store write calls that failed.", {});
  auto duration =
      registry.AddHistogram("llmscope_storage_write_duration_seconds",
                            "Duration of one event store write call.", {}, WriteDurationBuckets());
  auto up = registry.AddGauge("llmscope_storage_backend_up",
                              "1 when the last event store write or probe succeeded, else 0.", {});
  auto pending = registry.AddGauge(
      "llmscope_storage_pending_records",
      "Records held in memory for the event store: queued plus being written.", {});
  auto dropped = registry.AddCounter(
      "llmscope_storage_records_dropped",
      "Records never stored: memory_full_no_spill (memory full, no spill configured), "
      "spill_full (memory and spill queue full), spill_error (memory full and the spill "
      "append failed), abandoned (still in memory at stop, or handed in after stop).",
      {"reason"});
  auto corrupt = registry.AddCounter(
      "llmscope_storage_spill_corrupt_records",
      "Corrupt spill queue frames skipped, and spill records that could not be decoded.", {});
  auto torn =
      registry.AddCounter("llmscope_storage_spill_torn_tails",
                          "Torn spill segment tails (cut-short writes) truncated at start.", {});
  for (const core::Status& s :
       {written.status(), errors.status(), duration.status(), up.status(), pending.status(),
        dropped.status(), corrupt.status(), torn.status()}) {
    if (!s.ok()) {
      init_status_ = s;
      return;
    }
  }
  // Every label value's series exists from the start at 0, so rate() and alerts see it.
  written_calls_ = &(*written)->WithLabels({"calls"});
  written_spans_ = &(*written)->WithLabels({"spans"});
  write_errors_ = &(*errors)->WithLabels({});
  write_duration_ = &(*duration)->WithLabels({});
  backend_up_gauge_ = &(*up)->WithLabels({});
  pending_gauge_ = &(*pending)->WithLabels({});
  dropped_memory_full_ = &(*dropped)->WithLabels({"memory_full_no_spill"});
  dropped_spill_full_ = &(*dropped)->WithLabels({"spill_full"});
  dropped_spill_error_ = &(*dropped)->WithLabels({"spill_error"});
  dropped_abandoned_ = &(*dropped)->WithLabels({"abandoned"});
  spill_corrupt_ = &(*corrupt)->WithLabels({});
  spill_torn_ = &(*torn)->WithLabels({});
  registry.AddCollector(std::make_shared<SpillCollector>(scrape_));
}

core::Status StoreWriter::ValidateOptions() const {
  std::vector<std::string> problems;
  const StoreWriterOptions& o = options_;
  if (o.max_pending_records == 0) problems.push_back("max_pending_records must be at least 1");
  if (o.write_batch_records == 0) problems.push_back("write_batch_records must be at least 1");
  if (o.max_write_delay.count() < 0) problems.push_back("max_write_delay must be >= 0");
  if (o.spill_max_bytes == 0) problems.push_back("spill_max_bytes must be at least 1");
  if (o.spill_segment_bytes == 0) problems.push_back("spill_segment_bytes must be at least 1");
  if (o.spill_sync_interval.count() < 0) problems.push_back("spill_sync_interval must be >= 0");
  if (o.retry_backoff_min.count() <= 0) problems.push_back("retry_backoff_min must be > 0");
  if (o.retry_backoff_max < o.retry_backoff_min) {
    problems.push_back("retry_backoff_max must be >= retry_backoff_min");
  }
  if (o.flush_timeout.count() < 0) problems.push_back("flush_timeout must be >= 0");
  if (o.stop_timeout.count() < 0) problems.push_back("stop_timeout must be >= 0");
  if (problems.empty()) return core::Status::Ok();
  std::string message = "store writer options:";
  for (const std::string& p : problems) message += " " + p + ";";
  message.pop_back();
  return core::InvalidArgument(std::move(message));
}

core::Status StoreWriter::Start() {
  if (!init_status_.ok()) return init_status_;
  if (core::Status s = ValidateOptions(); !s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return core::FailedPrecondition("store writer: already stopped");
    if (started_) return core::FailedPrecondition("store writer: already started");
  }
  if (!options_.spill_dir.empty()) {
    SpillQueueOptions so;
    so.dir = options_.spill_dir;
    so.max_bytes = options_.spill_max_bytes;
    so.segment_bytes = options_.spill_segment_bytes;
    so.sync_interval = options_.spill_sync_interval;
    core::Result<std::unique_ptr<SpillQueue>> opened = SpillQueue::Open(std::move(so), clock_);
    if (!opened.ok()) return opened.status();
    std::unique_ptr<SpillQueue> spill = std::move(*opened);
    if (spill->torn_tails() > 0) {
      spill_torn_->Inc(static_cast<double>(spill->torn_tails()));
      logger_.Warn("store writer: truncated torn spill tails left by a crash",
                   {{"dir", options_.spill_dir}, {"torn", std::to_string(spill->torn_tails())}});
    }
    if (spill->corrupt_records() > 0) {
      logger_.Error(
          "store writer: corrupt spill records skipped",
          {{"dir", options_.spill_dir}, {"corrupt", std::to_string(spill->corrupt_records())}});
    }
    if (spill->records() > 0) {
      logger_.Info("store writer: replaying records a previous run left in the spill queue",
                   {{"dir", options_.spill_dir},
                    {"records", std::to_string(spill->records())},
                    {"bytes", std::to_string(spill->bytes())}});
    }
    {
      std::lock_guard lock(scrape_->mu);
      scrape_->spill = spill.get();
    }
    std::lock_guard lock(mu_);
    spill_ = std::move(spill);
    ReportSpillCorruption();
  }
  {
    std::lock_guard lock(mu_);
    started_ = true;
  }
  worker_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  return core::Status::Ok();
}

void StoreWriter::Stop() {
  bool was_started;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_deadline_ = SaturatingAdd(clock_.Now(), options_.stop_timeout);
    was_started = started_;
  }
  if (was_started) {
    worker_.request_stop();  // wakes the thread; it drains (DrainOnStop) and exits
    worker_.join();
    return;
  }
  size_t abandoned;
  {
    std::lock_guard lock(mu_);
    abandoned = queued_records_;
    // Their tickets stay unsettled: they were accepted and will never be durable, so a
    // Flush that covers them returns false.
    queue_.clear();
    queued_records_ = 0;
    UpdatePendingLocked();
    exited_ = true;
  }
  settled_cv_.notify_all();
  if (abandoned > 0) {
    dropped_abandoned_->Inc(static_cast<double>(abandoned));
    logger_.Error("store writer stopped without being started; records abandoned",
                  {{"abandoned", std::to_string(abandoned)}});
  }
}

void StoreWriter::Consume(const std::vector<core::LlmCall>& batch) {
  if (batch.empty()) return;
  (void)Accept(Records(std::in_place_index<0>, batch));
}

bool StoreWriter::SubmitSpans(std::vector<core::Span>&& spans) {
  if (spans.empty()) return true;
  return Accept(Records(std::in_place_index<1>, std::move(spans)));
}

bool StoreWriter::Accept(Records&& records) {
  const size_t n = Size(records);
  SpillQueue* spill = nullptr;
  uint64_t ticket = 0;
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      ticket = ++last_ticket_;
      spill = spill_.get();
      const bool fits = queued_records_ + in_flight_records_ + n <= options_.max_pending_records;
      // While the backend is down, a spill keeps memory free for the moment it is back.
      if (fits && (backend_up_ || spill == nullptr)) {
        unsettled_.insert(ticket);
        const bool wake = queue_.empty() || (queued_records_ < options_.write_batch_records &&
                                             queued_records_ + n >= options_.write_batch_records);
        queued_records_ += n;
        queue_.push_back(Entry{std::move(records), {ticket}, clock_.Now()});
        UpdatePendingLocked();
        if (wake) WakeLocked();
        return true;
      }
      if (spill != nullptr) unsettled_.insert(ticket);  // held by the append below
    }
  }
  if (ticket == 0) {
    CountDrop(*dropped_abandoned_, "abandoned", n);
    return false;
  }
  if (spill == nullptr) {
    CountDrop(*dropped_memory_full_, "memory_full_no_spill", n);
    return false;
  }

  auto [appended, status] = AppendToSpill(records);
  std::unique_lock lock(mu_);
  if (appended > 0) {
    spilled_unsynced_.push_back(ticket);  // the append's instance, settled by a Sync
    spill_append_failing_ = false;
    WakeLocked();  // schedules the sync, and replay while the backend is up
  }
  if (appended == n) return true;

  // The spill refused (the rest of) the batch: memory is the next best place.
  ErasePrefix(records, appended);
  const size_t rest = n - appended;
  if (!stopping_ && queued_records_ + in_flight_records_ + rest <= options_.max_pending_records) {
    if (appended > 0) unsettled_.insert(ticket);  // a second holder of the same batch
    queued_records_ += rest;
    queue_.push_back(Entry{std::move(records), {ticket}, clock_.Now()});
    UpdatePendingLocked();
    WakeLocked();
    return true;
  }
  if (appended == 0) SettleLocked({ticket});  // nobody holds it any more
  const bool full = status.code() == core::StatusCode::kResourceExhausted;
  if (!full && !spill_append_failing_) {
    spill_append_failing_ = true;
    logger_.Error("store writer: spill append failed", {{"error", status.ToString()}});
  }
  lock.unlock();
  if (full) {
    CountDrop(*dropped_spill_full_, "spill_full", rest);
  } else {
    CountDrop(*dropped_spill_error_, "spill_error", rest);
  }
  return false;
}

bool StoreWriter::FlushPendingLocked() const {
  return !unsettled_.empty() && *unsettled_.begin() <= flush_target_;
}

bool StoreWriter::Flush(core::Nanos timeout) {
  std::unique_lock lock(mu_);
  const uint64_t target = last_ticket_;
  auto durable = [&] { return unsettled_.empty() || *unsettled_.begin() > target; };
  if (durable()) return true;
  if (target > flush_target_) flush_target_ = target;
  WakeLocked();
  settled_cv_.wait_for(lock, timeout, [&] { return durable() || exited_; });
  return durable();
}

void StoreWriter::Flush() {
  if (Flush(options_.flush_timeout)) return;
  logger_.Warn("store writer: flush timed out; some records are not durable yet",
               {{"pending_records", std::to_string(pending_records())},
                {"flush_timeout_ms", std::to_string(options_.flush_timeout.count() / 1000000)}});
}

bool StoreWriter::Drain(core::Nanos timeout) {
  std::unique_lock lock(mu_);
  auto idle = [&] {
    return queue_.empty() && in_flight_records_ == 0 &&
           (spill_ == nullptr || spill_->records() == 0);
  };
  if (idle()) return true;
  if (!started_ || exited_) return false;
  WakeLocked();
  settled_cv_.wait_for(lock, timeout, [&] { return idle() || exited_; });
  return idle();
}

size_t StoreWriter::pending_records() const {
  std::lock_guard lock(mu_);
  return queued_records_ + in_flight_records_;
}

bool StoreWriter::backend_up() const {
  std::lock_guard lock(mu_);
  return backend_up_;
}

void StoreWriter::WakeLocked() {
  ++wake_gen_;
  work_cv_.notify_one();
}

void StoreWriter::SettleLocked(const std::vector<uint64_t>& tickets) {
  for (uint64_t t : tickets) {
    if (auto it = unsettled_.find(t); it != unsettled_.end()) unsettled_.erase(it);
  }
  settled_cv_.notify_all();
}

void StoreWriter::UpdatePendingLocked() {
  pending_gauge_->Set(static_cast<double>(queued_records_ + in_flight_records_));
}

void StoreWriter::CountDrop(metrics::Counter& counter, const char* reason, size_t n) {
  counter.Inc(static_cast<double>(n));
  drops_since_warn_.fetch_add(n, std::memory_order_relaxed);
  const int64_t now = clock_.Now().time_since_epoch().count();
  int64_t last = last_drop_warn_mono_ns_.load(std::memory_order_relaxed);
  if (last != INT64_MIN && now - last < kDropWarnIntervalNs) return;
  // One thread wins the right to warn for this interval; the others just counted.
  if (!last_drop_warn_mono_ns_.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    return;
  }
  const uint64_t since = drops_since_warn_.exchange(0, std::memory_order_relaxed);
  logger_.Warn("store writer dropping records (warning at most every 10s)",
               {{"reason", reason}, {"dropped_since_last_warning", std::to_string(since)}});
}

void StoreWriter::ReportSpillCorruption() {
  const uint64_t now = spill_->corrupt_records();
  if (now > corrupt_reported_) {
    spill_corrupt_->Inc(static_cast<double>(now - corrupt_reported_));
    corrupt_reported_ = now;
  }
}

void StoreWriter::MarkDownLocked(const core::Status& why) {
  if (backend_up_) {
    backend_up_ = false;
    backend_up_gauge_->Set(0);
    logger_.Warn(spill_ != nullptr
                     ? "storage backend down; batches go to the spill queue until it is back"
                     : "storage backend down; batches wait in memory (no spill queue)",
                 {{"store", store_.name()}, {"error", why.ToString()}});
  }
  // The backoff grows with every failure and is reset only by a successful write, so a
  // backend that answers Ping but fails every write is probed ever less often, not at the
  // minimum interval forever.
  next_probe_ = SaturatingAdd(clock_.Now(), backoff_);
  backoff_ = std::min(backoff_ * 2, options_.retry_backoff_max);
}

void StoreWriter::MarkUpLocked() {
  backend_up_ = true;
  backend_up_gauge_->Set(1);
  logger_.Info("storage backend up again; writing and replaying the spill queue",
               {{"store", store_.name()},
                {"spill_records", std::to_string(spill_ ? spill_->records() : 0)}});
}

std::pair<size_t, core::Status> StoreWriter::WriteToStore(const Records& records) {
  return std::visit(
      [&](const auto& items) -> std::pair<size_t, core::Status> {
        using T = typename std::decay_t<decltype(items)>::value_type;
        size_t done = 0;
        while (done < items.size()) {
          const size_t k = std::min(options_.write_batch_records, items.size() - done);
          std::span<const T> chunk(items.data() + done, k);
          const core::MonoTime t0 = clock_.Now();
          core::Status s;
          if constexpr (std::is_same_v<T, core::LlmCall>) {
            s = store_.WriteCalls(chunk);
          } else {
            s = store_.WriteSpans(chunk);
          }
          write_duration_->Observe(Seconds(clock_.Now() - t0));
          if (!s.ok()) {
            write_errors_->Inc();
            return {done, std::move(s)};
          }
          (std::is_same_v<T, core::LlmCall> ? written_calls_ : written_spans_)
              ->Inc(static_cast<double>(k));
          done += k;
        }
        return {done, core::Status::Ok()};
      },
      records);
}

std::pair<size_t, core::Status> StoreWriter::AppendToSpill(const Records& records) {
  return std::visit(
      [&](const auto& items) {
        using T = typename std::decay_t<decltype(items)>::value_type;
        return AppendItems<T>(*spill_, std::span<const T>(items));
      },
      records);
}

void StoreWriter::Run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const core::MonoTime now = clock_.Now();
    const bool flushing = FlushPendingLocked();

    // Durability first: a waiting Flush needs the spill synced, and nothing stays unsynced
    // longer than the sync interval.
    if (spill_ != nullptr && now >= next_sync_try_) {
      const std::optional<core::MonoTime> due = spill_->sync_due();
      if ((flushing && !spilled_unsynced_.empty()) || (due && *due <= now)) {
        SyncSpill(lock);
        continue;
      }
    }
    if (!backend_up_) {
      if (spill_ != nullptr && !spill_blocked_ && !queue_.empty()) {
        SpillQueued(lock);
        continue;
      }
      if (now >= next_probe_) {
        Probe(lock);
        continue;
      }
    } else {
      const bool replay = spill_ != nullptr && now >= replay_paused_until_ && spill_->records() > 0;
      const bool batch_ready =
          !queue_.empty() &&
          (queued_records_ >= options_.write_batch_records || flushing ||
           now >= SaturatingAdd(queue_.front().queued_at, options_.max_write_delay));
      if (batch_ready && !(replay && prefer_spill_)) {
        WriteQueued(lock);
        prefer_spill_ = true;
        continue;
      }
      if (replay) {
        lock.unlock();
        ReplayOne();
        lock.lock();
        prefer_spill_ = false;
        continue;
      }
    }

    // Nothing to do now: sleep until the next deadline on the Clock, or a wake-up.
    core::MonoTime deadline = core::MonoTime::max();
    if (!backend_up_) {
      deadline = next_probe_;
    } else {
      if (!queue_.empty()) {
        deadline = SaturatingAdd(queue_.front().queued_at, options_.max_write_delay);
      }
      if (spill_ != nullptr && spill_->records() > 0) {
        deadline = std::min(deadline, replay_paused_until_);
      }
    }
    if (spill_ != nullptr) {
      if (std::optional<core::MonoTime> due = spill_->sync_due()) {
        deadline = std::min(deadline, std::max(*due, next_sync_try_));
      }
      if (flushing && !spilled_unsynced_.empty()) deadline = std::min(deadline, next_sync_try_);
    }
    const uint64_t seen = wake_gen_;
    auto woken = [&] { return wake_gen_ != seen; };
    if (deadline == core::MonoTime::max()) {
      work_cv_.wait(lock, stop, woken);
    } else if (const core::Nanos left = deadline - clock_.Now(); left > core::Nanos(0)) {
      work_cv_.wait_for(lock, stop, left, woken);
    }
  }
  DrainOnStop(lock);
  exited_ = true;
  lock.unlock();
  settled_cv_.notify_all();
}

void StoreWriter::WriteQueued(std::unique_lock<std::mutex>& lock) {
  // One kind per write call; consecutive batches of that kind up to write_batch_records
  // (a single larger batch is written in chunks).
  const size_t kind = queue_.front().records.index();
  std::vector<Entry> taken;
  size_t n = 0;
  while (!queue_.empty() && queue_.front().records.index() == kind) {
    const size_t m = Size(queue_.front().records);
    if (n > 0 && n + m > options_.write_batch_records) break;
    n += m;
    taken.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  queued_records_ -= n;
  in_flight_records_ += n;
  lock.unlock();

  Entry batch = std::move(taken.front());
  for (size_t i = 1; i < taken.size(); ++i) {
    std::visit(
        [&](auto& into) {
          auto& from = std::get<std::decay_t<decltype(into)>>(taken[i].records);
          into.insert(into.end(), std::make_move_iterator(from.begin()),
                      std::make_move_iterator(from.end()));
        },
        batch.records);
    batch.tickets.insert(batch.tickets.end(), taken[i].tickets.begin(), taken[i].tickets.end());
  }
  taken.clear();
  auto [written, status] = WriteToStore(batch.records);

  lock.lock();
  in_flight_records_ -= n;
  if (status.ok()) {
    backoff_ = options_.retry_backoff_min;
    SettleLocked(batch.tickets);
    UpdatePendingLocked();
    return;
  }
  MarkDownLocked(status);
  ErasePrefix(batch.records, written);  // those are in the store; the tickets wait for the rest
  const size_t rest = n - written;
  size_t appended = 0;
  if (spill_ != nullptr && !spill_blocked_) {
    in_flight_records_ += rest;
    lock.unlock();
    auto [a, s] = AppendToSpill(batch.records);
    lock.lock();
    in_flight_records_ -= rest;
    appended = a;
    if (appended > 0) {
      spilled_unsynced_.insert(spilled_unsynced_.end(), batch.tickets.begin(), batch.tickets.end());
    }
    if (appended < rest) {
      spill_blocked_ = true;
      if (!spill_append_failing_) {
        spill_append_failing_ = true;
        logger_.Warn("store writer: spill refused a failed batch; it stays in memory",
                     {{"error", s.ToString()}});
      }
    }
  }
  if (appended == rest) {
    UpdatePendingLocked();
    settled_cv_.notify_all();
    return;
  }
  ErasePrefix(batch.records, appended);
  if (appended > 0) {
    for (uint64_t t : batch.tickets) unsettled_.insert(t);  // the remainder holds them too
  }
  queued_records_ += rest - appended;
  batch.queued_at = clock_.Now();
  queue_.push_front(std::move(batch));
  UpdatePendingLocked();
}

void StoreWriter::SpillQueued(std::unique_lock<std::mutex>& lock) {
  std::deque<Entry> taken;
  taken.swap(queue_);
  const size_t n = queued_records_;
  queued_records_ = 0;
  in_flight_records_ += n;
  lock.unlock();

  std::vector<uint64_t> spilled;  // tickets whose instance moves to the spill
  std::vector<uint64_t> doubled;  // tickets now held by the spill and by a remainder
  std::deque<Entry> left;
  core::Status failure;
  for (Entry& e : taken) {
    if (!failure.ok()) {
      left.push_back(std::move(e));
      continue;
    }
    auto [appended, s] = AppendToSpill(e.records);
    if (appended > 0) spilled.insert(spilled.end(), e.tickets.begin(), e.tickets.end());
    if (appended == Size(e.records)) continue;
    failure = std::move(s);
    if (appended > 0) {
      doubled.insert(doubled.end(), e.tickets.begin(), e.tickets.end());
      ErasePrefix(e.records, appended);
    }
    left.push_back(std::move(e));
  }

  lock.lock();
  in_flight_records_ -= n;
  spilled_unsynced_.insert(spilled_unsynced_.end(), spilled.begin(), spilled.end());
  for (uint64_t t : doubled) unsettled_.insert(t);
  if (!failure.ok()) {
    spill_blocked_ = true;  // until the next probe; memory keeps the rest meanwhile
    if (!spill_append_failing_) {
      spill_append_failing_ = true;
      logger_.Warn(
          "store writer: spill refused batches while the backend is down; they stay "
          "in memory",
          {{"error", failure.ToString()}});
    }
  } else {
    spill_append_failing_ = false;
  }
  size_t kept = 0;
  for (const Entry& e : left) kept += Size(e.records);
  queued_records_ += kept;
  queue_.insert(queue_.begin(), std::make_move_iterator(left.begin()),
                std::make_move_iterator(left.end()));
  UpdatePendingLocked();
  settled_cv_.notify_all();
}

void StoreWriter::SyncSpill(std::unique_lock<std::mutex>& lock) {
  // Tickets appended before the Sync starts are covered by it.
  std::vector<uint64_t> tickets;
  tickets.swap(spilled_unsynced_);
  lock.unlock();
  core::Status s = spill_->Sync();
  lock.lock();
  if (s.ok()) {
    SettleLocked(tickets);
    if (spill_sync_failing_) {
      spill_sync_failing_ = false;
      logger_.Info("store writer: spill sync works again");
    }
    return;
  }
  spilled_unsynced_.insert(spilled_unsynced_.end(), tickets.begin(), tickets.end());
  next_sync_try_ = SaturatingAdd(clock_.Now(), options_.retry_backoff_min);
  if (!spill_sync_failing_) {
    spill_sync_failing_ = true;
    logger_.Error("store writer: spill sync failed; retrying", {{"error", s.ToString()}});
  }
}

void StoreWriter::Probe(std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  core::Status s = store_.Ping();
  lock.lock();
  spill_blocked_ = false;  // the spill may have room again (or its disk recovered)
  if (s.ok()) {
    MarkUpLocked();
    return;
  }
  next_probe_ = SaturatingAdd(clock_.Now(), backoff_);
  backoff_ = std::min(backoff_ * 2, options_.retry_backoff_max);
}

void StoreWriter::ReplayOne() {
  core::Result<std::optional<SpillRecord>> peeked = spill_->Peek();
  ReportSpillCorruption();
  if (!peeked.ok()) {
    if (!spill_read_failing_) {
      spill_read_failing_ = true;
      logger_.Error("store writer: spill read failed; replay paused",
                    {{"error", peeked.status().ToString()}});
    }
    std::lock_guard lock(mu_);
    replay_paused_until_ = SaturatingAdd(clock_.Now(), options_.retry_backoff_max);
    return;
  }
  spill_read_failing_ = false;
  if (!peeked->has_value()) {
    std::lock_guard lock(mu_);
    settled_cv_.notify_all();  // the spill is empty: Drain may be done
    return;
  }
  const SpillRecord& record = **peeked;
  Records records;
  core::Status decoded;
  if (record.kind == RecordKind::kCalls) {
    core::Result<std::vector<core::LlmCall>> calls = DecodeCalls(record.payload);
    if (calls.ok()) {
      records = std::move(*calls);
    } else {
      decoded = calls.status();
    }
  } else {
    core::Result<std::vector<core::Span>> spans = DecodeSpans(record.payload);
    if (spans.ok()) {
      records.emplace<1>(std::move(*spans));
    } else {
      decoded = spans.status();
    }
  }
  if (!decoded.ok()) {
    // Its checksum matched, so the bytes are what was written: a record of a format this
    // build cannot read. Retrying cannot help; skip it loudly.
    spill_corrupt_->Inc();
    logger_.Error("store writer: spill record cannot be decoded; skipped",
                  {{"error", decoded.ToString()}});
    (void)spill_->Ack();
    std::lock_guard lock(mu_);
    settled_cv_.notify_all();
    return;
  }
  auto [written, status] = WriteToStore(records);
  if (status.ok()) {
    if (core::Status acked = spill_->Ack(); !acked.ok()) {
      logger_.Warn("store writer: spill acknowledgement failed", {{"error", acked.ToString()}});
    }
    std::lock_guard lock(mu_);
    backoff_ = options_.retry_backoff_min;
    settled_cv_.notify_all();
    return;
  }
  // Not acknowledged: the whole record is written again after the backend is back (the
  // prefix that made it is rewritten; writes are idempotent per key).
  std::lock_guard lock(mu_);
  MarkDownLocked(status);
}

void StoreWriter::DrainOnStop(std::unique_lock<std::mutex>& lock) {
  // One probe: the backend may be back, and writing beats spilling.
  if (!queue_.empty() && !backend_up_) Probe(lock);
  while (!queue_.empty() && backend_up_ && clock_.Now() < stop_deadline_) WriteQueued(lock);
  if (!queue_.empty() && spill_ != nullptr) {
    spill_blocked_ = false;
    SpillQueued(lock);
  }
  if (!queue_.empty()) {
    const size_t abandoned = queued_records_;
    queue_.clear();  // tickets stay unsettled: a Flush that covers them returns false
    queued_records_ = 0;
    UpdatePendingLocked();
    lock.unlock();
    dropped_abandoned_->Inc(static_cast<double>(abandoned));
    logger_.Error(
        "store writer stop: records abandoned (backend down or stop timeout, and no "
        "spill room)",
        {{"abandoned", std::to_string(abandoned)},
         {"stop_timeout_ms", std::to_string(options_.stop_timeout.count() / 1000000)}});
    lock.lock();
  }
  if (spill_ != nullptr) SyncSpill(lock);
}

}  // namespace llmscope::pipeline
