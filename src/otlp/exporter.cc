#include "otlp/exporter.h"

#include <algorithm>
#include <charconv>

#include "otlp/convert.h"
#include "otlp/encode.h"
#include "otlp/gzip.h"

namespace llmscope::otlp {
namespace {

// Delta-seconds of a Retry-After header; 0 when absent or an HTTP date (then the exporter's
// own backoff applies).
core::Nanos RetryAfter(const http::BlockingResponse& r) {
  auto h = r.header("Retry-After");
  if (!h) return core::Nanos(0);
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(h->data(), h->data() + h->size(), seconds);
  if (ec != std::errc() || end != h->data() + h->size() || seconds < 0) return core::Nanos(0);
  return std::chrono::seconds(std::min<int64_t>(seconds, 86'400));
}

bool RetryableStatus(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

Exporter::Exporter(ExporterOptions options, metrics::Registry* registry, core::Logger& log)
    : options_(std::move(options)),
      log_(log),
      rng_(static_cast<std::minstd_rand::result_type>(
          options_.seed != 0 ? options_.seed : std::random_device{}())) {
  if (registry == nullptr) return;
  if (auto f = registry->AddCounter("llmscope_otlp_export_spans",
                                    "Spans sent on to the OTLP export endpoint, by outcome: sent, "
                                    "dropped_queue_full (the export queue was full), failed "
                                    "(given up after retries, refused, or left at shutdown).",
                                    {"outcome"});
      f.ok()) {
    spans_ = *f;
  }
  if (auto f = registry->AddCounter("llmscope_otlp_export_requests",
                                    "OTLP export requests, by HTTP status code (\"error\" when "
                                    "no response came: connection error or timeout).",
                                    {"code"});
      f.ok()) {
    requests_ = *f;
  }
  if (auto f = registry->AddGauge("llmscope_otlp_export_queue_spans",
                                  "Spans waiting in the OTLP export queue.", {});
      f.ok()) {
    queue_gauge_ = &(*f)->WithLabels({});
  }
}

Exporter::~Exporter() { Stop(); }

core::Status Exporter::Start() {
  if (started_) return core::FailedPrecondition("otlp exporter already started");
  if (options_.max_queue_spans == 0 || options_.max_batch_spans == 0) {
    return core::InvalidArgument("otlp exporter: max_queue_spans and max_batch_spans must be >= 1");
  }
  auto origin = http::Origin::Parse(options_.endpoint);
  if (!origin.ok())
    return core::InvalidArgument("otlp export endpoint: " + origin.status().message());
  origin_ = std::move(*origin);
  target_ = origin_.base_path + "/v1/traces";
  http::BlockingClientOptions co;
  co.max_idle_loops = 1;  // one sender thread
  auto client = http::BlockingClient::Create(co);
  if (!client.ok()) return client.status();
  client_ = std::move(*client);
  started_ = true;
  sender_ = std::thread([this] { Run(); });
  return core::Status::Ok();
}

void Exporter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    stop_deadline_ = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  // Never started, or the sender left spans behind at the deadline: those are lost.
  std::deque<core::Span> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
    done_ += left.size();
  }
  cv_.notify_all();
  if (!left.empty()) {
    Count("failed", static_cast<int64_t>(left.size()));
    log_.Warn("otlp export: spans still queued at shutdown were not sent",
              {{"spans", std::to_string(left.size())}, {"endpoint", options_.endpoint}});
  }
  if (queue_gauge_ != nullptr) queue_gauge_->Set(0);
}

bool Exporter::Enqueue(std::vector<core::Span> spans) {
  if (spans.empty()) return true;
  const size_t n = spans.size();
  size_t depth = 0;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() + n > options_.max_queue_spans) {
      depth = 0;
    } else {
      for (auto& s : spans) queue_.push_back(std::move(s));
      accepted_ += n;
      depth = queue_.size();
    }
  }
  if (depth == 0) {
    Count("dropped_queue_full", static_cast<int64_t>(n));
    return false;
  }
  if (queue_gauge_ != nullptr) queue_gauge_->Set(static_cast<double>(depth));
  if (depth >= options_.max_batch_spans) cv_.notify_all();
  return true;
}

bool Exporter::Flush(core::Nanos timeout) {
  std::unique_lock lock(mu_);
  const uint64_t target = accepted_;
  ++flushes_;
  cv_.notify_all();
  const bool done = cv_.wait_for(lock, timeout, [&] { return done_ >= target; });
  --flushes_;
  return done;
}

size_t Exporter::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void Exporter::Count(const char* outcome, int64_t n) {
  if (spans_ != nullptr && n > 0) spans_->WithLabels({outcome}).Inc(static_cast<double>(n));
}

void Exporter::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    if (queue_.empty()) {
      if (stopping_) return;
      cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
      continue;
    }
    if (stopping_ && std::chrono::steady_clock::now() >= stop_deadline_) return;
    if (queue_.size() < options_.max_batch_spans && !stopping_ && flushes_ == 0) {
      // Wait for a full batch, a flush or stop, at most batch_delay.
      cv_.wait_for(lock, options_.batch_delay, [&] {
        return queue_.size() >= options_.max_batch_spans || stopping_ || flushes_ > 0;
      });
    }
    const size_t n = std::min(queue_.size(), options_.max_batch_spans);
    std::vector<core::Span> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    const size_t depth = queue_.size();
    lock.unlock();
    if (queue_gauge_ != nullptr) queue_gauge_->Set(static_cast<double>(depth));
    const int64_t failed = SendBatch(batch);
    Count("sent", static_cast<int64_t>(n) - failed);
    Count("failed", failed);
    lock.lock();
    done_ += n;
    cv_.notify_all();  // Flush waiters
  }
}

int64_t Exporter::SendBatch(const std::vector<core::Span>& batch) {
  std::string body = EncodeTraces(batch);
  if (options_.gzip) body = Gzip(body);
  core::Nanos backoff = options_.initial_backoff;
  Attempt a;
  for (int attempt = 0;; ++attempt) {
    core::Nanos timeout = options_.timeout;
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        const auto left = stop_deadline_ - std::chrono::steady_clock::now();
        if (left <= core::Nanos(0)) break;
        timeout = std::min<core::Nanos>(timeout, left);
      }
    }
    a = Post(body, timeout);
    if (a.ok) return std::min<int64_t>(a.rejected, static_cast<int64_t>(batch.size()));
    if (!a.retryable || attempt >= options_.max_retries) break;
    core::Nanos wait;
    if (a.retry_after > core::Nanos(0)) {
      wait = std::min(a.retry_after, options_.max_backoff);
    } else {
      // Jitter spreads the retries of many senders after a shared outage.
      std::uniform_int_distribution<int64_t> jitter(backoff.count() / 2, backoff.count());
      wait = core::Nanos(jitter(rng_));
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    Wait(wait);
  }
  log_.Warn("otlp export: a batch of spans was not delivered",
            {{"spans", std::to_string(batch.size())},
             {"endpoint", options_.endpoint},
             {"error", a.error.empty() ? "shutdown deadline passed" : a.error}});
  return static_cast<int64_t>(batch.size());
}

Exporter::Attempt Exporter::Post(const std::string& body, core::Nanos timeout) {
  http::ClientRequest req;
  req.method = "POST";
  req.target = target_;
  req.headers = {{"Content-Type", "application/x-protobuf"}, {"User-Agent", options_.user_agent}};
  if (options_.gzip) req.headers.emplace_back("Content-Encoding", "gzip");
  for (const auto& h : options_.headers) req.headers.push_back(h);
  req.body = body;
  auto resp = client_->Fetch(origin_, std::move(req), timeout);
  Attempt a;
  if (!resp.ok()) {
    if (requests_ != nullptr) requests_->WithLabels({"error"}).Inc();
    a.retryable = resp.status().code() == core::StatusCode::kUnavailable ||
                  resp.status().code() == core::StatusCode::kDeadlineExceeded;
    a.error = resp.status().ToString();
    return a;
  }
  if (requests_ != nullptr) requests_->WithLabels({std::to_string(resp->status)}).Inc();
  if (resp->status >= 200 && resp->status < 300) {
    a.ok = true;
    internal::pb_collector_trace::ExportTraceServiceResponse r;
    if (!resp->body.empty() && r.ParseFromString(resp->body) && r.has_partial_success()) {
      a.rejected = r.partial_success().rejected_spans();
      if (a.rejected > 0) {
        log_.Warn("otlp export: the receiver rejected spans",
                  {{"rejected", std::to_string(a.rejected)},
                   {"message", r.partial_success().error_message()}});
      }
    }
    return a;
  }
  a.retryable = RetryableStatus(resp->status);
  a.retry_after = RetryAfter(*resp);
  a.error = "HTTP " + std::to_string(resp->status) + ": " + resp->body.substr(0, 256);
  return a;
}

void Exporter::Wait(core::Nanos d) {
  if (options_.sleep) {
    options_.sleep(d);
    return;
  }
  std::unique_lock lock(mu_);
  const auto wake = std::chrono::steady_clock::now() + d;
  // Woken by Stop: then wait on only until the shutdown deadline, if that comes first.
  while (true) {
    const auto until = stopping_ ? std::min(wake, stop_deadline_) : wake;
    if (std::chrono::steady_clock::now() >= until) return;
    const bool was_stopping = stopping_;
    cv_.wait_until(lock, until, [&] { return stopping_ != was_stopping; });
  }
}

}  // namespace llmscope::otlp
