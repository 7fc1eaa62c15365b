#include "gateway/gateway.h"

#include <charconv>
#include <cstring>

#include "core/json_string.h"
#include "gateway/sse.h"
#include "gateway/wire.h"

namespace llmscope::gateway {

namespace {

using http::HeaderList;

struct EndpointInfo {
  core::Endpoint endpoint;
  std::string_view upstream_suffix;  // appended to the upstream's base path
};

std::optional<EndpointInfo> EndpointForPath(std::string_view path) {
  if (path == "/v1/chat/completions")
    return EndpointInfo{core::Endpoint::kChatCompletions, "/chat/completions"};
  if (path == "/v1/messages") return EndpointInfo{core::Endpoint::kMessages, "/messages"};
  if (path == "/v1/completions") return EndpointInfo{core::Endpoint::kCompletions, "/completions"};
  if (path == "/v1/embeddings") return EndpointInfo{core::Endpoint::kEmbeddings, "/embeddings"};
  if (path == "/v1/responses") return EndpointInfo{core::Endpoint::kResponses, "/responses"};
  return std::nullopt;
}

int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <size_t N>
bool ParseHex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = HexVal(s[2 * i]), lo = HexVal(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// Request headers that must not be forwarded: hop-by-hop, framing that llmscope
// rewrites, compression (the response must be readable to be measured), and our own.
bool DropRequestHeader(std::string_view name) {
  static constexpr std::string_view kDrop[] = {"host",
                                               "content-length",
                                               "connection",
                                               "keep-alive",
                                               "proxy-connection",
                                               "transfer-encoding",
                                               "te",
                                               "trailer",
                                               "upgrade",
                                               "accept-encoding",
                                               "expect",
                                               "traceparent",
                                               "proxy-authorization"};
  for (auto d : kDrop) {
    if (http::HeaderNameEquals(name, d)) return true;
  }
  return name.size() > 11 && http::HeaderNameEquals(name.substr(0, 11), "x-llmscope-");
}

bool DropResponseHeader(std::string_view name) {
  static constexpr std::string_view kDrop[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive",
      "trailer",        "upgrade",           "date",       "server"};
  for (auto d : kDrop) {
    if (http::HeaderNameEquals(name, d)) return true;
  }
  return false;
}

int64_t Since(const core::Clock& clock, core::MonoTime t0) { return (clock.Now() - t0).count(); }

// Parses "k=v,k2=v2" tag lists; bounded so one header cannot flood a record.
void ParseTags(std::string_view s, std::vector<std::pair<std::string, std::string>>& out) {
  while (!s.empty() && out.size() < 32) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    size_t eq = item.find('=');
    auto trim = [](std::string_view v) {
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      return v;
    };
    if (eq != std::string_view::npos) {
      auto k = trim(item.substr(0, eq)), v = trim(item.substr(eq + 1));
      if (!k.empty() && k.size() <= 64 && v.size() <= 256) out.emplace_back(k, v);
    }
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
}

std::string ErrorBody(Dialect d, int status, std::string_view message, std::string_view code) {
  if (d == Dialect::kAnthropicMessages) {
    std::string_view type = status == 404   ? "not_found_error"
                            : status == 413 ? "request_too_large"
                            : status == 429 ? "rate_limit_error"
                            : status < 500  ? "invalid_request_error"
                            : status == 529 ? "overloaded_error"
                                            : "api_error";
    return AnthropicErrorBody(type, message);
  }
  std::string_view type = status < 500 ? "invalid_request_error" : "server_error";
  return OpenAiErrorBody(message, type, {}, code);
}

}  // namespace

bool ParseTraceparent(std::string_view h, core::TraceId& trace, core::SpanId& parent,
                      uint8_t& flags) {
  // version "-" trace-id "-" parent-id "-" flags; future versions may append fields.
  if (h.size() < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') return false;
  if (h.substr(0, 2) == "ff") return false;
  std::array<uint8_t, 1> v{}, f{};
  if (!ParseHex(h.substr(0, 2), v) || (v[0] == 0 && h.size() != 55)) return false;
  if (!ParseHex(h.substr(3, 32), trace) || !ParseHex(h.substr(36, 16), parent) ||
      !ParseHex(h.substr(53, 2), f)) {
    return false;
  }
  flags = f[0];
  return core::IsValid(trace) && core::IsValid(parent);
}

struct Gateway::Impl {
  struct Worker;
  // Deleters defined where CallState is complete.
  struct StateDelete {
    void operator()(CallState* s) const;
  };
  // Returns a call's state to its worker's pool.
  struct StateReturn {
    Worker* worker;
    void operator()(CallState* s) const;
  };
  struct alignas(64) Worker {
    std::vector<std::unique_ptr<http::Client>> clients;  // one per upstream
    std::mt19937_64 rng;
    uint64_t seq = 0;
    // Call states not in use (see CallState); at most kMaxSpareStates are kept.
    std::vector<std::unique_ptr<CallState, StateDelete>> spare_states;
    std::unique_ptr<CallState, StateReturn> TakeState();
  };
  static constexpr size_t kMaxSpareStates = 256;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<HandoverTracker> handovers;
  metrics::Gauge* active[6] = {};
  std::vector<metrics::Counter*> upstream_conn_errors;  // per upstream
};

Gateway::Gateway(GatewayOptions options, Router router, core::RecordSink& sink,
                 const core::Clock& clock, core::Logger& log)
    : options_(std::move(options)),
      router_(std::move(router)),
      sink_(sink),
      clock_(clock),
      log_(log),
      impl_(std::make_unique<Impl>()) {}

Gateway::~Gateway() = default;

core::Result<std::unique_ptr<Gateway>> Gateway::Create(GatewayOptions options, Router router,
                                                       core::RecordSink& sink,
                                                       metrics::Registry& registry,
                                                       const core::Clock& clock,
                                                       core::Logger& log) {
  if (options.workers <= 0) return core::InvalidArgument("gateway workers must be positive");
  std::unique_ptr<Gateway> g(new Gateway(std::move(options), std::move(router), sink, clock, log));
  std::random_device rd;
  g->impl_->handovers = std::make_unique<HandoverTracker>(g->options_.workers);
  for (int i = 0; i < g->options_.workers; ++i) {
    auto w = std::make_unique<Impl::Worker>();
    w->rng.seed((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(i));
    for (const auto& u : g->router_.upstreams()) {
      auto c = http::Client::Create(u.client);
      if (!c.ok()) {
        return core::InvalidArgument("upstream '" + u.name + "': " + c.status().message());
      }
      w->clients.push_back(std::move(c).value());
    }
    g->impl_->workers.push_back(std::move(w));
  }
  auto active = registry.AddGauge("llm_active_requests",
                                  "LLM calls in progress through the gateway.", {"endpoint"});
  if (!active.ok()) return active.status();
  for (int e = 0; e < 6; ++e) {
    g->impl_->active[e] =
        &(*active)->WithLabels({core::EndpointName(static_cast<core::Endpoint>(e))});
  }
  auto conn_err = registry.AddCounter(
      "llmscope_upstream_connection_errors",
      "Failures to connect to an upstream (DNS, TCP, TLS), by configured upstream.", {"provider"});
  if (!conn_err.ok()) return conn_err.status();
  for (const auto& u : g->router_.upstreams()) {
    g->impl_->upstream_conn_errors.push_back(&(*conn_err)->WithLabels({u.name}));
  }
  for (const auto& u : g->router_.upstreams()) {
    if (!u.api_key_env.empty() && u.api_key.empty()) {
      log.Warn("upstream API key variable is not set; the client's own credentials are passed",
               {{"upstream", u.name}, {"env", u.api_key_env}});
    }
  }
  return g;
}

bool Gateway::WaitForHandovers(core::Nanos timeout) {
  return impl_->handovers->WaitForAll(timeout);
}

void Gateway::ShutdownWorker(int worker) {
  if (worker < 0 || static_cast<size_t>(worker) >= impl_->workers.size()) return;
  for (auto& c : impl_->workers[static_cast<size_t>(worker)]->clients) c->Shutdown();
}

bool Gateway::Handles(std::string_view method, std::string_view path) const {
  if (path == "/v1/models") return method == "GET";
  return EndpointForPath(path).has_value();
}

// The state of one proxied call, shared by its stages. It lives outside the coroutine
// frames so that they stay under asio's per-thread frame recycling limit (about 1 KiB; a
// larger frame takes malloc's slow path on every call), and it is pooled per worker, so a
// call allocates none. The non-coroutine stages return whether the call goes on; when it
// does not, `reply_*` may hold a response llmscope produces itself (bad input, no route,
// upstream failure), sent by SendReply.
struct Gateway::CallState {
  // Everything a call starts from; Reset() restores it, keeping buffers' capacity where the
  // member type allows.
  void Reset(Gateway* gw, http::Request* r, Impl::Worker* wk) {
    core::LlmCall fresh_call;
    call = std::move(fresh_call);
    g = gw;
    req = r;
    worker = wk;
    trace_flags = 1;
    active = nullptr;
    overhead = 0;
    resp_headers.clear();
    handover = {};
    facts.reset();
    match.reset();
    ureq = {};
    injected_usage = false;
    cancel = http::Cancellation{};
    client_gone = false;
    status = 0;
    err = core::ErrorClass::kNone;
    err_msg.clear();
    reply_status = 0;
    reply_headers.clear();
    reply_body.clear();
    // A large body is not kept by an idle pooled state.
    if (body.capacity() > (64 << 10)) std::string().swap(body);
    body.clear();
  }

  bool Prepare();
  void Reject(int status, core::ErrorClass err, std::string message, std::string_view code);
  void Finish(int status, core::ErrorClass err, std::string message);
  void AddOwnHeaders(HeaderList& h);
  void BeginHandover() {
    if (handover.slot < 0) handover = g->impl_->handovers->Begin(req->worker());
  }
  bool SendFailed(const core::Status& st);
  bool BeginResponse(http::Exchange& ex);
  bool WholeBodyRead(const core::Status& rs);
  void FillUsage(const ResponseFacts& rf);
  http::Task<void> SendReply(http::ResponseWriter& w) {
    co_await w.Send(reply_status, reply_headers, reply_body);
  }
  http::Task<void> ForwardWhole(http::Exchange& ex, http::ResponseWriter& w);
  http::Task<void> ForwardStream(http::Exchange& ex, http::ResponseWriter& w);

  Gateway* g = nullptr;
  http::Request* req = nullptr;
  Impl::Worker* worker = nullptr;
  core::MonoTime t0{};
  core::Endpoint endpoint{};
  std::string_view upstream_suffix;
  Dialect dialect{};
  core::LlmCall call;
  uint8_t trace_flags = 1;
  metrics::Gauge* active = nullptr;
  int64_t overhead = 0;
  // When llmscope last resumed its own work after a wait on the upstream: overhead counts
  // only the time since such marks, never the waits themselves.
  core::MonoTime work_since{};
  core::MonoTime t_headers{};
  HeaderList resp_headers;
  // Held from the start of the write that completes the client's response until the record
  // is submitted; a flush waits for it (HandoverTracker).
  HandoverTracker::Ticket handover;
  std::optional<RequestFacts> facts;
  std::optional<Router::Match> match;
  http::ClientRequest ureq;
  bool injected_usage = false;
  http::Cancellation cancel;
  bool client_gone = false;
  int status = 0;  // the upstream's
  core::ErrorClass err = core::ErrorClass::kNone;
  std::string err_msg;
  std::string body;  // a whole upstream body
  int reply_status = 0;
  HeaderList reply_headers;
  std::string reply_body;
};

std::unique_ptr<Gateway::CallState, Gateway::Impl::StateReturn> Gateway::Impl::Worker::TakeState() {
  CallState* s;
  if (spare_states.empty()) {
    s = new CallState();
  } else {
    s = spare_states.back().release();
    spare_states.pop_back();
  }
  return std::unique_ptr<CallState, StateReturn>(s, StateReturn{this});
}

void Gateway::Impl::StateDelete::operator()(CallState* s) const { delete s; }

void Gateway::Impl::StateReturn::operator()(CallState* s) const {
  std::unique_ptr<CallState, StateDelete> owned(s);
  if (worker->spare_states.size() < kMaxSpareStates)
    worker->spare_states.push_back(std::move(owned));
}

http::Task<void> Gateway::Handle(http::Request& req, http::ResponseWriter& w) {
  // Not a coroutine itself: it hands back the stage's coroutine, so a call has one frame
  // less.
  if (req.path() == "/v1/models") return ListModels(w);
  return Proxy(req, w);
}

http::Task<void> Gateway::ListModels(http::ResponseWriter& w) {
  std::string body = "{\"object\":\"list\",\"data\":[";
  bool first = true;
  for (const auto& r : router_.routes()) {
    if (!first) body += ',';
    first = false;
    body += "{\"id\":" + core::JsonString(r.pattern + (r.match == MatchKind::kPrefix ? "*" : "")) +
            ",\"object\":\"model\",\"created\":0,\"owned_by\":" + core::JsonString(r.upstream) +
            "}";
  }
  body += "]}";
  const HeaderList h{{"Content-Type", "application/json"}};
  co_await w.Send(200, h, body);
}

http::Task<void> Gateway::Proxy(http::Request& req, http::ResponseWriter& w) {
  Impl::Worker& worker = *impl_->workers[static_cast<size_t>(req.worker())];
  auto state = worker.TakeState();
  CallState& s = *state;
  s.Reset(this, &req, &worker);
  s.t0 = clock_.Now();
  if (!s.Prepare()) {
    co_await s.SendReply(w);
    co_return;
  }
  w.WatchClientGone([&s] {
    s.client_gone = true;
    s.cancel.Cancel();
  });
  http::Client& client = *worker.clients[s.match->upstream_index];
  s.overhead += Since(clock_, s.t0);
  auto sent = co_await client.Send(s.match->upstream->origin, std::move(s.ureq), &s.cancel);
  s.t_headers = clock_.Now();
  s.work_since = s.t_headers;
  if (!sent.ok()) {
    if (s.SendFailed(sent.status())) co_await s.SendReply(w);
    co_return;
  }
  http::Exchange& ex = **sent;
  if (s.BeginResponse(ex)) {
    co_await s.ForwardStream(ex, w);
  } else {
    co_await s.ForwardWhole(ex, w);
  }
}

bool Gateway::CallState::Prepare() {
  const GatewayOptions& options = g->options_;
  auto ep = EndpointForPath(req->path());  // Handles() accepted the path
  endpoint = ep->endpoint;
  upstream_suffix = ep->upstream_suffix;
  dialect = DialectFor(endpoint);
  if (req->method() != "POST") {
    reply_status = 405;
    reply_headers = {{"Content-Type", "application/json"}, {"Allow", "POST"}};
    reply_body = ErrorBody(dialect, 405, "method not allowed; use POST", {});
    return false;
  }

  call.start_unix_nanos = g->clock_.UnixNanos();
  call.endpoint = endpoint;
  // Trace context: continue the client's trace, or start one. Our span is the call.
  if (auto tp = req->header("traceparent");
      !tp || !ParseTraceparent(*tp, call.trace_id, call.parent_span_id, trace_flags)) {
    trace_flags = 1;
    call.parent_span_id = {};
    do {
      for (size_t i = 0; i < 16; i += 8) {
        uint64_t r = worker->rng();
        std::memcpy(call.trace_id.data() + i, &r, 8);
      }
    } while (!core::IsValid(call.trace_id));
  }
  do {
    uint64_t r = worker->rng();
    std::memcpy(call.span_id.data(), &r, 8);
  } while (!core::IsValid(call.span_id));
  {
    char id[24] = "req_";
    uint64_t r = worker->rng();
    for (int i = 0; i < 16; ++i) id[4 + i] = "0123456789abcdef"[(r >> (i * 4)) & 0xf];
    call.request_id.assign(id, 20);
  }
  if (auto u = req->header("x-llmscope-session")) call.session = std::string(*u);
  if (auto t = req->header("x-llmscope-tags")) ParseTags(*t, call.tags);

  active = g->impl_->active[static_cast<int>(endpoint)];
  active->Inc();
  work_since = t0;

  if (req->body_too_large()) {
    Reject(413, core::ErrorClass::kInvalidRequest,
           "request body exceeds the configured limit (max_body_bytes)", "request_too_large");
    return false;
  }
  auto parsed = ParseRequest(dialect, req->body());
  if (!parsed.ok()) {
    Reject(400, core::ErrorClass::kInvalidRequest, parsed.status().message(), {});
    return false;
  }
  facts = std::move(parsed).value();
  call.requested_model = facts->model;
  call.stream = facts->stream;
  call.max_tokens = facts->max_tokens;
  call.temperature = facts->temperature;
  call.top_p = facts->top_p;
  call.user = facts->user;
  if (auto u = req->header("x-llmscope-user")) call.user = std::string(*u);
  if (options.capture_content) {
    call.request_body = req->body().substr(0, options.max_captured_bytes);
  }

  match = g->router_.Resolve(facts->model);
  if (!match) {
    Reject(404, core::ErrorClass::kInvalidRequest,
           "model '" + facts->model + "' has no route; configured routes: " + g->router_.Describe(),
           "model_not_found");
    return false;
  }
  const Upstream& up = *match->upstream;
  call.provider = up.name;
  call.provider_kind = std::string(ProviderKindName(up.kind));
  const bool anthropic_upstream = up.kind == ProviderKind::kAnthropic;
  if ((dialect == Dialect::kAnthropicMessages && (up.kind == ProviderKind::kOpenAi)) ||
      (dialect != Dialect::kAnthropicMessages && anthropic_upstream)) {
    Reject(400, core::ErrorClass::kInvalidRequest,
           "model '" + facts->model + "' routes to upstream '" + up.name + "' (" +
               std::string(ProviderKindName(up.kind)) + ") which does not serve " +
               std::string(req->path()),
           "unsupported_endpoint");
    return false;
  }

  // Build the upstream request.
  ureq.method = "POST";
  ureq.target = up.origin.base_path + std::string(upstream_suffix);
  ureq.body = PrepareUpstreamBody(dialect, req->body(), *facts, &injected_usage);
  if (match->upstream_model != facts->model) {
    // strip_prefix routes: rename the model in the body. The rename is textual on the
    // exact JSON string value, which ParseRequest has just validated.
    std::string from = core::JsonString(facts->model), to = core::JsonString(match->upstream_model);
    if (auto pos = ureq.body.find(from); pos != std::string::npos)
      ureq.body.replace(pos, from.size(), to);
  }
  ureq.raw_headers.reserve(512);
  const bool own_key = !up.api_key.empty();
  bool has_anthropic_version = false;
  for (const auto& h : req->headers()) {
    if (DropRequestHeader(h.name)) continue;
    if (own_key && (http::HeaderNameEquals(h.name, "authorization") ||
                    http::HeaderNameEquals(h.name, "x-api-key"))) {
      continue;
    }
    if (http::HeaderNameEquals(h.name, "anthropic-version")) has_anthropic_version = true;
    ureq.raw_headers.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  if (own_key) {
    if (anthropic_upstream) {
      ureq.headers.emplace_back("x-api-key", up.api_key);
    } else {
      ureq.headers.emplace_back("Authorization", "Bearer " + up.api_key);
    }
  }
  if (anthropic_upstream && !has_anthropic_version) {
    ureq.headers.emplace_back("anthropic-version", "2023-06-01");
  }
  for (const auto& h : up.extra_headers) ureq.headers.push_back(h);
  // "00-" trace "-" span "-" flags, written in place: one allocation.
  std::string tp;
  tp.reserve(55);
  tp.append("00-");
  core::AppendHex(tp, call.trace_id);
  tp.push_back('-');
  core::AppendHex(tp, call.span_id);
  tp.append(trace_flags & 1 ? "-01" : "-00");
  ureq.headers.emplace_back("traceparent", std::move(tp));
  return true;
}

void Gateway::CallState::AddOwnHeaders(HeaderList& h) {
  h.emplace_back("x-llmscope-request-id", call.request_id);
  if (g->options_.overhead_header) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, overhead / 1000);
    h.emplace_back("x-llmscope-overhead-us", std::string(buf, end));
  }
}

// Finishes the record and hands it to the pipeline; never blocks.
void Gateway::CallState::Finish(int http_status, core::ErrorClass error, std::string message) {
  call.http_status = http_status;
  if (call.error == core::ErrorClass::kNone) call.error = error;
  if (call.error_message.empty()) call.error_message = std::move(message);
  if (call.end_nanos < 0) call.end_nanos = Since(g->clock_, t0);
  call.overhead_nanos = overhead;
  active->Dec();
  g->sink_.Submit(std::move(call));
  g->impl_->handovers->End(handover);
}

// A response produced by llmscope itself: prepared in reply_*, the record finished.
void Gateway::CallState::Reject(int http_status, core::ErrorClass error, std::string message,
                                std::string_view code) {
  reply_status = http_status;
  reply_headers.clear();
  reply_headers.emplace_back("Content-Type", "application/json");
  overhead += Since(g->clock_, work_since);
  AddOwnHeaders(reply_headers);
  reply_body = ErrorBody(dialect, http_status, message, code);
  Finish(http_status, error, std::move(message));
}

// The upstream could not be asked. True when reply_* holds the client's response.
bool Gateway::CallState::SendFailed(const core::Status& st) {
  const Upstream& up = *match->upstream;
  if (client_gone || st.code() == core::StatusCode::kCancelled) {
    call.client_cancelled = true;
    Finish(499, core::ErrorClass::kCancelled, "client closed the connection before the response");
    return false;
  }
  if (st.code() == core::StatusCode::kDeadlineExceeded) {
    Reject(504, core::ErrorClass::kTimeout, "upstream '" + up.name + "': " + st.message(),
           "upstream_timeout");
    return true;
  }
  if (st.message().starts_with("cannot connect") || st.message().starts_with("cannot resolve") ||
      st.message().starts_with("TLS")) {
    g->impl_->upstream_conn_errors[match->upstream_index]->Inc();
  }
  Reject(502, core::ErrorClass::kUpstreamUnreachable,
         "upstream '" + up.name + "' unreachable: " + st.message(), "upstream_unreachable");
  return true;
}

// The upstream's status and headers are in. True when the body is a stream to forward
// event by event; false for a whole body (a completion or an error).
bool Gateway::CallState::BeginResponse(http::Exchange& ex) {
  call.first_byte_nanos = (t_headers - t0).count();
  status = ex.status();
  const bool is_sse =
      ex.header("content-type").value_or("").find("text/event-stream") != std::string_view::npos;
  resp_headers = ex.TakeHeaders();
  std::erase_if(resp_headers, [](const auto& h) { return DropResponseHeader(h.first); });
  return is_sse && status >= 200 && status < 300;
}

void Gateway::CallState::FillUsage(const ResponseFacts& rf) {
  call.response_model = rf.response_model;
  call.finish_reasons = rf.finish_reasons;
  if (rf.usage) {
    call.usage = *rf.usage;
    call.usage_source = core::UsageSource::kProvider;
  } else if (rf.content_chars > 0 || facts->prompt_chars > 0) {
    call.usage.input = EstimateTokens(facts->prompt_chars);
    call.usage.output = EstimateTokens(rf.content_chars);
    call.usage_source = core::UsageSource::kEstimated;
  }
}

// The whole body is read (or reading failed). True when `body` goes to the client with
// resp_headers; false when the call is finished, with or without a reply_* to send.
bool Gateway::CallState::WholeBodyRead(const core::Status& rs) {
  const GatewayOptions& options = g->options_;
  const core::MonoTime t_body = g->clock_.Now();
  work_since = t_body;
  if (!rs.ok()) {
    if (client_gone || rs.code() == core::StatusCode::kCancelled) {
      call.client_cancelled = true;
      Finish(499, core::ErrorClass::kCancelled, "client closed the connection before the response");
      return false;
    }
    const bool timeout = rs.code() == core::StatusCode::kDeadlineExceeded;
    Reject(timeout ? 504 : 502,
           timeout ? core::ErrorClass::kTimeout : core::ErrorClass::kServerError,
           "upstream '" + match->upstream->name + "': " + rs.message(),
           timeout ? "upstream_timeout" : "upstream_truncated");
    return false;
  }
  if (status >= 200 && status < 300) {
    ResponseFacts rf = ParseResponseBody(dialect, body);
    // A whole body has no observable first token: TTFT is left unset rather than
    // reported as the full duration, so TTFT histograms describe streams only.
    FillUsage(rf);
    if (rf.content_filtered) {
      err = core::ErrorClass::kContentFilter;
      err_msg = "the provider stopped the output on content policy";
    }
  } else {
    err = ClassifyUpstreamStatus(status, body);
    err_msg = "upstream returned HTTP " + std::to_string(status);
    if (!body.empty()) {
      ResponseFacts rf = ParseResponseBody(dialect, body);
      if (!rf.error_message.empty()) err_msg += ": " + rf.error_message;
    }
  }
  if (options.capture_content) call.response_text = body.substr(0, options.max_captured_bytes);
  overhead += Since(g->clock_, t_body);
  AddOwnHeaders(resp_headers);
  // The end is stamped when the complete response is handed to the client socket: the
  // write is non-blocking and completes at once, but resuming after it can wait behind
  // the client process it woke (measured: up to 2 ms on a busy core), which is not the
  // call's time.
  call.end_nanos = Since(g->clock_, t0);
  BeginHandover();
  return true;
}

http::Task<void> Gateway::CallState::ForwardWhole(http::Exchange& ex, http::ResponseWriter& w) {
  core::Status rs = co_await ex.ReadAll(body);
  if (!WholeBodyRead(rs)) {
    if (reply_status != 0) co_await SendReply(w);
    co_return;
  }
  if (!co_await w.Send(status, resp_headers, body)) {
    call.client_cancelled = true;
    Finish(499, core::ErrorClass::kCancelled, "client closed the connection during the response");
    co_return;
  }
  Finish(status, err, std::move(err_msg));
}

// Streaming: forward event by event as they arrive; never buffer the whole stream.
http::Task<void> Gateway::CallState::ForwardStream(http::Exchange& ex, http::ResponseWriter& w) {
  const GatewayOptions& options = g->options_;
  const core::Clock& clock = g->clock_;
  SseTap tap;
  StreamObserver observer(dialect, injected_usage);
  std::string out;
  out.reserve(16 << 10);
  resp_headers.emplace_back("Cache-Control", "no-cache");
  overhead += Since(clock, t_headers);
  AddOwnHeaders(resp_headers);
  if (!co_await w.StartStream(status, resp_headers)) {
    ex.Cancel();
    call.client_cancelled = true;
    Finish(499, core::ErrorClass::kCancelled, "client closed the connection before the stream");
    co_return;
  }
  std::string captured;
  bool abort_client = false;
  for (;;) {
    auto piece = co_await ex.ReadSome();
    const core::MonoTime t_piece = clock.Now();
    if (!piece.ok()) {
      const auto& st = piece.status();
      if (client_gone || st.code() == core::StatusCode::kCancelled) {
        call.client_cancelled = true;
        err = core::ErrorClass::kCancelled;
        err_msg = "client closed the connection mid-stream";
        break;
      }
      err = st.code() == core::StatusCode::kDeadlineExceeded ? core::ErrorClass::kTimeout
                                                             : core::ErrorClass::kServerError;
      err_msg = "upstream '" + match->upstream->name + "' stream failed: " + st.message();
      abort_client = true;  // the client sees the truncation the provider caused
      break;
    }
    if (piece->empty()) break;
    out.clear();
    tap.Feed(*piece, out, [&](const SseEvent& ev) {
      auto v = observer.OnEvent(ev);
      if (v.content && call.first_content_nanos < 0) {
        call.first_content_nanos = (t_piece - t0).count();
      }
      if (!v.forward) return false;  // the injected usage-only chunk
      if (options.capture_content && captured.size() < options.max_captured_bytes) {
        captured.append(ev.data.substr(0, options.max_captured_bytes - captured.size()));
        captured += '\n';
      }
      // The client did not ask for usage: remove the `"usage":null` that asking for it
      // added to every chunk, so the client gets the bytes it would have got directly.
      // The rewritten event is appended here, in order, and the tap skips the original.
      return !(injected_usage && AppendWithoutNullUsage(ev.raw, out));
    });
    // A client may stop reading at the end-of-stream marker (`[DONE]`, `message_stop`, ...)
    // and ask for a flush before the connection's last bytes: the hand-over starts there.
    if (observer.facts().terminated) BeginHandover();
    overhead += Since(clock, t_piece);
    if (!out.empty() && !co_await w.WriteChunk(out)) {
      ex.Cancel();
      call.client_cancelled = true;
      err = core::ErrorClass::kCancelled;
      err_msg = "client closed the connection mid-stream";
      break;
    }
  }
  BeginHandover();
  if (err == core::ErrorClass::kNone || abort_client) {
    out.clear();
    tap.Finish(out);
    if (!out.empty()) co_await w.WriteChunk(out);
  }
  const ResponseFacts& rf = observer.facts();
  FillUsage(rf);
  if (options.capture_content) call.response_text = std::move(captured);
  if (err == core::ErrorClass::kNone) {
    if (!rf.error_type.empty() || !rf.error_message.empty()) {
      err = rf.error_type.find("overloaded") != std::string::npos ||
                    rf.error_type.find("rate_limit") != std::string::npos
                ? core::ErrorClass::kRateLimit
                : core::ErrorClass::kServerError;
      err_msg = "error event in stream: " + rf.error_type + " " + rf.error_message;
    } else if (!rf.terminated) {
      err = core::ErrorClass::kServerError;
      err_msg = "upstream stream ended without its end-of-stream marker";
    } else if (rf.content_filtered) {
      err = core::ErrorClass::kContentFilter;
      err_msg = "the provider stopped the output on content policy";
    }
  }
  call.end_nanos = Since(clock, t0);  // the last byte handed over, as for whole bodies
  if (abort_client) {
    w.Abort();
  } else if (err != core::ErrorClass::kCancelled) {
    co_await w.FinishStream();
  }
  Finish(err == core::ErrorClass::kCancelled ? 499 : status, err, std::move(err_msg));
}

}  // namespace llmscope::gateway
