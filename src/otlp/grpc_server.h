#pragma once

// OTLP/gRPC transport: a gRPC server for the three OTLP export services
//   /opentelemetry.proto.collector.trace.v1.TraceService/Export
//   /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
//   /opentelemetry.proto.collector.logs.v1.LogsService/Export
// that hands each request's serialized Export*ServiceRequest to a Handler and sends back
// what the handler answers. It knows nothing of decoding: the handler (the server module's
// OTLP receiver) runs the same decoders as OTLP/HTTP. No gRPC type appears in this header.
//
// Threading: gRPC's own threads read requests and never run the handler. Each request whose
// message has arrived is queued for one of `threads` handler threads owned by the server;
// the queue holds at most `max_queued` requests, and a request that finds it full is
// answered UNAVAILABLE at once (retryable for OTLP exporters). A slow handler therefore
// delays only requests behind it in the queue, never gRPC's transport. Why gRPC's generic
// API and not generated stubs: docs/decisions/0009-grpc-for-otlp.md.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "otlp/decode.h"

namespace llmscope::otlp {

// gRPC status codes the handler and the server use (the numbers of grpc::StatusCode).
inline constexpr int kGrpcOk = 0;
inline constexpr int kGrpcInvalidArgument = 3;
inline constexpr int kGrpcResourceExhausted = 8;
inline constexpr int kGrpcUnimplemented = 12;
inline constexpr int kGrpcInternal = 13;
inline constexpr int kGrpcUnavailable = 14;

// The name of a gRPC status code ("OK", "INVALID_ARGUMENT", ...), for logs and metric
// labels; "UNKNOWN" for a code outside 0..16.
std::string_view GrpcCodeName(int code);

// The answer to one export call. grpc_code 0 (OK) sends response_bytes (a serialized
// Export*ServiceResponse, possibly with partial_success) as the response message; any other
// code ends the call with that status and `message`, and response_bytes is ignored.
struct GrpcReply {
  int grpc_code = kGrpcOk;
  std::string message;
  std::string response_bytes;
};

struct GrpcServerOptions {
  std::string host = "127.0.0.1";  // an IPv6 literal without brackets is fine ("::1")
  uint16_t port = 0;               // 0: a free port, reported by GrpcServer::port()
  // Largest request message accepted, after gRPC's message decompression; a larger one is
  // refused by gRPC with RESOURCE_EXHAUSTED before the handler sees it.
  size_t max_receive_bytes = 16u << 20;
  int threads = 1;         // handler threads; REQUIRES >= 1
  size_t max_queued = 64;  // requests waiting for a handler thread; more get UNAVAILABLE
  // Optional: told of each export call answered without reaching the handler because the
  // handler threads were saturated (grpc_code UNAVAILABLE), for a counter. Runs on a gRPC
  // thread: must be quick and must not block.
  std::function<void(Signal signal, int grpc_code)> on_refused;
};

// Thread-safety: port() may be called from any thread; Stop() once (the destructor calls
// it), not from a handler.
class GrpcServer {
 public:
  // Runs decode and accept for one request: `request_bytes` is the serialized
  // Export*ServiceRequest of `signal` exactly as received (gRPC has already undone gzip).
  // Called on a handler thread, several at once when threads > 1. Must not throw.
  using Handler = std::function<GrpcReply(Signal signal, std::string_view request_bytes)>;

  // Binds host:port and starts serving. Errors: UNAVAILABLE when the address cannot be
  // bound, INVALID_ARGUMENT for bad options.
  static core::Result<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                         Handler handler);

  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // The bound port (the one chosen when options.port was 0).
  uint16_t port() const;

  // Stops accepting calls, lets calls in progress finish for up to `grace`, cancels the
  // rest, then runs what is queued (cancelled calls get no answer) and joins the handler
  // threads. After Stop the handler is never called again. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  struct Impl;
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmscope::otlp
