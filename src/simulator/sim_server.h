#pragma once

// The simulator's serving adapter: an HTTP server that answers like OpenAI and Anthropic by
// playing the schedules that Simulate() computes (sim.h), in real time, over a socket.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "core/clock.h"
#include "core/status.h"
#include "http/server.h"
#include "simulator/sim.h"

namespace llmscope::simulator {

// Thread-safety: a value type. Configuration of a SimServer, validated by SimServer::Create.
struct SimServerOptions {
  // Where and how to listen. Port 0 binds any free port (SimServer::port() tells which).
  http::ServerOptions http;
  // The simulator's defaults; each request may override them with x-sim-* headers.
  SimOptions sim;
  // A hanging request (x-sim-error: timeout) holds its connection until the client leaves
  // or this much time has passed since its arrival, then closes it without a response.
  // REQUIRES: > 0.
  core::Nanos hang_timeout = std::chrono::minutes(10);
};

// An HTTP server answering as an OpenAI- and Anthropic-compatible provider:
//   POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses, /v1/messages
//   GET  /v1/models, and GET /healthz ("ok").
// An unknown path gets 404 and a known path with the wrong method 405, both with an error
// body in the OpenAI shape (405 on /v1/messages: Anthropic's). A bad x-sim-* header or a bad
// request body gets a 400 in the endpoint's dialect naming the problem.
//
// Each request is simulated with request_seq taken from a counter of the requests served,
// and `created` from the clock's wall time, except when it carries x-sim-seed: then
// request_seq is 0 and `created` is SimOptions::created_unix_seconds, so that the response
// bytes are a pure function of (body, headers) and equal Simulate(endpoint, body,
// ApplyOverrides(options.sim, headers), 0). Timing is relative to the request's arrival
// (http::Request::received_at); response headers carry only what a provider would send.
//
// Thread-safety: Create, Start and Stop from one controlling thread; port() after Start and
// the counters from any thread. The handler runs on every server thread at once: it reads
// only immutable options and atomics.
class SimServer {
 public:
  // Fails with InvalidArgument listing every problem with `options` (ValidateOptions). The
  // first form reads the system clock; the second borrows `clock`, which must outlive the
  // server. The clock gives only the wall time written as `created`: playing a schedule
  // uses the steady clock that http::Request::received_at and http::SleepFor use.
  static core::Result<std::unique_ptr<SimServer>> Create(SimServerOptions options);
  static core::Result<std::unique_ptr<SimServer>> Create(SimServerOptions options,
                                                         const core::Clock& clock);
  ~SimServer();  // Stops.
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  // Binds (port 0 allowed) and starts the server threads. Fails naming the address.
  core::Status Start();
  // Stops the server; requests in progress are dropped. Idempotent.
  void Stop();
  // The bound port. REQUIRES: after a successful Start().
  uint16_t port() const;

  // Requests received on the simulated endpoints (/v1/...), counted on arrival whatever
  // their outcome (simulated errors and 400s included; 404, 405 and /healthz excluded).
  uint64_t requests_served() const { return requests_served_.load(std::memory_order_relaxed); }
  // Simulated requests whose response is still being played (or hanging).
  uint64_t requests_in_flight() const {
    return requests_in_flight_.load(std::memory_order_relaxed);
  }

  // The request handler, so that another http::Server can mount the simulator. It borrows
  // this SimServer, which must outlive every server using it.
  http::Handler handler();

 private:
  SimServer(SimServerOptions options, const core::Clock& clock,
            std::unique_ptr<core::Clock> owned_clock);
  http::Task<void> Handle(http::Request& req, http::ResponseWriter& w);
  // What to answer `req`; sets `simulated` when it reached a simulated endpoint.
  SimResponse Respond(const http::Request& req, bool& simulated);
  http::Task<void> Play(const SimResponse& r, core::MonoTime t0, http::ResponseWriter& w);

  const SimServerOptions options_;
  std::unique_ptr<core::Clock> owned_clock_;  // the system clock when none was given
  const core::Clock& clock_;
  std::atomic<uint64_t> next_seq_{0};
  std::atomic<uint64_t> requests_served_{0};
  std::atomic<uint64_t> requests_in_flight_{0};
  std::unique_ptr<http::Server> server_;  // last: destroyed (stopped) first
};

}  // namespace llmscope::simulator
