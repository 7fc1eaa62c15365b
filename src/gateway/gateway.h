#pragma once

#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/record_sink.h"
#include "core/status.h"
#include "gateway/handover.h"
#include "gateway/router.h"
#include "http/client.h"
#include "http/server.h"
#include "metrics/registry.h"

namespace llmscope::gateway {

struct GatewayOptions {
  int workers = 1;                      // must equal the http::Server's thread count
  bool capture_content = false;         // keep request bodies and response text in records
  size_t max_captured_bytes = 1 << 20;  // per call, when capturing
  bool overhead_header = true;          // add x-llmscope-overhead-us to responses
};

// The OpenAI- and Anthropic-compatible proxy. For each call it forwards the request to the
// routed upstream, passes the response through as it arrives (SSE event by event), measures
// it, and hands one core::LlmCall to the RecordSink. The request path never waits on the
// sink: Submit drops and counts when the pipeline is full.
// Thread-safety: Handle() runs on the server's worker threads; all per-thread state is
// indexed by http::Request::worker(), so workers share nothing mutable but atomics.
class Gateway {
 public:
  static core::Result<std::unique_ptr<Gateway>> Create(GatewayOptions options, Router router,
                                                       core::RecordSink& sink,
                                                       metrics::Registry& registry,
                                                       const core::Clock& clock, core::Logger& log);
  ~Gateway();

  // Serves POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses,
  // /v1/messages and GET /v1/models. Returns false (without responding) for other paths.
  bool Handles(std::string_view method, std::string_view path) const;
  http::Task<void> Handle(http::Request& req, http::ResponseWriter& w);

  // Waits until every call whose response was (being) handed to its client before this call
  // has been submitted to the sink; see HandoverTracker. A flush calls it first, so that a
  // client that got its response and then asks for a flush finds its call. False when that
  // did not happen within `timeout` (real time).
  bool WaitForHandovers(core::Nanos timeout);

  // Closes worker i's upstream connections. Call from that worker's thread (Server's
  // OnWorkerStop hook) before its event loop goes away.
  void ShutdownWorker(int worker);

  const Router& router() const { return router_; }

  struct Impl;

 private:
  Gateway(GatewayOptions options, Router router, core::RecordSink& sink, const core::Clock& clock,
          core::Logger& log);

  // One proxied call's state and stages (gateway.cc).
  struct CallState;
  http::Task<void> ListModels(http::ResponseWriter& w);
  http::Task<void> Proxy(http::Request& req, http::ResponseWriter& w);

  GatewayOptions options_;
  Router router_;
  core::RecordSink& sink_;
  const core::Clock& clock_;
  core::Logger& log_;
  std::unique_ptr<Impl> impl_;
};

// Parses a W3C traceparent header ("00-<32 hex>-<16 hex>-<2 hex>"). False when invalid.
bool ParseTraceparent(std::string_view header, core::TraceId& trace, core::SpanId& parent,
                      uint8_t& flags);

}  // namespace llmscope::gateway
