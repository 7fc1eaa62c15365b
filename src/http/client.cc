#include "http/client.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <deque>
#include <unordered_map>

#include "http/socket_io.h"

namespace llmscope::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using SteadyPoint = std::chrono::steady_clock::time_point;

namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kBodyChunk = 16 << 10;
}  // namespace

core::Result<Origin> Origin::Parse(std::string_view url) {
  Origin o;
  std::string_view rest = url;
  if (rest.starts_with("https://")) {
    o.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return core::InvalidArgument("base URL '" + std::string(url) +
                                 "' must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  o.base_path = std::string(path);
  o.port = o.tls ? 443 : 80;
  std::string_view host = hostport;
  if (!hostport.empty() && hostport.front() == '[') {  // [v6]:port
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) {
      return core::InvalidArgument("base URL '" + std::string(url) + "' has a bad IPv6 host");
    }
    host = hostport.substr(1, close - 1);
    hostport.remove_prefix(close + 1);
    if (!hostport.empty() && hostport.front() != ':') {
      return core::InvalidArgument("base URL '" + std::string(url) + "' has a bad port");
    }
  } else {
    size_t colon = hostport.rfind(':');
    if (colon != std::string_view::npos) {
      host = hostport.substr(0, colon);
      hostport.remove_prefix(colon);
    } else {
      hostport = {};
    }
  }
  if (!hostport.empty()) {  // ":port"
    std::string_view p = hostport.substr(1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
      return core::InvalidArgument("base URL '" + std::string(url) + "' has a bad port");
    }
    o.port = static_cast<uint16_t>(v);
  }
  if (host.empty()) {
    return core::InvalidArgument("base URL '" + std::string(url) + "' has no host");
  }
  o.host = std::string(host);
  return o;
}

std::string Origin::Key() const {
  return (tls ? "https://" : "http://") + host + ":" + std::to_string(port);
}

// One upstream connection, plain or TLS, with a lazily re-armed deadline: moving the
// deadline later is a store; the watchdog re-checks when its timer fires. On expiry it
// closes the socket, which fails whatever operation is pending.
// Thread-safety: one event loop.
class UpstreamConn : public std::enable_shared_from_this<UpstreamConn> {
 public:
  UpstreamConn(asio::any_io_executor ex, ssl::context* tls_ctx)
      : socket_(ex), resolver_(ex), timer_(ex) {
    if (tls_ctx) tls_.emplace(socket_, *tls_ctx);
    // Beast reads at most the buffer's free capacity (512 bytes when empty): reserve room
    // so that a burst of SSE events arrives in one read, not one per 512 bytes.
    buffer_.reserve(kBodyChunk);
  }

  bool is_tls() const { return tls_.has_value(); }
  bool open() const { return socket_.is_open() && !closed_; }
  bool timed_out() const { return timed_out_; }

  void StartWatchdog() {
    timer_.expires_at(SteadyPoint::max());
    asio::co_spawn(timer_.get_executor(), Watch(shared_from_this()), asio::detached);
  }

  void SetDeadline(core::Nanos from_now) {
    deadline_ = std::chrono::steady_clock::now() + from_now;
    if (deadline_ < timer_.expiry()) timer_.expires_at(deadline_);  // wakes the watchdog
  }
  void ClearDeadline() { deadline_ = SteadyPoint::max(); }
  void MarkReleased(SteadyPoint now) { released_at_ = now; }

  void Close() {
    closed_ = true;
    boost::system::error_code ec;
    resolver_.cancel();
    if (socket_.is_open()) {
      socket_.shutdown(tcp::socket::shutdown_both, ec);
      socket_.close(ec);
    }
    timer_.cancel();
  }

  // True when the pooled connection still looks usable: not closed by the peer, nothing
  // unexpected waiting to be read. One released less than `probe_after` ago is trusted
  // without the peek.
  bool LooksAlive(SteadyPoint now, core::Nanos probe_after) {
    if (!open()) return false;
    if (now - released_at_ < probe_after) return true;
    char b;
    ssize_t n = ::recv(socket_.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  Task<core::Status> Connect(const Origin& origin, const ClientOptions& opts) {
    SetDeadline(opts.connect_timeout);
    auto [rec, results] =
        co_await resolver_.async_resolve(origin.host, std::to_string(origin.port), kNoThrow);
    if (rec) co_return Failure(origin, "cannot resolve host", rec);
    auto [cec, ep] = co_await asio::async_connect(socket_, results, kNoThrow);
    if (cec) co_return Failure(origin, "cannot connect", cec);
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // for detail::WriteNow; async operations are unaffected
    if (tls_) {
      if (!SSL_set_tlsext_host_name(tls_->native_handle(), origin.host.c_str())) {
        co_return core::Unavailable("cannot set TLS server name for " + origin.Key());
      }
      if (opts.verify_tls) tls_->set_verify_callback(ssl::host_name_verification(origin.host));
      auto [hec] = co_await tls_->async_handshake(ssl::stream_base::client, kNoThrow);
      if (hec) co_return Failure(origin, "TLS handshake failed", hec);
    }
    ClearDeadline();
    co_return core::Status::Ok();
  }

  template <typename Buffers>
  Task<boost::system::error_code> Write(const Buffers& bufs) {
    if (tls_) {
      auto [ec, n] = co_await asio::async_write(*tls_, bufs, kNoThrow);
      co_return ec;
    }
    boost::system::error_code ec;
    auto rest = detail::WriteNow(socket_, bufs, ec);
    if (asio::buffer_size(rest) > 0) {
      auto [wec, wn] = co_await asio::async_write(socket_, rest, kNoThrow);
      ec = wec;
    }
    co_return ec;
  }

  using Parser = beast::http::response_parser<beast::http::buffer_body>;

  Task<boost::system::error_code> ReadHeader(Parser& p) {
    if (tls_) {
      auto [ec, n] = co_await beast::http::async_read_header(*tls_, buffer_, p, kNoThrow);
      co_return ec;
    }
    auto [ec, n] = co_await beast::http::async_read_header(socket_, buffer_, p, kNoThrow);
    co_return ec;
  }

  Task<boost::system::error_code> ReadSome(Parser& p) {
    if (tls_) {
      auto [ec, n] = co_await beast::http::async_read_some(*tls_, buffer_, p, kNoThrow);
      co_return ec;
    }
    auto [ec, n] = co_await beast::http::async_read_some(socket_, buffer_, p, kNoThrow);
    co_return ec;
  }

  // Parses body bytes already received into the parser's body buffer without another read,
  // so that one ReadSome returns every chunk that arrived together (an SSE burst becomes one
  // client write instead of one per event).
  void DrainBuffered(Parser& p) {
    boost::system::error_code ec;
    while (buffer_.size() > 0 && !p.is_done() && p.get().body().size > 0) {
      size_t n = p.put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec || n == 0) break;  // need_more / need_buffer: wait for the next read
    }
  }

  std::optional<Parser> parser;
  char body_buf[kBodyChunk];
  size_t bytes_received = 0;  // response bytes seen on this exchange (for the stale retry)

 private:
  core::Status Failure(const Origin& origin, std::string_view what,
                       const boost::system::error_code& ec) {
    if (timed_out_) {
      return {core::StatusCode::kDeadlineExceeded, "timed out connecting to " + origin.Key()};
    }
    std::string detail = ec.message();
    if (ec.category() == asio::error::get_ssl_category()) {
      char buf[256];
      ERR_error_string_n(static_cast<unsigned long>(ec.value()), buf, sizeof buf);
      detail = buf;
    }
    return core::Unavailable(std::string(what) + " " + origin.Key() + ": " + detail);
  }

  static Task<void> Watch(std::shared_ptr<UpstreamConn> self) {
    for (;;) {
      (void)co_await self->timer_.async_wait(kNoThrow);
      if (self->closed_) co_return;
      auto now = std::chrono::steady_clock::now();
      if (self->deadline_ != SteadyPoint::max() && now >= self->deadline_) {
        self->timed_out_ = true;
        self->Close();
        co_return;
      }
      self->timer_.expires_at(self->deadline_);
    }
  }

  tcp::socket socket_;
  std::optional<ssl::stream<tcp::socket&>> tls_;
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  SteadyPoint deadline_ = SteadyPoint::max();
  SteadyPoint released_at_{};  // when it last went back to the pool
  bool timed_out_ = false;
  bool closed_ = false;
};

class ClientImpl {
 public:
  explicit ClientImpl(ClientOptions o) : options(std::move(o)), tls_ctx(ssl::context::tls_client) {}

  ~ClientImpl() { CloseIdle(); }

  void CloseIdle() {
    for (auto& [key, conns] : idle) {
      for (auto& c : conns) c->Close();
    }
    idle.clear();
  }

  std::shared_ptr<UpstreamConn> TakeIdle(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    auto& q = it->second;
    const auto now = std::chrono::steady_clock::now();
    while (!q.empty()) {
      auto c = std::move(q.back());  // most recently used: least likely to be closed
      q.pop_back();
      if (c->LooksAlive(now, options.probe_idle_after)) return c;
      c->Close();
    }
    return nullptr;
  }

  void Release(std::shared_ptr<UpstreamConn> c, const std::string& key) {
    auto& q = idle[key];
    if (shut_down || q.size() >= options.max_idle_per_origin || !c->open()) {
      c->Close();
      return;
    }
    c->ClearDeadline();
    c->MarkReleased(std::chrono::steady_clock::now());
    q.push_back(std::move(c));
  }

  ClientOptions options;
  ssl::context tls_ctx;
  std::unordered_map<std::string, std::deque<std::shared_ptr<UpstreamConn>>> idle;
  uint64_t opened = 0;
  uint64_t connect_errors = 0;
  bool shut_down = false;
};

Client::Client(std::unique_ptr<ClientImpl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

core::Result<std::unique_ptr<Client>> Client::Create(ClientOptions options) {
  auto impl = std::make_unique<ClientImpl>(std::move(options));
  boost::system::error_code ec;
  impl->tls_ctx.set_default_verify_paths(ec);
  if (ec) return core::Unavailable("cannot load the system CA certificates: " + ec.message());
  if (!impl->options.ca_file.empty()) {
    impl->tls_ctx.load_verify_file(impl->options.ca_file, ec);
    if (ec) {
      return core::InvalidArgument("cannot load ca_file '" + impl->options.ca_file +
                                   "': " + ec.message());
    }
  }
  impl->tls_ctx.set_verify_mode(impl->options.verify_tls ? ssl::verify_peer : ssl::verify_none);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::Shutdown() {
  impl_->shut_down = true;
  impl_->CloseIdle();
}

uint64_t Client::connections_opened() const { return impl_->opened; }
uint64_t Client::connect_errors() const { return impl_->connect_errors; }

namespace {
void AppendRequestHead(std::string& out, const Origin& origin, const ClientRequest& req) {
  out.reserve(256 + req.target.size() + req.raw_headers.size());
  out += req.method;
  out += ' ';
  out += req.target;
  out += " HTTP/1.1\r\nHost: ";
  out += origin.host;
  if (origin.port != (origin.tls ? 443 : 80)) {
    out += ':';
    out += std::to_string(origin.port);
  }
  out += "\r\n";
  for (const auto& [name, value] : req.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += req.raw_headers;
  out += "Content-Length: ";
  out += std::to_string(req.body.size());
  out += "\r\n\r\n";
}
}  // namespace

Task<core::Result<std::unique_ptr<Exchange>>> Client::Send(const Origin& origin, ClientRequest req,
                                                           Cancellation* cancel) {
  auto cancelled = [] { return core::Status(core::StatusCode::kCancelled, "request cancelled"); };
  if (cancel && cancel->cancelled()) co_return cancelled();
  ClientImpl& impl = *impl_;
  const std::string key = origin.Key();
  std::string head;
  AppendRequestHead(head, origin, req);
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto conn = impl.TakeIdle(key);
    const bool reused = conn != nullptr;
    if (!conn) {
      conn = std::make_shared<UpstreamConn>(co_await asio::this_coro::executor,
                                            origin.tls ? &impl.tls_ctx : nullptr);
      conn->StartWatchdog();
    }
    if (cancel) {
      cancel->on_cancel_ = [w = std::weak_ptr<UpstreamConn>(conn)] {
        if (auto c = w.lock()) c->Close();
      };
    }
    if (!reused) {
      core::Status st = co_await conn->Connect(origin, impl.options);
      if (cancel && cancel->cancelled()) {
        conn->Close();
        co_return cancelled();
      }
      if (!st.ok()) {
        ++impl.connect_errors;
        conn->Close();
        co_return st;
      }
      ++impl.opened;
    }
    conn->SetDeadline(impl.options.first_byte_timeout);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(req.body)};
    auto wec = co_await conn->Write(bufs);
    if (cancel && cancel->cancelled()) {
      conn->Close();
      co_return cancelled();
    }
    if (wec) {
      bool timed_out = conn->timed_out();
      conn->Close();
      if (reused && !timed_out) continue;  // the server closed an idle connection: retry
      if (timed_out) {
        co_return core::Status(core::StatusCode::kDeadlineExceeded,
                               "timed out sending the request to " + key);
      }
      co_return core::Unavailable("cannot send the request to " + key + ": " + wec.message());
    }
    conn->parser.emplace();
    conn->parser->header_limit(64 << 10);
    conn->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    auto hec = co_await conn->ReadHeader(*conn->parser);
    if (cancel && cancel->cancelled()) {
      conn->Close();
      co_return cancelled();
    }
    if (hec) {
      bool timed_out = conn->timed_out();
      conn->Close();
      if (timed_out) {
        co_return core::Status(core::StatusCode::kDeadlineExceeded,
                               "timed out waiting for the response from " + key);
      }
      if (reused && (hec == beast::http::error::end_of_stream || hec == asio::error::eof ||
                     hec == asio::error::connection_reset)) {
        continue;  // stale keep-alive connection closed before answering: retry once
      }
      co_return core::Unavailable("no response from " + key + ": " + hec.message());
    }
    auto ex = std::unique_ptr<Exchange>(new Exchange());
    ex->conn_ = conn;
    ex->client_ = &impl;
    ex->key_ = key;
    if (cancel) {
      Exchange* raw = ex.get();
      ex->cancel_ = cancel;  // the exchange unhooks itself when destroyed
      cancel->on_cancel_ = [raw] { raw->Cancel(); };
    }
    const auto& msg = conn->parser->get();
    ex->status_ = static_cast<int>(msg.result_int());
    ex->headers_.reserve(16);
    for (const auto& f : msg) {
      ex->headers_.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    conn->SetDeadline(impl.options.idle_timeout);
    co_return ex;
  }
  co_return core::Unavailable("upstream " + key + " closed the connection twice");
}

Exchange::~Exchange() {
  if (cancel_) cancel_->on_cancel_ = nullptr;
  if (!conn_) return;
  if (done_ && !cancelled_ && conn_->parser && conn_->parser->keep_alive()) {
    conn_->parser.reset();
    client_->Release(std::move(conn_), key_);
    return;
  }
  conn_->Close();
}

std::optional<std::string_view> Exchange::header(std::string_view name) const {
  for (const auto& [n, v] : headers_) {
    if (HeaderNameEquals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

void Exchange::Cancel() {
  cancelled_ = true;
  if (conn_) conn_->Close();
}

Task<core::Result<std::string_view>> Exchange::ReadSome() {
  if (done_) co_return std::string_view();
  if (cancelled_) co_return core::Status(core::StatusCode::kCancelled, "exchange cancelled");
  auto& conn = *conn_;
  auto& p = *conn.parser;
  for (;;) {
    if (p.is_done()) {
      done_ = true;
      co_return std::string_view();
    }
    p.get().body().data = conn.body_buf;
    p.get().body().size = kBodyChunk;
    p.get().body().more = true;
    // Body bytes that came with the header or the last read are parsed without a read:
    // an async read that completes at once costs a trip through the event loop's queue.
    conn.DrainBuffered(p);
    if (size_t n = kBodyChunk - p.get().body().size; n > 0) {
      co_return std::string_view(conn.body_buf, n);
    }
    if (p.is_done()) continue;
    conn.SetDeadline(client_->options.idle_timeout);
    auto ec = co_await conn.ReadSome(p);
    if (ec == beast::http::error::need_buffer) ec = {};
    if (!ec) conn.DrainBuffered(p);
    size_t n = kBodyChunk - p.get().body().size;
    if (ec) {
      if (cancelled_) co_return core::Status(core::StatusCode::kCancelled, "exchange cancelled");
      if (conn.timed_out()) {
        co_return core::Status(core::StatusCode::kDeadlineExceeded,
                               "timed out waiting for more of the response body");
      }
      truncated_ = true;
      conn.Close();
      co_return core::Unavailable("upstream response truncated: " + ec.message());
    }
    if (n > 0) co_return std::string_view(conn.body_buf, n);
  }
}

Task<core::Status> Exchange::ReadAll(std::string& out) {
  for (;;) {
    auto piece = co_await ReadSome();
    if (!piece.ok()) co_return piece.status();
    if (piece->empty()) co_return core::Status::Ok();
    if (out.size() + piece->size() > client_->options.max_response_bytes) {
      Cancel();
      co_return core::Status(core::StatusCode::kResourceExhausted,
                             "upstream response exceeds max_response_bytes");
    }
    out.append(*piece);
  }
}

}  // namespace llmscope::http
