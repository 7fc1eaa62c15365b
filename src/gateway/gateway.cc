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
  struct alignas(64) Worker {
    std::vector<std::unique_ptr<http::Client>> clients;  // one per upstream
    std::mt19937_64 rng;
    uint64_t seq = 0;
  };
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

http::Task<void> Gateway::Handle(http::Request& req, http::ResponseWriter& w) {
  const core::MonoTime t0 = clock_.Now();
  Impl::Worker& worker = *impl_->workers[static_cast<size_t>(req.worker())];

  if (req.path() == "/v1/models") {
    std::string body = "{\"object\":\"list\",\"data\":[";
    bool first = true;
    for (const auto& r : router_.routes()) {
      if (!first) body += ',';
      first = false;
      body +=
          "{\"id\":" + core::JsonString(r.pattern + (r.match == MatchKind::kPrefix ? "*" : "")) +
          ",\"object\":\"model\",\"created\":0,\"owned_by\":" + core::JsonString(r.upstream) + "}";
    }
    body += "]}";
    const HeaderList h{{"Content-Type", "application/json"}};
    co_await w.Send(200, h, body);
    co_return;
  }

  auto ep = EndpointForPath(req.path());
  const Dialect dialect = DialectFor(ep->endpoint);
  if (req.method() != "POST") {
    const HeaderList h{{"Content-Type", "application/json"}, {"Allow", "POST"}};
    co_await w.Send(405, h, ErrorBody(dialect, 405, "method not allowed; use POST", {}));
    co_return;
  }

  core::LlmCall call;
  call.start_unix_nanos = clock_.UnixNanos();
  call.endpoint = ep->endpoint;
  // Trace context: continue the client's trace, or start one. Our span is the call.
  uint8_t trace_flags = 1;
  if (auto tp = req.header("traceparent");
      !tp || !ParseTraceparent(*tp, call.trace_id, call.parent_span_id, trace_flags)) {
    call.parent_span_id = {};
    do {
      for (size_t i = 0; i < 16; i += 8) {
        uint64_t r = worker.rng();
        std::memcpy(call.trace_id.data() + i, &r, 8);
      }
    } while (!core::IsValid(call.trace_id));
  }
  do {
    uint64_t r = worker.rng();
    std::memcpy(call.span_id.data(), &r, 8);
  } while (!core::IsValid(call.span_id));
  {
    char id[24] = "req_";
    uint64_t r = worker.rng();
    for (int i = 0; i < 16; ++i) id[4 + i] = "0123456789abcdef"[(r >> (i * 4)) & 0xf];
    call.request_id.assign(id, 20);
  }
  if (auto u = req.header("x-llmscope-session")) call.session = std::string(*u);
  if (auto t = req.header("x-llmscope-tags")) ParseTags(*t, call.tags);

  metrics::Gauge& active = *impl_->active[static_cast<int>(ep->endpoint)];
  active.Inc();
  int64_t overhead = 0;
  // When llmscope last resumed its own work after a wait on the upstream: overhead counts
  // only the time since such marks, never the waits themselves.
  core::MonoTime work_since = t0;
  HeaderList resp_headers;

  // Held from the start of the write that completes the client's response until the record
  // is submitted; a flush waits for it (HandoverTracker).
  HandoverTracker::Ticket handover;
  auto begin_handover = [&] {
    if (handover.slot < 0) handover = impl_->handovers->Begin(req.worker());
  };
  // Finishes the record and hands it to the pipeline; never blocks.
  auto finish = [&](int status, core::ErrorClass err, std::string message) {
    call.http_status = status;
    if (call.error == core::ErrorClass::kNone) call.error = err;
    if (call.error_message.empty()) call.error_message = std::move(message);
    if (call.end_nanos < 0) call.end_nanos = Since(clock_, t0);
    call.overhead_nanos = overhead;
    active.Dec();
    sink_.Submit(std::move(call));
    impl_->handovers->End(handover);
  };
  auto add_own_headers = [&](HeaderList& h, int64_t overhead_ns) {
    h.emplace_back("x-llmscope-request-id", call.request_id);
    if (options_.overhead_header)
      h.emplace_back("x-llmscope-overhead-us", std::to_string(overhead_ns / 1000));
  };
  // A response produced by llmscope itself (bad input, no route, upstream failure).
  auto reject = [&](int status, core::ErrorClass err, std::string message,
                    std::string_view code) -> http::Task<void> {
    HeaderList h{{"Content-Type", "application/json"}};
    overhead += Since(clock_, work_since);
    add_own_headers(h, overhead);
    std::string body = ErrorBody(dialect, status, message, code);
    finish(status, err, std::move(message));
    co_await w.Send(status, h, body);
  };

  if (req.body_too_large()) {
    co_await reject(413, core::ErrorClass::kInvalidRequest,
                    "request body exceeds the configured limit (max_body_bytes)",
                    "request_too_large");
    co_return;
  }
  auto facts = ParseRequest(dialect, req.body());
  if (!facts.ok()) {
    co_await reject(400, core::ErrorClass::kInvalidRequest, facts.status().message(), {});
    co_return;
  }
  call.requested_model = facts->model;
  call.stream = facts->stream;
  call.max_tokens = facts->max_tokens;
  call.temperature = facts->temperature;
  call.top_p = facts->top_p;
  call.user = facts->user;
  if (auto u = req.header("x-llmscope-user")) call.user = std::string(*u);
  if (options_.capture_content) {
    call.request_body = req.body().substr(0, options_.max_captured_bytes);
  }

  auto match = router_.Resolve(facts->model);
  if (!match) {
    co_await reject(
        404, core::ErrorClass::kInvalidRequest,
        "model '" + facts->model + "' has no route; configured routes: " + router_.Describe(),
        "model_not_found");
    co_return;
  }
  const Upstream& up = *match->upstream;
  call.provider = up.name;
  call.provider_kind = std::string(ProviderKindName(up.kind));
  const bool anthropic_upstream = up.kind == ProviderKind::kAnthropic;
  if ((dialect == Dialect::kAnthropicMessages && (up.kind == ProviderKind::kOpenAi)) ||
      (dialect != Dialect::kAnthropicMessages && anthropic_upstream)) {
    co_await reject(400, core::ErrorClass::kInvalidRequest,
                    "model '" + facts->model + "' routes to upstream '" + up.name + "' (" +
                        std::string(ProviderKindName(up.kind)) + ") which does not serve " +
                        std::string(req.path()),
                    "unsupported_endpoint");
    co_return;
  }

  // Build the upstream request.
  http::ClientRequest ureq;
  ureq.method = "POST";
  ureq.target = up.origin.base_path + std::string(ep->upstream_suffix);
  bool injected_usage = false;
  ureq.body = PrepareUpstreamBody(dialect, req.body(), *facts, &injected_usage);
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
  for (const auto& h : req.headers()) {
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
  ureq.headers.emplace_back("traceparent", "00-" + core::ToHex(call.trace_id) + "-" +
                                               core::ToHex(call.span_id) + "-" +
                                               (trace_flags & 1 ? "01" : "00"));

  http::Cancellation cancel;
  bool client_gone = false;
  w.WatchClientGone([&] {
    client_gone = true;
    cancel.Cancel();
  });

  http::Client& client = *worker.clients[match->upstream_index];
  overhead += Since(clock_, t0);
  auto sent = co_await client.Send(up.origin, std::move(ureq), &cancel);
  const core::MonoTime t_headers = clock_.Now();
  work_since = t_headers;
  if (!sent.ok()) {
    const auto& st = sent.status();
    if (client_gone || st.code() == core::StatusCode::kCancelled) {
      call.client_cancelled = true;
      finish(499, core::ErrorClass::kCancelled, "client closed the connection before the response");
      co_return;
    }
    if (st.code() == core::StatusCode::kDeadlineExceeded) {
      co_await reject(504, core::ErrorClass::kTimeout,
                      "upstream '" + up.name + "': " + st.message(), "upstream_timeout");
      co_return;
    }
    if (st.message().starts_with("cannot connect") || st.message().starts_with("cannot resolve") ||
        st.message().starts_with("TLS")) {
      impl_->upstream_conn_errors[match->upstream_index]->Inc();
    }
    co_await reject(502, core::ErrorClass::kUpstreamUnreachable,
                    "upstream '" + up.name + "' unreachable: " + st.message(),
                    "upstream_unreachable");
    co_return;
  }
  http::Exchange& ex = **sent;
  call.first_byte_nanos = (t_headers - t0).count();
  const int status = ex.status();
  const bool is_sse =
      ex.header("content-type").value_or("").find("text/event-stream") != std::string_view::npos;
  resp_headers = ex.TakeHeaders();
  std::erase_if(resp_headers, [](const auto& h) { return DropResponseHeader(h.first); });

  auto fill_usage = [&](const ResponseFacts& rf) {
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
  };

  if (!is_sse || status < 200 || status >= 300) {
    // A whole JSON body (a completion or an error): read it, then forward it unchanged.
    std::string body;
    core::Status rs = co_await ex.ReadAll(body);
    const core::MonoTime t_body = clock_.Now();
    work_since = t_body;
    if (!rs.ok()) {
      if (client_gone || rs.code() == core::StatusCode::kCancelled) {
        call.client_cancelled = true;
        finish(499, core::ErrorClass::kCancelled,
               "client closed the connection before the response");
        co_return;
      }
      const bool timeout = rs.code() == core::StatusCode::kDeadlineExceeded;
      co_await reject(timeout ? 504 : 502,
                      timeout ? core::ErrorClass::kTimeout : core::ErrorClass::kServerError,
                      "upstream '" + up.name + "': " + rs.message(),
                      timeout ? "upstream_timeout" : "upstream_truncated");
      co_return;
    }
    core::ErrorClass err = core::ErrorClass::kNone;
    std::string err_msg;
    if (status >= 200 && status < 300) {
      ResponseFacts rf = ParseResponseBody(dialect, body);
      // A whole body has no observable first token: TTFT is left unset rather than
      // reported as the full duration, so TTFT histograms describe streams only.
      fill_usage(rf);
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
    if (options_.capture_content) call.response_text = body.substr(0, options_.max_captured_bytes);
    overhead += Since(clock_, t_body);
    add_own_headers(resp_headers, overhead);
    // The end is stamped when the complete response is handed to the client socket: the
    // write is non-blocking and completes at once, but resuming after it can wait behind
    // the client process it woke (measured: up to 2 ms on a busy core), which is not the
    // call's time.
    call.end_nanos = Since(clock_, t0);
    begin_handover();
    const bool ok = co_await w.Send(status, resp_headers, body);
    if (!ok) {
      call.client_cancelled = true;
      finish(499, core::ErrorClass::kCancelled, "client closed the connection during the response");
      co_return;
    }
    finish(status, err, std::move(err_msg));
    co_return;
  }

  // Streaming: forward event by event as they arrive; never buffer the whole stream.
  SseTap tap;
  StreamObserver observer(dialect, injected_usage);
  std::string out;
  out.reserve(16 << 10);
  resp_headers.emplace_back("Cache-Control", "no-cache");
  overhead += Since(clock_, t_headers);
  add_own_headers(resp_headers, overhead);
  if (!co_await w.StartStream(status, resp_headers)) {
    ex.Cancel();
    call.client_cancelled = true;
    finish(499, core::ErrorClass::kCancelled, "client closed the connection before the stream");
    co_return;
  }
  std::string captured;
  core::ErrorClass err = core::ErrorClass::kNone;
  std::string err_msg;
  bool abort_client = false;
  for (;;) {
    auto piece = co_await ex.ReadSome();
    const core::MonoTime t_piece = clock_.Now();
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
      err_msg = "upstream '" + up.name + "' stream failed: " + st.message();
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
      if (options_.capture_content && captured.size() < options_.max_captured_bytes) {
        captured.append(ev.data.substr(0, options_.max_captured_bytes - captured.size()));
        captured += '\n';
      }
      // The client did not ask for usage: remove the `"usage":null` that asking for it
      // added to every chunk, so the client gets the bytes it would have got directly.
      // The rewritten event is appended here, in order, and the tap skips the original.
      return !(injected_usage && AppendWithoutNullUsage(ev.raw, out));
    });
    // A client may stop reading at the end-of-stream marker (`[DONE]`, `message_stop`, ...)
    // and ask for a flush before the connection's last bytes: the hand-over starts there.
    if (observer.facts().terminated) begin_handover();
    overhead += Since(clock_, t_piece);
    if (!out.empty() && !co_await w.WriteChunk(out)) {
      ex.Cancel();
      call.client_cancelled = true;
      err = core::ErrorClass::kCancelled;
      err_msg = "client closed the connection mid-stream";
      break;
    }
  }
  begin_handover();
  if (err == core::ErrorClass::kNone || abort_client) {
    out.clear();
    tap.Finish(out);
    if (!out.empty()) co_await w.WriteChunk(out);
  }
  const ResponseFacts& rf = observer.facts();
  fill_usage(rf);
  if (options_.capture_content) call.response_text = std::move(captured);
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
  call.end_nanos = Since(clock_, t0);  // the last byte handed over, as for whole bodies
  if (abort_client) {
    w.Abort();
  } else if (err != core::ErrorClass::kCancelled) {
    co_await w.FinishStream();
  }
  finish(err == core::ErrorClass::kCancelled ? 499 : status, err, std::move(err_msg));
}

}  // namespace llmscope::gateway
