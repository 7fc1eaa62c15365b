#include "http/blocking_client.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "http/server.h"

namespace llmscope::http {
namespace {

using namespace std::chrono_literals;

// A loopback server on a free port: "/echo" answers the body back with the method and
// target in headers; "/hang" never answers (until the server stops).
class BlockingClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.port = 0;
    o.threads = 2;
    server_ = std::make_unique<Server>(o, [this](Request& req, ResponseWriter& w) -> Task<void> {
      if (req.path() == "/hang") {
        hanging_.fetch_add(1);
        co_await SleepFor(60s);
        co_return;
      }
      HeaderList h;
      h.emplace_back("X-Method", std::string(req.method()));
      h.emplace_back("X-Target", std::string(req.target()));
      co_await w.Send(200, h, req.body());
    });
    ASSERT_TRUE(server_->Start().ok());
    origin_.host = "127.0.0.1";
    origin_.port = server_->port();
    auto c = BlockingClient::Create();
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(c).value();
  }
  void TearDown() override {
    client_.reset();
    server_->Stop();
  }

  static ClientRequest MakeRequest(std::string method, std::string target, std::string body) {
    ClientRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    return r;
  }

  std::unique_ptr<Server> server_;
  std::unique_ptr<BlockingClient> client_;
  Origin origin_;
  std::atomic<int> hanging_{0};
};

TEST_F(BlockingClientTest, FetchesAWholeResponse) {
  std::string body(200'000, 'x');  // larger than one read: the body arrives in pieces
  body[123] = '\0';
  auto r = client_->Fetch(origin_, MakeRequest("POST", "/echo?q=1", body), 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, body);
  EXPECT_EQ(r->header("x-method").value_or(""), "POST");
  EXPECT_EQ(r->header("X-Target").value_or(""), "/echo?q=1");
  EXPECT_FALSE(r->header("X-Absent").has_value());
}

TEST_F(BlockingClientTest, ReusesTheClientAcrossCalls) {
  for (int i = 0; i < 20; ++i) {
    auto r = client_->Fetch(origin_, MakeRequest("GET", "/echo", std::to_string(i)), 5s);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->body, std::to_string(i));
  }
}

TEST_F(BlockingClientTest, ServesManyThreadsAtOnce) {
  constexpr int kThreads = 8;
  constexpr int kCalls = 25;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string body = std::to_string(t) + ":" + std::to_string(i);
        auto r = client_->Fetch(origin_, MakeRequest("POST", "/echo", body), 10s);
        if (r.ok() && r->status == 200 && r->body == body) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kCalls);
}

TEST_F(BlockingClientTest, TimeoutGivesDeadlineExceededNamingTheLimit) {
  auto start = std::chrono::steady_clock::now();
  auto r = client_->Fetch(origin_, MakeRequest("GET", "/hang", ""), 200ms);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("200ms"), std::string::npos) << r.status().message();
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
  // The client stays usable after a cancelled exchange.
  auto again = client_->Fetch(origin_, MakeRequest("GET", "/echo", "after"), 5s);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->body, "after");
}

TEST_F(BlockingClientTest, RefusedConnectionIsUnavailable) {
  // A port that was free a moment ago and has no listener now.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  Origin closed;
  closed.host = "127.0.0.1";
  closed.port = ntohs(addr.sin_port);
  auto r = client_->Fetch(closed, MakeRequest("GET", "/", ""), 5s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kUnavailable) << r.status().ToString();
}

TEST_F(BlockingClientTest, ServerStoppingBetweenCallsIsSurvived) {
  auto first = client_->Fetch(origin_, MakeRequest("GET", "/echo", "one"), 5s);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  server_->Stop();  // the pooled connection dies with it
  auto down = client_->Fetch(origin_, MakeRequest("GET", "/echo", "two"), 5s);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), core::StatusCode::kUnavailable) << down.status().ToString();
}

}  // namespace
}  // namespace llmscope::http
