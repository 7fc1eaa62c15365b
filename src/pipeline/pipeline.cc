#include "pipeline/pipeline.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <limits>
#include <string>
#include <utility>

namespace llmscope::pipeline {
namespace {

constexpr int64_t kDropWarnIntervalNs = 10'000'000'000;  // 10 s

// Powers of two up to the default max_batch and beyond: a batch size's order of magnitude
// is what tells "keeping up" (small batches) from "saturated" (full batches).
std::vector<double> BatchSizeBuckets() { return metrics::ExponentialBuckets(1, 2, 14); }

// Bounds for the fallback histogram used when registration failed; must outlive it.
constexpr std::array<double, 1> kFallbackBounds = {1};

int64_t SaturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > std::numeric_limits<int64_t>::max() - b) {
    return std::numeric_limits<int64_t>::max();
  }
  return a + b;
}

}  // namespace

void PriceCall(const pricing::PriceCatalog& catalog, core::LlmCall& call) {
  if (call.cost_usd.has_value()) return;  // priced by the producer; theirs is authoritative
  if (call.response_model.empty() && call.requested_model.empty()) return;  // nothing to price
  std::optional<pricing::ResolvedPrice> price;
  if (!call.response_model.empty()) {
    price = catalog.Lookup(call.response_model, call.start_unix_nanos);
  }
  // Providers answer with dated or re-routed names the catalog may not know; the model the
  // client asked for is the next best evidence of what was billed.
  if (!price && !call.requested_model.empty() && call.requested_model != call.response_model) {
    price = catalog.Lookup(call.requested_model, call.start_unix_nanos);
  }
  if (price) {
    call.cost_usd = pricing::Cost(price->price, call.usage);
    call.unpriced = false;
  } else {
    call.unpriced = true;
  }
}

// Scrape-time values shared between the pipeline and its collector. The registry owns the
// collector and may outlive the pipeline, so the collector must not point into it.
struct Pipeline::Gauges {
  std::atomic<double> depth{0};
  double capacity = 0;
};

// Thread-safety: Collect may run concurrently from any number of threads (atomic reads).
// Exposes llmscope_pipeline_queue_depth and llmscope_pipeline_queue_capacity.
class Pipeline::QueueCollector final : public metrics::Collector {
  static void Gauge(std::vector<metrics::FamilySnapshot>& out, std::string name, std::string help,
                    double value) {
    metrics::AppendSingleValueFamily(out, std::move(name), std::move(help),
                                     metrics::MetricType::kGauge, value);
  }

 public:
  explicit QueueCollector(std::shared_ptr<const Gauges> gauges) : gauges_(std::move(gauges)) {}

  void Collect(std::vector<metrics::FamilySnapshot>& out) const override {
    Gauge(out, "llmscope_pipeline_queue_depth",
          "Records held by the pipeline: queued plus being delivered.",
          gauges_->depth.load(std::memory_order_relaxed));
    Gauge(out, "llmscope_pipeline_queue_capacity",
          "The most records the pipeline holds before dropping.", gauges_->capacity);
  }

 private:
  std::shared_ptr<const Gauges> gauges_;
};

Pipeline::Pipeline(PipelineOptions options, std::shared_ptr<const pricing::PriceCatalog> catalog,
                   metrics::Registry& registry, core::Logger& logger)
    : Pipeline(options, std::move(catalog), registry, logger, system_clock_) {}

// Delegating with a reference to our own member is safe: clock_ is only used after
// construction, and system_clock_ (stateless) is constructed before clock_ by member order.
Pipeline::Pipeline(PipelineOptions options, std::shared_ptr<const pricing::PriceCatalog> catalog,
                   metrics::Registry& registry, core::Logger& logger, const core::Clock& clock)
    : options_(options),
      catalog_(std::move(catalog)),
      logger_(logger),
      clock_(clock),
      fallback_histogram_(std::make_unique<metrics::Histogram>(kFallbackBounds)),
      batch_size_(fallback_histogram_.get()),
      gauges_(std::make_shared<Gauges>()) {
  gauges_->capacity = static_cast<double>(options_.queue_capacity);
  RegisterMetrics(registry);
}

Pipeline::~Pipeline() { Stop(); }

void Pipeline::RegisterMetrics(metrics::Registry& registry) {
  auto processed = registry.AddCounter("llmscope_pipeline_records_processed",
                                       "Records the pipeline handed to every sink.", {});
  if (!processed.ok()) {
    init_status_ = processed.status();
    return;
  }
  auto dropped = registry.AddCounter(
      "llmscope_pipeline_records_dropped",
      "Records the pipeline dropped: queue_full (capture outpaced the sinks), stopped "
      "(submitted after shutdown began), abandoned (still held when the stop timeout ran "
      "out).",
      {"reason"});
  if (!dropped.ok()) {
    init_status_ = dropped.status();
    return;
  }
  auto batch =
      registry.AddHistogram("llmscope_pipeline_batch_size",
                            "Records per batch handed to the sinks.", {}, BatchSizeBuckets());
  if (!batch.ok()) {
    init_status_ = batch.status();
    return;
  }
  processed_ = &(*processed)->WithLabels({});
  // Every reason's series exists from the start at 0, so rate() and alerts see it.
  dropped_full_ = &(*dropped)->WithLabels({"queue_full"});
  dropped_stopped_ = &(*dropped)->WithLabels({"stopped"});
  dropped_abandoned_ = &(*dropped)->WithLabels({"abandoned"});
  batch_size_ = &(*batch)->WithLabels({});
  registry.AddCollector(std::make_shared<QueueCollector>(gauges_));
}

void Pipeline::AddSink(core::BatchSink* sink) {
  bool started;
  {
    std::lock_guard lock(mu_);
    started = started_ || stopping_;
  }
  if (sink == nullptr || started) {
    logger_.Error("pipeline: sink ignored (null, or added after Start)");
    return;
  }
  sinks_.push_back(sink);
}

void Pipeline::SetTransform(std::function<void(core::LlmCall&)> transform) {
  bool started;
  {
    std::lock_guard lock(mu_);
    started = started_ || stopping_;
  }
  if (started) {
    logger_.Error("pipeline: transform ignored (set after Start)");
    return;
  }
  transform_ = std::move(transform);
}

core::Status Pipeline::Start() {
  if (!init_status_.ok()) return init_status_;
  if (options_.queue_capacity == 0 || options_.max_batch == 0) {
    return core::InvalidArgument("pipeline: queue_capacity and max_batch must be at least 1");
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_) return core::FailedPrecondition("pipeline: already stopped");
    if (started_) return core::FailedPrecondition("pipeline: already started");
    started_ = true;
  }
  worker_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  return core::Status::Ok();
}

void Pipeline::Stop() {
  bool was_started;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    // The deadline is in place before Submit can observe stopping_, so anyone who sees a
    // "stopped" rejection knows the drain clock is already running.
    stop_deadline_mono_ns_.store(
        SaturatingAdd(clock_.Now().time_since_epoch().count(), options_.stop_timeout.count()));
    stopping_ = true;
    was_started = started_;
  }
  if (was_started) {
    worker_.request_stop();  // wakes the worker's waits; it drains, flushes sinks and exits
    worker_.join();
    return;
  }
  size_t abandoned;
  {
    std::lock_guard lock(mu_);
    abandoned = queue_.size();
    queue_.clear();
    ReleaseLocked(abandoned);
    worker_exited_ = true;
  }
  settled_cv_.notify_all();
  if (abandoned > 0) {
    dropped_abandoned_->Inc(static_cast<double>(abandoned));
    logger_.Error("pipeline stopped without being started; queued records abandoned",
                  {{"abandoned", std::to_string(abandoned)}});
  }
}

bool Pipeline::Submit(core::LlmCall&& call) {
  metrics::Counter* drop = nullptr;
  const char* reason = "";
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      drop = dropped_stopped_;
      reason = "stopped";
    } else if (held_ >= options_.queue_capacity) {
      drop = dropped_full_;
      reason = "queue_full";
    } else {
      queue_.push_back(std::move(call));
      ++held_;
      ++accepted_;
      gauges_->depth.store(static_cast<double>(held_), std::memory_order_relaxed);
      // Only the transitions the worker waits for: its first record, and a full batch
      // (which cuts the batching delay short). Other pushes need no wake-up.
      wake = queue_.size() == 1 || queue_.size() == options_.max_batch;
    }
  }
  if (drop != nullptr) {
    CountDrop(*drop, reason, 1);
    return false;
  }
  if (wake) work_cv_.notify_one();
  return true;
}

void Pipeline::CountDrop(metrics::Counter& counter, const char* reason, size_t n) {
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
  logger_.Warn("pipeline dropping records (warning at most every 10s)",
               {{"reason", reason},
                {"dropped_since_last_warning", std::to_string(since)},
                {"queue_capacity", std::to_string(options_.queue_capacity)}});
}

bool Pipeline::Flush(core::Nanos timeout) {
  std::unique_lock lock(mu_);
  const uint64_t target = accepted_;
  if (consumed_ >= target) return true;
  if (target > flush_target_) {
    flush_target_ = target;
    work_cv_.notify_one();  // skip the batching delay
  }
  settled_cv_.wait_for(lock, timeout, [&] { return consumed_ >= target || worker_exited_; });
  return consumed_ >= target;
}

size_t Pipeline::depth() const {
  std::lock_guard lock(mu_);
  return held_;
}

void Pipeline::ReleaseLocked(size_t n) {
  held_ -= n;
  gauges_->depth.store(static_cast<double>(held_), std::memory_order_relaxed);
}

void Pipeline::Run(std::stop_token stop) {
  // `taken` swaps with queue_ so the lock is held O(1) per batch regardless of size; both
  // vectors keep their capacity, so steady state allocates nothing here.
  std::vector<core::LlmCall> taken;
  std::vector<core::LlmCall> chunk;
  bool abandoned_rest = false;
  while (!abandoned_rest) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, stop, [&] { return !queue_.empty(); });
      if (queue_.empty()) break;  // stop requested and fully drained
      const bool flush_pending = flush_target_ > consumed_;
      if (!stop.stop_requested() && !flush_pending && queue_.size() < options_.max_batch) {
        const auto deadline = std::chrono::steady_clock::now() + options_.max_batch_delay;
        work_cv_.wait_until(lock, stop, deadline, [&] {
          return queue_.size() >= options_.max_batch || flush_target_ > consumed_;
        });
      }
      taken.swap(queue_);
    }
    size_t next = 0;
    while (next < taken.size()) {
      if (stop.stop_requested() &&
          clock_.Now().time_since_epoch().count() >= stop_deadline_mono_ns_.load()) {
        size_t abandoned;
        {
          std::lock_guard lock(mu_);
          abandoned = taken.size() - next + queue_.size();
          queue_.clear();
          ReleaseLocked(abandoned);
        }
        dropped_abandoned_->Inc(static_cast<double>(abandoned));
        logger_.Error(
            "pipeline stop timed out; records abandoned",
            {{"abandoned", std::to_string(abandoned)},
             {"stop_timeout_ms", std::to_string(options_.stop_timeout.count() / 1000000)}});
        abandoned_rest = true;
        break;
      }
      const size_t n = std::min(options_.max_batch, taken.size() - next);
      if (next == 0 && n == taken.size()) {
        Deliver(taken);  // the common case: the whole take is one batch, no moves
      } else {
        chunk.assign(std::make_move_iterator(taken.begin() + static_cast<ptrdiff_t>(next)),
                     std::make_move_iterator(taken.begin() + static_cast<ptrdiff_t>(next + n)));
        Deliver(chunk);
        chunk.clear();
      }
      next += n;
    }
    taken.clear();
  }
  for (core::BatchSink* sink : sinks_) sink->Flush();
  {
    std::lock_guard lock(mu_);
    worker_exited_ = true;
  }
  settled_cv_.notify_all();
}

void Pipeline::Deliver(std::vector<core::LlmCall>& batch) {
  if (catalog_ != nullptr) {
    for (core::LlmCall& call : batch) PriceCall(*catalog_, call);
  }
  if (transform_) {
    for (core::LlmCall& call : batch) transform_(call);
  }
  for (core::BatchSink* sink : sinks_) sink->Consume(batch);
  const size_t n = batch.size();
  processed_->Inc(static_cast<double>(n));
  batch_size_->Observe(static_cast<double>(n));
  {
    std::lock_guard lock(mu_);
    consumed_ += n;
    ReleaseLocked(n);
  }
  settled_cv_.notify_all();
}

}  // namespace llmscope::pipeline
