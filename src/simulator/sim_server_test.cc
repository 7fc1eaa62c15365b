#include "simulator/sim_server.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/client.h"
#include "http/server.h"
#include "testing/fake_clock.h"

namespace llmscope::simulator {
namespace {

namespace asio = boost::asio;
using core::Endpoint;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// The event loop client coroutines run on; clients are destroyed before it.
thread_local asio::io_context* tl_io = nullptr;

template <typename T>
T RunClient(std::function<http::Task<T>()> fn) {
  auto fut = asio::co_spawn(*tl_io, fn(), asio::use_future);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (tl_io->run_one_for(std::chrono::seconds(30)) == 0) break;
  }
  return fut.get();
}

// What a client saw of one exchange.
struct Reply {
  core::Status error;  // of Send or of reading the body
  int status = 0;
  http::HeaderList headers;
  std::string body;
  bool truncated = false;
  // Each piece of the body as it arrived: bytes received so far, and time since the
  // request was sent.
  std::vector<std::pair<size_t, core::Nanos>> arrivals;

  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (http::HeaderNameEquals(n, name)) return v;
    }
    return "";
  }
  // Time at which the body had reached `bytes` bytes; nullopt when it never did.
  std::optional<core::Nanos> TimeToBytes(size_t bytes) const {
    for (const auto& [n, t] : arrivals) {
      if (n >= bytes) return t;
    }
    return std::nullopt;
  }
};

constexpr char kChatBody[] =
    R"({"model":"sim/gpt-4o","messages":[{"role":"user","content":"Say hello"}]})";
constexpr char kChatStreamBody[] =
    R"({"model":"sim/gpt-4o","stream":true,"stream_options":{"include_usage":true},)"
    R"("messages":[{"role":"user","content":"Say hello"}]})";
constexpr char kMessagesStreamBody[] =
    R"({"model":"sim/claude-sonnet-4-5","max_tokens":100,"stream":true,)"
    R"("messages":[{"role":"user","content":"Say hello"}]})";

std::string Concat(const SimResponse& r) {
  std::string all;
  for (const Frame& f : r.frames) all += f.bytes;
  return all;
}

class SimServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tl_io = &io_;
    base_.latency = milliseconds(5);
    base_.ttft = milliseconds(40);
    base_.tokens_per_second = 2000;
    base_.min_output_tokens = 5;
    base_.max_output_tokens = 8;
  }
  void TearDown() override {
    if (client_) client_->Shutdown();
    client_.reset();
    if (server_) server_->Stop();
    tl_io = nullptr;
  }

  // Starts a SimServer with `base_` on 127.0.0.1, port 0.
  void StartServer(core::Nanos hang_timeout = std::chrono::minutes(10)) {
    SimServerOptions o;
    o.http.host = "127.0.0.1";
    o.http.port = 0;
    o.http.threads = 2;
    o.sim = base_;
    o.hang_timeout = hang_timeout;
    auto s = SimServer::Create(o, clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
    origin_.host = "127.0.0.1";
    origin_.port = server_->port();
    NewClient({});
  }

  void NewClient(http::ClientOptions co) {
    if (client_) client_->Shutdown();
    auto c = http::Client::Create(co);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
  }

  Reply Fetch(std::string method, std::string target, http::HeaderList headers,
              std::string body = "") {
    http::ClientRequest req;
    req.method = std::move(method);
    req.target = std::move(target);
    req.headers = std::move(headers);
    if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
    req.body = std::move(body);
    return RunClient<Reply>([&]() -> http::Task<Reply> {
      Reply out;
      auto start = std::chrono::steady_clock::now();
      auto ex = co_await client_->Send(origin_, std::move(req));
      if (!ex.ok()) {
        out.error = ex.status();
        co_return out;
      }
      out.status = (*ex)->status();
      out.headers = (*ex)->headers();
      for (;;) {
        auto piece = co_await (*ex)->ReadSome();
        if (!piece.ok()) {
          out.error = piece.status();
          out.truncated = (*ex)->truncated();
          break;
        }
        if (piece->empty()) break;
        out.body += *piece;
        out.arrivals.emplace_back(out.body.size(), std::chrono::steady_clock::now() - start);
      }
      co_return out;
    });
  }

  Reply Post(std::string target, std::string body, http::HeaderList headers = {}) {
    return Fetch("POST", std::move(target), std::move(headers), std::move(body));
  }

  // What the pure simulator answers for the same inputs.
  SimResponse Expected(Endpoint endpoint, std::string_view body, const http::HeaderList& headers,
                       uint64_t seq, std::optional<int64_t> created = std::nullopt) {
    auto opts =
        ApplyOverrides(base_, [&](std::string_view name) -> std::optional<std::string_view> {
          for (const auto& [n, v] : headers) {
            if (http::HeaderNameEquals(n, name)) return std::string_view(v);
          }
          return std::nullopt;
        });
    EXPECT_TRUE(opts.ok()) << opts.status().ToString();
    if (created) opts->created_unix_seconds = *created;
    auto r = Simulate(endpoint, body, *opts, seq);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : SimResponse{};
  }

  asio::io_context io_;  // before the client, so the client's sockets go first
  SimOptions base_;
  testing::FakeClock clock_{1'750'000'000'123'000'000};
  std::unique_ptr<SimServer> server_;
  std::unique_ptr<http::Client> client_;
  http::Origin origin_;
};

TEST_F(SimServerTest, NonStreamingChatBodyEqualsSimulateWithSeed) {
  StartServer();
  const http::HeaderList headers{{"X-Sim-Seed", "7"}};
  Reply a = Post("/v1/chat/completions", kChatBody, headers);
  Reply b = Post("/v1/chat/completions", kChatBody, headers);
  SimResponse want = Expected(Endpoint::kChatCompletions, kChatBody, headers, 0);
  ASSERT_TRUE(a.error.ok()) << a.error.ToString();
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.Header("content-type"), "application/json");
  ASSERT_EQ(want.frames.size(), 1u);
  EXPECT_EQ(a.body, want.frames[0].bytes);
  EXPECT_EQ(a.body, b.body) << "x-sim-seed must make the response a function of the request";
  // Headers and body go out together at the frame's time (latency + ttft + n / tps).
  auto arrived = a.TimeToBytes(1);
  ASSERT_TRUE(arrived.has_value());
  EXPECT_GE(*arrived, want.frames[0].at);
  EXPECT_LT(*arrived, want.frames[0].at + milliseconds(500));
  EXPECT_EQ(a.Header("x-request-id"), want.headers[0].second);
  EXPECT_EQ(a.Header("x-sim-usage-input"), "") << "no simulator-only headers on the wire";
  EXPECT_EQ(server_->requests_served(), 2u);
}

TEST_F(SimServerTest, UnseededRequestsTakeSuccessiveSeqsAndTheClocksTime) {
  StartServer();
  Reply first = Post("/v1/chat/completions", kChatBody);
  Reply second = Post("/v1/chat/completions", kChatBody);
  const int64_t created = clock_.UnixNanos() / 1'000'000'000;
  EXPECT_EQ(first.body,
            Expected(Endpoint::kChatCompletions, kChatBody, {}, 0, created).frames[0].bytes);
  EXPECT_EQ(second.body,
            Expected(Endpoint::kChatCompletions, kChatBody, {}, 1, created).frames[0].bytes);
  EXPECT_NE(first.body, second.body);
  EXPECT_NE(first.body.find("\"created\":1750000000"), std::string::npos) << first.body;
}

TEST_F(SimServerTest, StreamingChatPlaysTheScheduleAndWaitsForTtft) {
  StartServer();
  const http::HeaderList headers{{"x-sim-seed", "3"}};
  Reply r = Post("/v1/chat/completions", kChatStreamBody, headers);
  SimResponse want = Expected(Endpoint::kChatCompletions, kChatStreamBody, headers, 0);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.body, Concat(want));
  EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos);

  // frames[0] is the role chunk (at latency); frames[1] the first content chunk (at ttft).
  ASSERT_GE(want.frames.size(), 3u);
  ASSERT_EQ(want.frames[1].at, base_.ttft);
  auto first_content = r.TimeToBytes(want.frames[0].bytes.size() + want.frames[1].bytes.size());
  ASSERT_TRUE(first_content.has_value());
  EXPECT_GE(*first_content, base_.ttft);
  EXPECT_LT(*first_content, base_.ttft + milliseconds(500));
}

TEST_F(SimServerTest, TtftOverrideHeaderDelaysTheFirstContentChunk) {
  StartServer();
  const http::HeaderList headers{{"x-sim-seed", "3"}, {"x-sim-ttft-ms", "120"}};
  Reply r = Post("/v1/chat/completions", kChatStreamBody, headers);
  SimResponse want = Expected(Endpoint::kChatCompletions, kChatStreamBody, headers, 0);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.body, Concat(want));
  auto first_content = r.TimeToBytes(want.frames[0].bytes.size() + want.frames[1].bytes.size());
  ASSERT_TRUE(first_content.has_value());
  EXPECT_GE(*first_content, milliseconds(120));
  EXPECT_LT(*first_content, milliseconds(120 + 500));
}

TEST_F(SimServerTest, AnthropicMessagesStreaming) {
  StartServer();
  const http::HeaderList headers{{"x-sim-seed", "11"}};
  Reply r = Post("/v1/messages", kMessagesStreamBody, headers);
  SimResponse want = Expected(Endpoint::kMessages, kMessagesStreamBody, headers, 0);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_TRUE(r.Header("request-id").starts_with("req_")) << r.Header("request-id");
  EXPECT_EQ(r.body, Concat(want));
  EXPECT_TRUE(r.body.starts_with("event: message_start\n")) << r.body;
  EXPECT_NE(r.body.find("event: content_block_delta\n"), std::string::npos);
  EXPECT_NE(r.body.find("event: message_stop\n"), std::string::npos);
}

TEST_F(SimServerTest, OtherEndpointsMatchSimulate) {
  StartServer();
  const http::HeaderList headers{{"x-sim-seed", "5"}};
  const std::pair<std::string, std::pair<Endpoint, std::string>> cases[] = {
      {"/v1/completions",
       {Endpoint::kCompletions, R"({"model":"sim/gpt-4o","prompt":"Hi","stream":true})"}},
      {"/v1/embeddings",
       {Endpoint::kEmbeddings, R"({"model":"sim/text-embedding-3-small","input":"Hi"})"}},
      {"/v1/responses", {Endpoint::kResponses, R"({"model":"sim/gpt-4o","input":"Hi"})"}},
      {"/v1/responses",
       {Endpoint::kResponses, R"({"model":"sim/gpt-4o","input":"Hi","stream":true})"}},
      {"/v1/messages",
       {Endpoint::kMessages,
        R"({"model":"sim/claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]})"}},
  };
  for (const auto& [path, c] : cases) {
    Reply r = Post(path, c.second, headers);
    SimResponse want = Expected(c.first, c.second, headers, 0);
    EXPECT_TRUE(r.error.ok()) << path << ": " << r.error.ToString();
    EXPECT_EQ(r.status, 200) << path;
    EXPECT_EQ(r.Header("content-type"), want.content_type) << path;
    EXPECT_EQ(r.body, Concat(want)) << path << " " << c.second;
  }
}

TEST_F(SimServerTest, RateLimitGets429WithRetryAfter) {
  StartServer();
  const http::HeaderList headers{{"x-sim-error", "rate_limit"}, {"x-sim-seed", "1"}};
  Reply r = Post("/v1/chat/completions", kChatStreamBody, headers);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("retry-after"), "1");
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_EQ(r.body, Concat(Expected(Endpoint::kChatCompletions, kChatStreamBody, headers, 0)));
  EXPECT_NE(r.body.find("rate_limit_exceeded"), std::string::npos) << r.body;
}

TEST_F(SimServerTest, TruncatedStreamEndsWithoutTerminator) {
  StartServer();
  const http::HeaderList headers{{"x-sim-error", "truncated"}, {"x-sim-seed", "1"}};
  Reply r = Post("/v1/chat/completions", kChatStreamBody, headers);
  SimResponse want = Expected(Endpoint::kChatCompletions, kChatStreamBody, headers, 0);
  ASSERT_TRUE(want.close_without_terminator);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.error.ok());
  EXPECT_TRUE(r.truncated) << r.error.ToString();
  EXPECT_EQ(r.body, Concat(want));
  EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
}

TEST_F(SimServerTest, TruncatedNonStreamingBodyIsCutShort) {
  StartServer();
  const http::HeaderList headers{{"x-sim-error", "truncated"}, {"x-sim-seed", "1"}};
  Reply r = Post("/v1/chat/completions", kChatBody, headers);
  SimResponse want = Expected(Endpoint::kChatCompletions, kChatBody, headers, 0);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.truncated) << r.error.ToString();
  EXPECT_EQ(r.body, Concat(want));
}

TEST_F(SimServerTest, BadOverrideHeaderGets400NamingTheHeader) {
  StartServer();
  const http::HeaderList headers{{"X-Sim-Ttft-Ms", "abc"}};
  Reply r = Post("/v1/chat/completions", kChatBody, headers);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("x-sim-ttft-ms"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"invalid_request_error\""), std::string::npos) << r.body;

  Reply anthropic = Post("/v1/messages", kMessagesStreamBody, headers);
  EXPECT_EQ(anthropic.status, 400);
  EXPECT_TRUE(anthropic.body.starts_with(R"({"type":"error")")) << anthropic.body;
  EXPECT_NE(anthropic.body.find("x-sim-ttft-ms"), std::string::npos) << anthropic.body;
}

TEST_F(SimServerTest, BadBodyGets400NamingTheField) {
  StartServer();
  Reply r = Post("/v1/chat/completions", R"({"messages":[]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("model"), std::string::npos) << r.body;
  Reply not_json = Post("/v1/embeddings", "not json");
  EXPECT_EQ(not_json.status, 400);
}

TEST_F(SimServerTest, UnknownPathWrongMethodAndHealthz) {
  StartServer();
  Reply unknown = Post("/v1/nope", "{}");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(unknown.body.find(R"j("error":{"message":"Invalid URL (POST /v1/nope)")j"),
            std::string::npos)
      << unknown.body;
  Reply no_prefix = Post("/chat/completions", kChatBody);
  EXPECT_EQ(no_prefix.status, 404);

  Reply wrong = Fetch("GET", "/v1/chat/completions", {});
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("allow"), "POST");
  EXPECT_NE(wrong.body.find("\"error\""), std::string::npos) << wrong.body;

  Reply health = Fetch("GET", "/healthz", {});
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok");
  EXPECT_EQ(server_->requests_served(), 0u) << "only simulated endpoints count";
}

TEST_F(SimServerTest, ModelsListsSimModels) {
  StartServer();
  Reply r = Fetch("GET", "/v1/models", {});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "application/json");
  EXPECT_NE(r.body.find(R"("object":"list")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sim/gpt-4o"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sim/claude-sonnet-4-5"), std::string::npos) << r.body;
}

TEST_F(SimServerTest, HangHoldsUntilTheClientGivesUp) {
  StartServer();
  http::ClientOptions co;
  co.first_byte_timeout = milliseconds(100);
  NewClient(co);
  const http::HeaderList headers{{"x-sim-error", "timeout"}};
  Reply r = Post("/v1/chat/completions", kChatBody, headers);
  EXPECT_EQ(r.error.code(), core::StatusCode::kDeadlineExceeded) << r.error.ToString();
  EXPECT_EQ(r.status, 0);
  // The client closed its connection; the server notices and ends the request.
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (server_->requests_in_flight() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(server_->requests_in_flight(), 0u);
}

TEST_F(SimServerTest, HangEndsAtHangTimeout) {
  StartServer(/*hang_timeout=*/milliseconds(100));
  const http::HeaderList headers{{"x-sim-error", "timeout"}};
  auto start = std::chrono::steady_clock::now();
  Reply r = Post("/v1/chat/completions", kChatBody, headers);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.error.code(), core::StatusCode::kUnavailable) << r.error.ToString();
  EXPECT_GE(took, milliseconds(100));
  EXPECT_LT(took, milliseconds(100 + 2000));
}

TEST_F(SimServerTest, CreateListsEveryProblem) {
  SimServerOptions o;
  o.sim.ttft = milliseconds(-1);
  o.hang_timeout = core::Nanos(0);
  auto s = SimServer::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("ttft"), std::string::npos) << s.status().message();
  EXPECT_NE(s.status().message().find("hang_timeout"), std::string::npos) << s.status().message();
}

TEST_F(SimServerTest, HandlerMountsOnAnotherServer) {
  SimServerOptions o;
  o.sim = base_;
  auto sim = SimServer::Create(o);  // never started: only its handler is used
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  http::ServerOptions so;
  so.port = 0;
  so.threads = 1;
  http::Server other(so, (*sim)->handler());
  ASSERT_TRUE(other.Start().ok());
  origin_.host = "127.0.0.1";
  origin_.port = other.port();
  NewClient({});
  Reply r = Fetch("GET", "/v1/models", {});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("sim/gpt-4o"), std::string::npos) << r.body;
  EXPECT_EQ((*sim)->requests_served(), 1u);
  client_->Shutdown();
  client_.reset();
  other.Stop();
}

}  // namespace
}  // namespace llmscope::simulator
