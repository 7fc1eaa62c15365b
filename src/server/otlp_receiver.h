#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/log.h"
#include "core/record_sink.h"
#include "core/span.h"
#include "http/offload.h"
#include "http/server.h"
#include "metrics/registry.h"
#include "otlp/decode.h"
#include "otlp/genai.h"
#include "otlp/grpc_server.h"
#include "pipeline/store_writer.h"
#include "server/otlp_genai_metrics.h"

namespace llmscope::server {

// The calls llmscope's gateway recorded, by trace, so that an application's own span of a
// call that went through the gateway is not counted a second time.
//
// The rule (docs/ARCHITECTURE.md, "One trace"): an LLM span received over OTLP is the
// application's view of a gateway call, and is stored but not turned into a call, when the
// gateway recorded a call in the same trace for the same requested model whose time lies
// within the span's (with `slack` on either side for clocks of different hosts). The
// gateway continues the application's traceparent, so both sides share the trace id; the
// gateway's call may be the span's child or a grandchild (an HTTP client span between).
//
// A decorator of the gateway's record sink: a call is indexed as it is submitted (before
// the gateway ends its hand-over, so a receiver that first waits for hand-overs finds it),
// then passed on. Only calls that continued a client's traceparent are indexed: without
// one, no application span can be their parent.
//
// Bounded: the most recent `capacity` calls are kept (the application's span arrives within
// seconds of its call; an older one is missed and counted twice, which is the safe side).
// Thread-safety: Submit (event loops) and Covers (OTLP decode threads) may run concurrently.
class GatewayCallIndex final : public core::RecordSink {
 public:
  explicit GatewayCallIndex(core::RecordSink& next, size_t capacity = 100'000,
                            core::Nanos slack = std::chrono::seconds(1))
      : next_(next), capacity_(capacity), slack_ns_(slack.count()) {}

  bool Submit(core::LlmCall&& call) override;

  // Whether `call` (mapped from a span) is the application's view of an indexed call, and
  // if so, claims that call for it. Each gateway call covers one span: the span it
  // continued (its traceparent's span id) when that span is an LLM span, else the first LLM
  // span in the same trace with the same requested model whose time contains it (within the
  // slack). The span that claimed a call is covered again when it is sent again (an export
  // retry); any other span is then counted as a call of its own.
  bool Covers(const core::LlmCall& call) const;

  size_t size() const;

 private:
  struct Entry {
    int64_t start_ns = 0;
    int64_t end_ns = 0;
    std::string model;
    core::SpanId parent{};              // the client span the gateway call continued
    mutable core::SpanId claimed_by{};  // the span it was matched to; zero: not yet
  };
  struct TraceHash {
    size_t operator()(const core::TraceId& id) const;
  };
  core::RecordSink& next_;
  const size_t capacity_;
  const int64_t slack_ns_;
  mutable std::mutex mu_;
  std::unordered_map<core::TraceId, std::vector<Entry>, TraceHash> by_trace_;  // GUARDED_BY(mu_)
  std::deque<core::TraceId> order_;  // one per entry, oldest first; GUARDED_BY(mu_)
};

struct OtlpReceiverOptions {
  otlp::DecodeLimits limits;     // now_unix_nanos is set per request
  bool capture_content = false;  // keep prompts and completions of GenAI spans
  int threads = 1;               // decode threads (decoding never runs on an event loop)
  size_t max_queued = 64;        // requests waiting for a decode thread; more get 503
  // Bytes of request bodies waiting for or in decoding; a request that would go over it gets
  // 503 (one request alone is always taken). Bounds the receiver's memory under a burst.
  size_t max_queued_bytes = 64u << 20;
  // Records the store writer may hold in memory before the receiver answers 503 instead of
  // accepting more spans (0: never). Keeps a burst from being accepted and then dropped.
  size_t max_pending_spans = 80'000;
  // Called before LLM spans are checked against the GatewayCallIndex: waits until every
  // gateway call whose response a client already holds is indexed (the gateway's
  // WaitForHandovers). Empty: no wait.
  std::function<void()> wait_for_gateway;
  // With capture on, rewrites content values in place (redaction) and returns how many it
  // replaced; applied to every content attribute of stored spans. Empty: kept as received.
  std::function<int(std::string&)> redact;
  // Where GenAI client metrics received over OTLP go (exposed through /metrics); null: they
  // are decoded and counted only.
  OtlpGenAiMetrics* genai_metrics = nullptr;
  // Also given every request's spans as they are stored (content stripped unless capture
  // is on), on the decode thread: the export sampler. Must not block. Empty: none.
  std::function<void(const std::vector<core::Span>&)> on_spans;
};

// The OTLP receiver: OTLP/HTTP (POST /v1/traces, /v1/metrics, /v1/logs in protobuf
// (application/x-protobuf) or OTLP/JSON (application/json), gzip or identity) and, through
// ProcessGrpc, OTLP/gRPC; both transports decode and accept alike.
//
// Traces: every span is stored (content attributes stripped unless capture is on); every
// span that is an LLM call (otlp::MapGenAiSpan) and is neither a span of llmscope's own
// gateway nor the application's view of a gateway call (GatewayCallIndex) becomes a
// core::LlmCall in the pipeline, so metrics, cost, storage and alerts treat it like a
// gateway call. GenAI spans feed the conformance report (/api/v1/conformance).
// Metrics and logs: decoded, validated and counted (partial success as the spec says);
// they are not stored.
//
// Responses follow the OTLP/HTTP spec: 200 with the Export*ServiceResponse (partial success
// when items were rejected), 400 for a body that cannot be decoded, 413 over a limit, 415
// for a content type or encoding it does not speak, 405 for a method other than POST, 503
// (retryable, with Retry-After) when the decode threads are saturated, each with a
// google.rpc.Status body naming the problem.
//
// Thread-safety: Handle may be called from any event loop; Shutdown once, from a worker's
// stop hook, before the event loops go away.
class OtlpReceiver {
 public:
  OtlpReceiver(OtlpReceiverOptions options, core::RecordSink& calls, pipeline::StoreWriter* spans,
               const GatewayCallIndex* gateway_calls, metrics::Registry& registry,
               const core::Clock& clock, core::Logger& log);

  static bool Handles(std::string_view path) {
    return path == "/v1/traces" || path == "/v1/metrics" || path == "/v1/logs";
  }
  http::Task<void> Handle(http::Request& req, http::ResponseWriter& w);
  void Shutdown() { pool_.Close(); }

  // OTLP/gRPC (otlp::GrpcServer's handler): decodes and accepts one serialized
  // Export*ServiceRequest of `signal` (gRPC has already undone gzip) exactly as Handle does
  // an OTLP/HTTP protobuf body, and answers as the OTLP/gRPC spec says: OK with the
  // Export*ServiceResponse (partial success when items were rejected), INVALID_ARGUMENT for
  // bytes that cannot be decoded, RESOURCE_EXHAUSTED over a limit (not retryable). Counted
  // in llmscope_otlp_requests_total{transport="grpc"}. Blocks (decoding, waiting for the
  // gateway's hand-overs): run it on a thread of its own, never an event loop.
  otlp::GrpcReply ProcessGrpc(otlp::Signal signal, std::string_view bytes);
  // Counts a gRPC export call answered without reaching ProcessGrpc (UNAVAILABLE when the
  // gRPC server's handler threads are saturated).
  void CountGrpcRequest(otlp::Signal signal, int grpc_code);

  // GET /api/v1/conformance: per service, the GenAI dialects and versions its spans follow,
  // deprecated and misused attributes, missing required ones.
  std::string ConformanceJson() const;

  // What one decoded request did; public for tests of the receiving logic.
  struct TraceOutcome {
    int64_t spans_stored = 0;
    int64_t calls_mapped = 0;
    int64_t gateway_duplicates = 0;
  };
  // Maps, strips and hands on the spans of one decoded request (what Handle does after
  // decoding).
  TraceOutcome Accept(std::vector<core::Span>&& spans);

 private:
  struct Response {
    int status = 200;
    std::string body;
    bool retry_after = false;
  };
  Response Process(std::string_view path, std::string_view body, otlp::Encoding encoding,
                   bool gzip);
  // What both transports share: decodes `body`, counts, accepts; the Export*ServiceResponse
  // body, or the decoder's error (INVALID_ARGUMENT or RESOURCE_EXHAUSTED).
  core::Result<std::string> Export(otlp::Signal signal, std::string_view body,
                                   otlp::Encoding encoding);
  void CountStats(std::string_view signal, const otlp::DecodeStats& stats);
  // Why a request of `body_bytes` cannot be taken now, or null; when null, the bytes are
  // counted in queued_bytes_ (the caller subtracts them when done).
  const char* Busy(size_t body_bytes);

  const OtlpReceiverOptions options_;
  core::RecordSink& calls_;
  pipeline::StoreWriter* spans_;
  const GatewayCallIndex* gateway_calls_;
  const core::Clock& clock_;
  core::Logger& log_;
  otlp::ConformanceReport conformance_;
  http::WorkPool pool_;
  std::atomic<int64_t> queued_bytes_{0};

  metrics::CounterFamily* requests_ = nullptr;  // {transport, signal, code}
  metrics::CounterFamily* items_ = nullptr;     // {signal, outcome}
  metrics::CounterFamily* trimmed_ = nullptr;   // {what}
  metrics::CounterFamily* llm_spans_ = nullptr;
  metrics::CounterFamily* genai_points_ = nullptr;  // {outcome}
};

}  // namespace llmscope::server
