// The upstream client verifies TLS certificates: a server whose certificate no trusted CA
// signed is refused, and the same server is accepted once its CA is configured (ca_file).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>

#include "http/client.h"

namespace llmscope::http {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

// A one-thread TLS server answering every request with a fixed 200, using a self-signed
// certificate for 127.0.0.1 made with the openssl command line.
class TlsServer {
 public:
  explicit TlsServer(const std::string& dir) : ctx_(ssl::context::tls_server) {
    cert_ = dir + "/cert.pem";
    std::string key = dir + "/key.pem";
    std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout " +
        key + " -out " + cert_ + " >/dev/null 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
    if (!ok_) return;
    ctx_.use_certificate_chain_file(cert_);
    ctx_.use_private_key_file(key, ssl::context::pem);
    acceptor_.emplace(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port_ = acceptor_->local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~TlsServer() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  bool ok() const { return ok_; }
  uint16_t port() const { return port_; }
  const std::string& cert() const { return cert_; }

 private:
  Task<void> Accept() {
    for (;;) {
      auto [ec, sock] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, Serve(std::move(sock)), asio::detached);
    }
  }
  Task<void> Serve(tcp::socket sock) {
    ssl::stream<tcp::socket> s(std::move(sock), ctx_);
    auto [hec] =
        co_await s.async_handshake(ssl::stream_base::server, asio::as_tuple(asio::use_awaitable));
    if (hec) co_return;
    asio::streambuf buf;
    auto [rec, n] =
        co_await asio::async_read_until(s, buf, "\r\n\r\n", asio::as_tuple(asio::use_awaitable));
    if (rec) co_return;
    static constexpr char kResp[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nsecure";
    co_await asio::async_write(s, asio::buffer(kResp, sizeof kResp - 1),
                               asio::as_tuple(asio::use_awaitable));
  }

  asio::io_context io_;
  ssl::context ctx_;
  std::optional<tcp::acceptor> acceptor_;
  std::thread thread_;
  std::string cert_;
  uint16_t port_ = 0;
  bool ok_ = false;
};

// Status and body of one GET through a fresh client.
using Fetched = std::pair<core::Status, std::string>;

core::Result<std::string> Fetch(const Origin& o, const ClientOptions& opts) {
  asio::io_context io;
  auto c = Client::Create(opts);
  if (!c.ok()) return c.status();
  auto client = std::move(c).value();
  // The lambda must outlive its coroutine (it holds the captures): keep it in a local.
  auto fetch = [&]() -> Task<Fetched> {
    ClientRequest req;
    req.target = "/";
    auto ex = co_await client->Send(o, std::move(req));
    if (!ex.ok()) co_return Fetched{ex.status(), ""};
    std::string body;
    auto st = co_await (*ex)->ReadAll(body);
    co_return Fetched{st, body};
  };
  auto fut = asio::co_spawn(io, fetch(), asio::use_future);
  while (fut.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.run_one_for(std::chrono::seconds(30)) == 0) break;
  }
  client->Shutdown();
  auto [st, body] = fut.get();
  if (!st.ok()) return st;
  return body;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("llmscope-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    server_ = std::make_unique<TlsServer>(dir_.string());
    if (!server_->ok()) GTEST_SKIP() << "openssl command line not available";
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<TlsServer> server_;
};

TEST_F(TlsTest, RefusesUntrustedCertificate) {
  Origin o{true, "127.0.0.1", server_->port(), ""};
  auto r = Fetch(o, ClientOptions{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("TLS handshake failed"), std::string::npos)
      << r.status().message();
}

TEST_F(TlsTest, AcceptsCertificateFromConfiguredCa) {
  ClientOptions opts;
  opts.ca_file = server_->cert();
  Origin o{true, "127.0.0.1", server_->port(), ""};
  auto r = Fetch(o, opts);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, "secure");
}

TEST_F(TlsTest, UnreadableCaFileIsAConfigError) {
  ClientOptions opts;
  opts.ca_file = (dir_ / "missing.pem").string();
  auto c = Client::Create(opts);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("missing.pem"), std::string::npos);
}

}  // namespace
}  // namespace llmscope::http
