#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/span.h"
#include "core/status.h"
#include "http/blocking_client.h"
#include "http/client.h"
#include "metrics/registry.h"

namespace llmscope::otlp {

struct ExporterOptions {
  // The OTLP/HTTP receiver's base URL, http://host:port[/base] (https works too); spans are
  // POSTed to <endpoint>/v1/traces as protobuf ExportTraceServiceRequests.
  std::string endpoint;
  // Extra request headers (an Authorization or API-key header, a tenant id).
  std::vector<std::pair<std::string, std::string>> headers;
  bool gzip = true;  // Content-Encoding: gzip
  // Spans waiting to be sent. A batch handed to Enqueue that does not fit is dropped whole
  // and counted (outcome="dropped_queue_full"): a trace is not cut in two. REQUIRES: >= 1.
  size_t max_queue_spans = 100'000;
  // Most spans per request. REQUIRES: >= 1.
  size_t max_batch_spans = 512;
  // How long a batch that is not full waits for more spans before it is sent.
  core::Nanos batch_delay = std::chrono::seconds(1);
  // Per attempt: connect, send and read the response.
  core::Nanos timeout = std::chrono::seconds(10);
  // Retries after the first attempt, on a connection error or timeout, 429, 502, 503 and
  // 504 (the statuses OTLP/HTTP calls retryable); never on other statuses (400: the data is
  // wrong and would be wrong again).
  int max_retries = 5;
  // The wait before the first retry; doubled before each next one up to max_backoff, with
  // jitter (each wait is drawn from [wait / 2, wait]). A Retry-After of delta-seconds
  // replaces the wait, capped at max_backoff.
  core::Nanos initial_backoff = std::chrono::milliseconds(500);
  core::Nanos max_backoff = std::chrono::seconds(30);
  // What Stop may spend sending what is queued.
  core::Nanos shutdown_timeout = std::chrono::seconds(5);
  std::string user_agent = "llmscope";
  // Waits between attempts. Empty: a real-time wait that Stop cuts short at its deadline.
  // Tests inject one that records the wait and returns at once.
  std::function<void(core::Nanos)> sleep;
  // Seeds the jitter; 0 draws a seed from std::random_device.
  uint64_t seed = 0;
};

// Thread-safety: Enqueue, Flush and queued() from any thread; Start and Stop from one
// owning thread.
//
// Sends spans to an OTLP/HTTP receiver from one sender thread: a bounded queue that never
// makes the caller wait (the request path and the pipeline call Enqueue), batches of at
// most max_batch_spans, retries with exponential backoff and jitter. Metrics (families
// registered by the first exporter made with a registry; a second one counts nowhere):
//   llmscope_otlp_export_spans_total{outcome="sent|dropped_queue_full|failed"}
//   llmscope_otlp_export_requests_total{code}  (the HTTP status, or "error" when none came)
//   llmscope_otlp_export_queue_spans           (gauge)
// A 200 whose partial_success rejects spans counts those as failed.
class Exporter {
 public:
  // `registry` may be null (no metrics); `log` borrowed.
  Exporter(ExporterOptions options, metrics::Registry* registry, core::Logger& log);
  // Stops (with the shutdown timeout).
  ~Exporter();
  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Starts the sender thread. INVALID_ARGUMENT for a bad endpoint; FAILED_PRECONDITION when
  // started; the client's error when it cannot be made.
  core::Status Start();
  // Sends what is queued, within shutdown_timeout (real time), then joins the sender.
  // Spans still queued, or a batch cut short, at the deadline are counted as failed.
  // Idempotent; later Enqueues are dropped.
  void Stop();

  // Queues `spans` (one trace, or a few, whole). Never blocks on the network. Returns false
  // (and counts them dropped_queue_full) when they do not fit in max_queue_spans, or after
  // Stop.
  bool Enqueue(std::vector<core::Span> spans);
  // Waits until every span queued before the call has been sent or given up on, or
  // `timeout` passed; true when it all went. Asks the sender not to wait for a full batch.
  bool Flush(core::Nanos timeout);
  size_t queued() const;

 private:
  // How one attempt ended.
  struct Attempt {
    bool ok = false;
    bool retryable = false;
    int64_t rejected = 0;        // partial_success.rejected_spans of a 200
    core::Nanos retry_after{0};  // 0: none given
    std::string error;
  };
  void Run();
  // Sends one batch with retries; returns the spans that failed (0 when all went).
  int64_t SendBatch(const std::vector<core::Span>& batch);
  Attempt Post(const std::string& body, core::Nanos timeout);
  // Waits `d`, or less when stopping and the shutdown deadline comes first.
  void Wait(core::Nanos d);
  void Count(const char* outcome, int64_t n);

  const ExporterOptions options_;
  core::Logger& log_;
  http::Origin origin_;
  std::string target_;
  std::unique_ptr<http::BlockingClient> client_;
  std::minstd_rand rng_;  // jitter; the sender thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<core::Span> queue_;                         // GUARDED_BY(mu_)
  uint64_t accepted_ = 0;                                // spans ever queued; GUARDED_BY(mu_)
  uint64_t done_ = 0;                                    // ...sent or given up; GUARDED_BY(mu_)
  int flushes_ = 0;                                      // Flush calls waiting; GUARDED_BY(mu_)
  bool stopping_ = false;                                // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point stop_deadline_;  // GUARDED_BY(mu_)
  std::thread sender_;
  bool started_ = false;
  bool stopped_ = false;

  metrics::CounterFamily* spans_ = nullptr;     // {outcome}
  metrics::CounterFamily* requests_ = nullptr;  // {code}
  metrics::Gauge* queue_gauge_ = nullptr;
};

}  // namespace llmscope::otlp
