#include "simulator/sim_server.h"

#include <algorithm>
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmscope::simulator {
namespace {

namespace json = boost::json;
using core::Endpoint;

// A hanging request checks this often whether its client has left. Polling, because the
// http module's only wait is SleepFor; the cost is one timer per hanging request.
constexpr core::Nanos kHangPoll = std::chrono::milliseconds(50);

struct Route {
  std::string_view path;
  std::string_view method;
  Endpoint endpoint;
};

constexpr Route kRoutes[] = {
    {"/v1/chat/completions", "POST", Endpoint::kChatCompletions},
    {"/v1/completions", "POST", Endpoint::kCompletions},
    {"/v1/embeddings", "POST", Endpoint::kEmbeddings},
    {"/v1/responses", "POST", Endpoint::kResponses},
    {"/v1/messages", "POST", Endpoint::kMessages},
    {"/v1/models", "GET", Endpoint::kModels},
};

const Route* FindRoute(std::string_view path) {
  for (const Route& r : kRoutes) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

std::string OpenAiError(std::string_view message, std::string_view type) {
  return json::serialize(json::object{
      {"error",
       json::object{{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}});
}

std::string AnthropicError(std::string_view message, std::string_view type) {
  return json::serialize(json::object{
      {"type", "error"}, {"error", json::object{{"type", type}, {"message", message}}}});
}

// A response sent at once, in one piece: the server's own answers (404, 405, /healthz).
SimResponse Immediate(int status, std::string content_type, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers = {}) {
  SimResponse r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.headers = std::move(headers);
  r.frames.push_back(Frame{core::Nanos(0), std::move(body)});
  return r;
}

// The steady clock that http::Request::received_at reads, so that waits line up with it.
core::MonoTime SteadyNow() {
  return std::chrono::time_point_cast<core::Nanos>(std::chrono::steady_clock::now());
}

// Sleeps until `deadline`; returns at once when it has passed. Every wait is computed from
// the request's arrival, so lateness in one frame never shifts the later ones.
http::Task<void> WaitUntil(core::MonoTime deadline) {
  core::MonoTime now = SteadyNow();
  if (deadline > now) co_await http::SleepFor(deadline - now);
}

// Decrements the in-flight gauge however the handler ends, including when the server's
// Stop() destroys the coroutine mid-play.
class InFlightGuard {
 public:
  explicit InFlightGuard(std::atomic<uint64_t>& n) : n_(n) { n_.fetch_add(1); }
  ~InFlightGuard() { n_.fetch_sub(1); }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

 private:
  std::atomic<uint64_t>& n_;
};

// Every problem with `options`, one per line (InvalidArgument), or Ok.
core::Status ValidateServerOptions(const SimServerOptions& options) {
  std::string problems;
  if (core::Status st = ValidateOptions(options.sim); !st.ok()) problems = st.message();
  if (options.hang_timeout <= core::Nanos(0)) {
    if (!problems.empty()) problems += '\n';
    problems += "hang_timeout must be positive";
  }
  if (problems.empty()) return core::Status::Ok();
  return core::InvalidArgument(std::move(problems));
}

}  // namespace

core::Result<std::unique_ptr<SimServer>> SimServer::Create(SimServerOptions options) {
  if (core::Status st = ValidateServerOptions(options); !st.ok()) return st;
  auto clock = std::make_unique<core::SystemClock>();
  const core::Clock& ref = *clock;
  return std::unique_ptr<SimServer>(new SimServer(std::move(options), ref, std::move(clock)));
}

core::Result<std::unique_ptr<SimServer>> SimServer::Create(SimServerOptions options,
                                                           const core::Clock& clock) {
  if (core::Status st = ValidateServerOptions(options); !st.ok()) return st;
  return std::unique_ptr<SimServer>(new SimServer(std::move(options), clock, nullptr));
}

SimServer::SimServer(SimServerOptions options, const core::Clock& clock,
                     std::unique_ptr<core::Clock> owned_clock)
    : options_(std::move(options)), owned_clock_(std::move(owned_clock)), clock_(clock) {
  server_ = std::make_unique<http::Server>(options_.http, handler());
}

SimServer::~SimServer() { Stop(); }

core::Status SimServer::Start() { return server_->Start(); }

void SimServer::Stop() { server_->Stop(); }

uint16_t SimServer::port() const { return server_->port(); }

http::Handler SimServer::handler() {
  return [this](http::Request& req, http::ResponseWriter& w) { return Handle(req, w); };
}

http::Task<void> SimServer::Handle(http::Request& req, http::ResponseWriter& w) {
  bool simulated = false;
  const SimResponse response = Respond(req, simulated);
  if (!simulated) {
    co_await Play(response, req.received_at(), w);
    co_return;
  }
  InFlightGuard in_flight(requests_in_flight_);
  co_await Play(response, req.received_at(), w);
}

SimResponse SimServer::Respond(const http::Request& req, bool& simulated) {
  const std::string_view path = req.path();
  const std::string_view method = req.method();
  if (path == "/healthz") {
    if (method == "GET") return Immediate(200, "text/plain", "ok");
    return Immediate(405, "application/json",
                     OpenAiError("Method " + std::string(method) + " not allowed on /healthz",
                                 "invalid_request_error"),
                     {{"Allow", "GET"}});
  }
  const Route* route = FindRoute(path);
  if (route == nullptr) {
    return Immediate(
        404, "application/json",
        OpenAiError("Invalid URL (" + std::string(method) + " " + std::string(path) + ")",
                    "invalid_request_error"));
  }
  if (method != route->method) {
    std::string message = "Method " + std::string(method) + " not allowed on " + std::string(path) +
                          "; use " + std::string(route->method);
    return Immediate(405, "application/json",
                     route->endpoint == Endpoint::kMessages
                         ? AnthropicError(message, "invalid_request_error")
                         : OpenAiError(message, "invalid_request_error"),
                     {{"Allow", std::string(route->method)}});
  }

  simulated = true;
  requests_served_.fetch_add(1, std::memory_order_relaxed);
  const Endpoint endpoint = route->endpoint;
  // x-sim-seed asks for a reproducible answer: request 0 and the fixed `created`, so the
  // bytes depend only on the body and headers, not on how many requests came before.
  const bool seeded = req.header("x-sim-seed").has_value();
  const uint64_t seq = seeded ? 0 : next_seq_.fetch_add(1, std::memory_order_relaxed);
  core::Result<SimOptions> opts =
      ApplyOverrides(options_.sim, [&req](std::string_view name) { return req.header(name); });
  if (!opts.ok()) return BadRequestResponse(endpoint, opts.status().message(), options_.sim, seq);
  if (!seeded) opts->created_unix_seconds = clock_.UnixNanos() / 1'000'000'000;
  core::Result<SimResponse> sim = Simulate(endpoint, req.body(), *opts, seq);
  if (sim.ok()) return std::move(sim).value();
  if (sim.status().code() == core::StatusCode::kInvalidArgument) {
    return BadRequestResponse(endpoint, sim.status().message(), *opts, seq);
  }
  // Options that pass ApplyOverrides are valid, so this is an allocation failure or a bug:
  // answer 500 at once rather than simulate anything.
  return Immediate(500, "application/json", OpenAiError(sim.status().ToString(), "server_error"));
}

http::Task<void> SimServer::Play(const SimResponse& r, core::MonoTime t0, http::ResponseWriter& w) {
  if (r.hang) {
    // Send nothing; hold the connection until the client gives up (or hang_timeout), then
    // close it without a response.
    w.WatchClientGone([] {});
    const core::MonoTime deadline = t0 + options_.hang_timeout;
    while (!w.client_gone()) {
      const core::MonoTime now = SteadyNow();
      if (now >= deadline) break;
      co_await http::SleepFor(std::min(kHangPoll, deadline - now));
    }
    w.Abort();
    co_return;
  }

  http::HeaderList headers;
  headers.reserve(r.headers.size() + 1);
  if (!r.content_type.empty()) headers.emplace_back("Content-Type", r.content_type);
  for (const auto& h : r.headers) headers.push_back(h);

  // A truncated body must be chunked so the client can tell it ended early; SSE is chunked
  // so each event leaves at its time. Everything else is one Content-Length body.
  const bool chunked = r.close_without_terminator || r.content_type == "text/event-stream";
  if (!chunked) {
    core::Nanos at = r.headers_at;
    std::string body;
    for (const Frame& f : r.frames) {
      at = std::max(at, f.at);
      body += f.bytes;
    }
    co_await WaitUntil(t0 + at);
    co_await w.Send(r.status, headers, body);
    co_return;
  }

  co_await WaitUntil(t0 + r.headers_at);
  if (!co_await w.StartStream(r.status, headers)) co_return;
  for (const Frame& f : r.frames) {
    co_await WaitUntil(t0 + f.at);
    if (!co_await w.WriteChunk(f.bytes)) co_return;  // the client is gone
  }
  if (r.close_without_terminator) {
    w.Abort();
    co_return;
  }
  co_await w.FinishStream();
}

}  // namespace llmscope::simulator
