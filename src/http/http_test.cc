#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <thread>

#include "http/client.h"
#include "http/server.h"

namespace llmscope::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// The event loop client coroutines run on. Declared before any Client in a test so that
// clients (and their pooled sockets) are destroyed first.
thread_local asio::io_context* tl_io = nullptr;

// Runs a client coroutine on the test's event loop until it completes.
template <typename T>
T RunClient(std::function<Task<T>()> fn) {
  auto fut = asio::co_spawn(*tl_io, fn(), asio::use_future);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (tl_io->run_one_for(std::chrono::seconds(30)) == 0) break;
  }
  return fut.get();
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override { tl_io = &io_; }
  void TearDown() override { tl_io = nullptr; }
  asio::io_context io_;
};

struct TestServer {
  explicit TestServer(Handler h, ServerOptions o = {}) {
    o.port = 0;
    o.threads = 1;
    server = std::make_unique<Server>(o, std::move(h));
    EXPECT_TRUE(server->Start().ok());
    origin.host = "127.0.0.1";
    origin.port = server->port();
  }
  std::unique_ptr<Server> server;
  Origin origin;
};

std::unique_ptr<Client> NewClient(ClientOptions o = {}) {
  auto c = Client::Create(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(c).value();
}

ClientRequest Post(std::string target, std::string body) {
  ClientRequest r;
  r.target = std::move(target);
  r.headers = {{"Content-Type", "application/json"}};
  r.body = std::move(body);
  return r;
}

TEST(OriginTest, ParsesUrls) {
  auto o = Origin::Parse("https://api.openai.com/v1/");
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(o->tls);
  EXPECT_EQ(o->host, "api.openai.com");
  EXPECT_EQ(o->port, 443);
  EXPECT_EQ(o->base_path, "/v1");
  auto p = Origin::Parse("http://127.0.0.1:11434");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->port, 11434);
  EXPECT_EQ(p->base_path, "");
  auto v6 = Origin::Parse("http://[::1]:8000/v1");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8000);
  EXPECT_FALSE(Origin::Parse("ftp://x").ok());
  EXPECT_FALSE(Origin::Parse("http://host:99999").ok());
  EXPECT_FALSE(Origin::Parse("http://:80").ok());
}

TEST_F(HttpTest, RoundTripAndKeepAlive) {
  TestServer ts([](Request& req, ResponseWriter& w) -> Task<void> {
    std::string body = std::string(req.method()) + " " + std::string(req.path()) + " " +
                       std::string(req.header("x-test").value_or("none")) + " " + req.body();
    const HeaderList h{{"Content-Type", "text/plain"}};
    co_await w.Send(200, h, body);
  });
  auto client = NewClient();
  auto bodies = RunClient<std::vector<std::string>>([&]() -> Task<std::vector<std::string>> {
    std::vector<std::string> out;
    for (int i = 0; i < 3; ++i) {
      auto req = Post("/v1/echo?x=1", "hello" + std::to_string(i));
      req.headers.emplace_back("X-Test", "yes");
      auto ex = co_await client->Send(ts.origin, std::move(req));
      EXPECT_TRUE(ex.ok()) << ex.status().ToString();
      std::string body;
      EXPECT_TRUE((co_await (*ex)->ReadAll(body)).ok());
      EXPECT_EQ((*ex)->status(), 200);
      out.push_back(body);
    }
    co_return out;
  });
  ASSERT_EQ(bodies.size(), 3u);
  EXPECT_EQ(bodies[0], "POST /v1/echo yes hello0");
  EXPECT_EQ(bodies[2], "POST /v1/echo yes hello2");
  EXPECT_EQ(client->connections_opened(), 1u) << "keep-alive connection must be reused";
}

// Bodies far larger than a socket's send buffer: the first direct write takes only part,
// and the rest must follow through the event loop, in order, on both sides (the client's
// request body and the server's response), twice on one keep-alive connection.
TEST_F(HttpTest, LargeBodiesSurvivePartialWrites) {
  ServerOptions so;
  so.max_body_bytes = 64 << 20;
  TestServer ts(
      [](Request& req, ResponseWriter& w) -> Task<void> {
        // The response: the request body repeated twice, so it is larger still.
        std::string body = req.body() + req.body();
        const HeaderList h{{"Content-Type", "application/octet-stream"}};
        co_await w.Send(200, h, body);
      },
      so);
  ClientOptions co;
  co.max_response_bytes = 128 << 20;
  auto client = NewClient(co);
  std::string sent(12 << 20, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + (i * 7919) % 26);
  for (int round = 0; round < 2; ++round) {
    auto got = RunClient<std::string>([&]() -> Task<std::string> {
      auto ex = co_await client->Send(ts.origin, Post("/big", sent));
      EXPECT_TRUE(ex.ok()) << ex.status().ToString();
      if (!ex.ok()) co_return std::string();
      std::string body;
      auto st = co_await (*ex)->ReadAll(body);
      EXPECT_TRUE(st.ok()) << st.ToString();
      co_return body;
    });
    ASSERT_EQ(got.size(), 2 * sent.size()) << "round " << round;
    EXPECT_TRUE(got.compare(0, sent.size(), sent) == 0) << "round " << round;
    EXPECT_TRUE(got.compare(sent.size(), sent.size(), sent) == 0) << "round " << round;
  }
  EXPECT_EQ(client->connections_opened(), 1u);
}

// A server that answers one request per connection as keep-alive, then closes the
// connection anyway (as servers do on their idle timeout), `connections` times.
class OneShotServer {
 public:
  explicit OneShotServer(int connections) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    origin.host = "127.0.0.1";
    origin.port = ntohs(a.sin_port);
    thread_ = std::thread([this, connections] {
      for (int i = 0; i < connections; ++i) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        std::string got;
        char buf[4096];
        // The client's requests carry a 2-byte body: read to the end of it.
        while (got.find("\r\n\r\n") == std::string::npos ||
               got.size() < got.find("\r\n\r\n") + 4 + 2) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          got.append(buf, static_cast<size_t>(n));
        }
        const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        (void)::send(c, resp, sizeof resp - 1, MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~OneShotServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  Origin origin;

 private:
  int fd_;
  std::thread thread_;
};

// A pooled connection the server has closed is never an error for the caller: whether the
// client trusts a recently used connection (no probe) or probes it first, the second
// request is answered, on a new connection.
TEST_F(HttpTest, ReusedConnectionClosedByServerIsReplaced) {
  for (auto probe_after : {core::Nanos(std::chrono::hours(1)), core::Nanos::zero()}) {
    OneShotServer upstream(2);
    ClientOptions o;
    o.probe_idle_after = probe_after;
    auto client = NewClient(o);
    auto bodies = RunClient<std::vector<std::string>>([&]() -> Task<std::vector<std::string>> {
      std::vector<std::string> out;
      for (int i = 0; i < 2; ++i) {
        auto ex = co_await client->Send(upstream.origin, Post("/x", "{}"));
        if (!ex.ok()) {
          out.push_back(ex.status().ToString());
          continue;
        }
        std::string body;
        EXPECT_TRUE((co_await (*ex)->ReadAll(body)).ok());
        out.push_back(body);
      }
      co_return out;
    });
    EXPECT_EQ(bodies, (std::vector<std::string>{"ok", "ok"}))
        << "probe_idle_after " << probe_after.count() << " ns";
    EXPECT_EQ(client->connections_opened(), 2u);
  }
}

TEST_F(HttpTest, StreamsChunksAsWritten) {
  TestServer ts([](Request&, ResponseWriter& w) -> Task<void> {
    const HeaderList h{{"Content-Type", "text/event-stream"}};
    co_await w.StartStream(200, h);
    for (int i = 0; i < 5; ++i) co_await w.WriteChunk("data: " + std::to_string(i) + "\n\n");
    co_await w.FinishStream();
  });
  auto client = NewClient();
  auto pieces = RunClient<std::string>([&]() -> Task<std::string> {
    auto ex = co_await client->Send(ts.origin, Post("/s", "{}"));
    EXPECT_TRUE(ex.ok());
    EXPECT_EQ((*ex)->header("content-type").value_or(""), "text/event-stream");
    std::string all;
    for (;;) {
      auto p = co_await (*ex)->ReadSome();
      EXPECT_TRUE(p.ok());
      if (!p.ok() || p->empty()) break;
      all += *p;
    }
    co_return all;
  });
  EXPECT_EQ(pieces, "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
}

TEST_F(HttpTest, RejectsOversizedBodyWith413) {
  ServerOptions o;
  o.max_body_bytes = 100;
  TestServer ts(
      [](Request&, ResponseWriter& w) -> Task<void> { co_await w.Send(200, HeaderList(), "ok"); },
      o);
  auto client = NewClient();
  int status = RunClient<int>([&]() -> Task<int> {
    auto ex = co_await client->Send(ts.origin, Post("/", std::string(1000, 'x')));
    EXPECT_TRUE(ex.ok());
    std::string body;
    (void)co_await (*ex)->ReadAll(body);
    EXPECT_NE(body.find("exceeds the configured limit"), std::string::npos);
    co_return (*ex)->status();
  });
  EXPECT_EQ(status, 413);
}

TEST_F(HttpTest, OversizedBodyCanBeAnsweredByTheHandler) {
  ServerOptions o;
  o.max_body_bytes = 100;
  o.pass_body_too_large = true;
  TestServer ts(
      [](Request& req, ResponseWriter& w) -> Task<void> {
        const HeaderList h{{"Content-Type", "text/plain"}};
        if (req.body_too_large()) {
          co_await w.Send(413, h, "mine: " + std::string(req.path()));
        } else {
          co_await w.Send(200, h, req.body());
        }
      },
      o);
  auto client = NewClient();
  auto got = RunClient<std::pair<int, std::string>>([&]() -> Task<std::pair<int, std::string>> {
    auto small = co_await client->Send(ts.origin, Post("/ok", "tiny"));
    std::string b1;
    (void)co_await (*small)->ReadAll(b1);
    EXPECT_EQ(b1, "tiny");
    auto ex = co_await client->Send(ts.origin, Post("/v1/messages", std::string(1000, 'x')));
    EXPECT_TRUE(ex.ok());
    std::string body;
    (void)co_await (*ex)->ReadAll(body);
    EXPECT_EQ((*ex)->header("connection").value_or(""), "close");
    co_return std::make_pair((*ex)->status(), body);
  });
  EXPECT_EQ(got.first, 413);
  EXPECT_EQ(got.second, "mine: /v1/messages");
}

TEST_F(HttpTest, MalformedRequestGets400) {
  TestServer ts(
      [](Request&, ResponseWriter& w) -> Task<void> { co_await w.Send(200, HeaderList(), "ok"); });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(ts.origin.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const char bad[] = "GARBAGE\x01 / HTTP/1.1\r\n\r\n";
  ASSERT_GT(::send(fd, bad, sizeof bad - 1, 0), 0);
  char buf[512] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, MSG_WAITALL);
  ::close(fd);
  ASSERT_GT(n, 0);
  EXPECT_TRUE(std::string_view(buf).starts_with("HTTP/1.1 400")) << buf;
}

TEST_F(HttpTest, UnreachableUpstreamIsUnavailable) {
  // Bind then close a socket to find a port nothing listens on.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  Origin o{false, "127.0.0.1", ntohs(a.sin_port), ""};
  auto client = NewClient();
  auto st = RunClient<core::Status>([&]() -> Task<core::Status> {
    auto ex = co_await client->Send(o, Post("/", "{}"));
    co_return ex.status();
  });
  EXPECT_EQ(st.code(), core::StatusCode::kUnavailable) << st.ToString();
  EXPECT_NE(st.message().find("cannot connect"), std::string::npos);
  EXPECT_EQ(client->connect_errors(), 1u);
}

TEST_F(HttpTest, FirstByteTimeout) {
  TestServer ts([](Request&, ResponseWriter& w) -> Task<void> {
    co_await SleepFor(5s);
    co_await w.Send(200, HeaderList(), "late");
  });
  ClientOptions co;
  co.first_byte_timeout = 50ms;
  auto client = NewClient(co);
  auto st = RunClient<core::Status>([&]() -> Task<core::Status> {
    auto ex = co_await client->Send(ts.origin, Post("/", "{}"));
    co_return ex.status();
  });
  EXPECT_EQ(st.code(), core::StatusCode::kDeadlineExceeded) << st.ToString();
}

TEST_F(HttpTest, AbortedStreamIsTruncated) {
  TestServer ts([](Request&, ResponseWriter& w) -> Task<void> {
    const HeaderList h{{"Content-Type", "text/event-stream"}};
    co_await w.StartStream(200, h);
    co_await w.WriteChunk("data: partial\n\n");
    w.Abort();
  });
  auto client = NewClient();
  auto result =
      RunClient<std::pair<std::string, bool>>([&]() -> Task<std::pair<std::string, bool>> {
        auto ex = co_await client->Send(ts.origin, Post("/", "{}"));
        EXPECT_TRUE(ex.ok());
        std::string got;
        for (;;) {
          auto p = co_await (*ex)->ReadSome();
          if (!p.ok()) co_return std::make_pair(got, (*ex)->truncated());
          if (p->empty()) break;
          got += *p;
        }
        co_return std::make_pair(got, false);
      });
  EXPECT_EQ(result.first, "data: partial\n\n");
  EXPECT_TRUE(result.second);
}

TEST_F(HttpTest, DetectsClientGoneWhileHandlerWaits) {
  std::promise<void> gone;
  auto gone_future = gone.get_future();
  TestServer ts([&](Request&, ResponseWriter& w) -> Task<void> {
    bool fired = false;
    w.WatchClientGone([&] {
      fired = true;
      gone.set_value();
    });
    for (int i = 0; i < 200 && !fired; ++i) co_await SleepFor(10ms);
    if (!fired) co_await w.Send(200, HeaderList(), "nobody noticed");
  });
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(ts.origin.port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const char req[] = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
  ASSERT_GT(::send(fd, req, sizeof req - 1, 0), 0);
  ::shutdown(fd, SHUT_WR);
  ::close(fd);
  EXPECT_EQ(gone_future.wait_for(5s), std::future_status::ready);
}

TEST_F(HttpTest, CancelFailsPendingRead) {
  TestServer ts([](Request&, ResponseWriter& w) -> Task<void> {
    co_await w.StartStream(200, HeaderList());
    co_await w.WriteChunk("first");
    co_await SleepFor(5s);
    co_await w.FinishStream();
  });
  auto client = NewClient();
  auto st = RunClient<core::Status>([&]() -> Task<core::Status> {
    auto ex = co_await client->Send(ts.origin, Post("/", "{}"));
    EXPECT_TRUE(ex.ok());
    auto first = co_await (*ex)->ReadSome();
    EXPECT_TRUE(first.ok());
    (*ex)->Cancel();
    auto next = co_await (*ex)->ReadSome();
    co_return next.status();
  });
  EXPECT_EQ(st.code(), core::StatusCode::kCancelled);
}

}  // namespace
}  // namespace llmscope::http
