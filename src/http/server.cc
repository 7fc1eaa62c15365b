#include "http/server.h"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <deque>
#include <future>
#include <list>
#include <mutex>
#include <optional>

#include "http/socket_io.h"

namespace llmscope::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
namespace {
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
}  // namespace

std::string_view Request::path() const {
  auto q = target_.find('?');
  return q == std::string::npos ? std::string_view(target_)
                                : std::string_view(target_).substr(0, q);
}

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& h : headers_) {
    if (HeaderNameEquals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

class Connection;

// Per event loop: the connections whose handler asked for a client-gone watch, in the order
// they asked, each armed once it has waited ServerOptions::client_gone_watch_delay. Most
// calls end before that, so one timer per loop replaces an epoll_ctl, a coroutine and its
// cancellation per request.
// Thread-safety: used from its event loop only.
class WatchQueue {
 public:
  WatchQueue(asio::io_context& io, core::Nanos delay) : timer_(io), delay_(delay) {}
  core::Nanos delay() const { return delay_; }
  // `generation` identifies the request; the entry is void once the connection moved on.
  void Add(std::shared_ptr<Connection> conn, uint64_t generation);

 private:
  struct Entry {
    std::chrono::steady_clock::time_point due;
    std::shared_ptr<Connection> conn;
    uint64_t generation;
  };
  void ScheduleFront();
  void OnTimer(const boost::system::error_code& ec);

  // Ordered by `due`: every entry waits the same delay and is added at its request's time.
  std::deque<Entry> entries_;
  asio::steady_timer timer_;
  const core::Nanos delay_;
  bool timer_pending_ = false;
};

// One client connection: reads requests, hands them to the handler, writes responses.
// Thread-safety: lives on one event loop; all members touched from that loop only.
class Connection final : public ResponseWriter, public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, const ServerOptions& options, const Handler& handler, int worker,
             WatchQueue& watch_queue)
      : socket_(std::move(socket)),
        options_(options),
        handler_(handler),
        worker_(worker),
        watch_queue_(watch_queue),
        idle_timer_(socket_.get_executor()) {
    buffer_.reserve(8192);  // Beast reads at most the free capacity: read requests whole
  }

  Task<void> Run() {
    auto self = shared_from_this();
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);  // for detail::WriteNow; async operations are unaffected
    StartIdleWatch();
    while (socket_.is_open()) {
      if (!co_await ServeOne()) break;
    }
    idle_timer_.cancel();
    Close();
  }

  void Close() {
    boost::system::error_code ec;
    if (socket_.is_open()) {
      socket_.shutdown(tcp::socket::shutdown_both, ec);
      socket_.close(ec);
    }
  }

  // ResponseWriter
  Task<bool> Send(int status, const HeaderList& headers, std::string_view body) override {
    started_ = true;
    std::string head;
    head.reserve(256);
    AppendStatusLine(head, status);
    AppendHeaders(head, headers);
    head += "Content-Length: ";
    AppendNumber(head, body.size());
    head += "\r\n\r\n";
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
    co_return co_await WriteAll(bufs);
  }

  Task<bool> StartStream(int status, const HeaderList& headers) override {
    started_ = true;
    std::string head;
    head.reserve(256);
    AppendStatusLine(head, status);
    AppendHeaders(head, headers);
    head += "Transfer-Encoding: chunked\r\n\r\n";
    std::array<asio::const_buffer, 1> bufs{asio::buffer(head)};
    co_return co_await WriteAll(bufs);
  }

  Task<bool> WriteChunk(std::string_view bytes) override {
    if (bytes.empty()) co_return !client_gone_;
    char size_line[24];
    auto [end, ec] = std::to_chars(size_line, size_line + 16, bytes.size(), 16);
    end[0] = '\r';
    end[1] = '\n';
    std::array<asio::const_buffer, 3> bufs{
        asio::buffer(size_line, static_cast<size_t>(end + 2 - size_line)), asio::buffer(bytes),
        asio::buffer("\r\n", 2)};
    co_return co_await WriteAll(bufs);
  }

  Task<bool> FinishStream() override {
    std::array<asio::const_buffer, 1> bufs{asio::buffer("0\r\n\r\n", 5)};
    co_return co_await WriteAll(bufs);
  }

  void Abort() override {
    aborted_ = true;
    Close();
  }

  void WatchClientGone(std::function<void()> on_gone) override {
    on_gone_ = std::move(on_gone);
    if (watching_ || watch_queued_) return;
    if (watch_queue_.delay() <= core::Nanos::zero()) {
      ArmWatch();
      return;
    }
    watch_queued_ = true;
    watch_queue_.Add(shared_from_this(), generation_);
  }

  // The watch queue's turn: arm the watch if the same request is still being handled.
  void ArmQueuedWatch(uint64_t generation) {
    if (generation != generation_) return;  // that request has ended
    watch_queued_ = false;
    if (in_handler_ && on_gone_ && !watching_ && socket_.is_open()) ArmWatch();
  }

  bool client_gone() const override { return client_gone_; }
  bool started() const override { return started_; }

 private:
  // Waits until the socket is readable while a handler works. Readable with zero bytes
  // pending means the client closed: tell the handler once. Readable with bytes means a
  // pipelined request: stop watching, the next read takes it.
  static Task<void> WatchLoop(std::shared_ptr<Connection> self) {
    auto [ec] = co_await self->socket_.async_wait(tcp::socket::wait_read, kNoThrow);
    self->watching_ = false;
    if (ec || !self->in_handler_) co_return;
    char probe;
    ssize_t n = ::recv(self->socket_.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      self->client_gone_ = true;
      if (self->on_gone_) {
        auto fn = std::move(self->on_gone_);
        self->on_gone_ = nullptr;
        fn();
      }
    }
  }

  void ArmWatch() {
    watching_ = true;
    asio::co_spawn(socket_.get_executor(), WatchLoop(shared_from_this()), asio::detached);
  }

  void StopWatch() {
    on_gone_ = nullptr;
    ++generation_;  // voids a queued watch of this request
    watch_queued_ = false;
    if (watching_) {
      boost::system::error_code ec;
      socket_.cancel(ec);  // only the readiness wait is pending between requests
    }
  }

  template <typename Buffers>
  Task<bool> WriteAll(const Buffers& bufs) {
    if (client_gone_ || !socket_.is_open()) co_return false;
    boost::system::error_code ec;
    auto rest = detail::WriteNow(socket_, bufs, ec);
    if (asio::buffer_size(rest) > 0) {
      auto [wec, wn] = co_await asio::async_write(socket_, rest, kNoThrow);
      ec = wec;
    }
    if (ec) {
      client_gone_ = true;
      co_return false;
    }
    co_return true;
  }

  static void AppendNumber(std::string& out, size_t v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, end);
  }

  void AppendStatusLine(std::string& out, int status) {
    out += "HTTP/1.1 ";
    AppendNumber(out, static_cast<size_t>(status));
    out += ' ';
    out += ReasonPhrase(status);
    out += "\r\n";
    if (!keep_alive_) out += "Connection: close\r\n";
  }

  static void AppendHeaders(std::string& out, const HeaderList& headers) {
    for (const auto& [name, value] : headers) {
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    }
  }

  // The keep-alive idle timeout: a lazy deadline checked when the timer fires, so that
  // moving the deadline per request is a store rather than a timer cancel.
  void StartIdleWatch() {
    idle_deadline_ = std::chrono::steady_clock::now() + options_.idle_timeout;
    asio::co_spawn(socket_.get_executor(), IdleLoop(shared_from_this()), asio::detached);
  }

  static Task<void> IdleLoop(std::shared_ptr<Connection> self) {
    while (self->socket_.is_open()) {
      self->idle_timer_.expires_at(self->idle_deadline_);
      auto [ec] = co_await self->idle_timer_.async_wait(kNoThrow);
      if (ec || !self->socket_.is_open()) co_return;
      if (self->in_handler_) {
        self->idle_deadline_ = std::chrono::steady_clock::now() + self->options_.idle_timeout;
        continue;
      }
      if (std::chrono::steady_clock::now() >= self->idle_deadline_) {
        self->Close();
        co_return;
      }
    }
  }

  // Feeds the bytes already in buffer_ to the parser. need_more is not an error: the rest
  // is read as usual.
  boost::system::error_code ParseBuffered(
      beast::http::request_parser<beast::http::string_body>& parser) {
    boost::system::error_code ec;
    parser.eager(true);
    while (buffer_.size() > 0 && !parser.is_done()) {
      const size_t n = parser.put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == beast::http::error::need_more) return {};
      if (ec || n == 0) break;
    }
    return ec;
  }

  static bool ExpectsContinue(const beast::http::request<beast::http::string_body>& msg) {
    auto it = msg.find(beast::http::field::expect);
    return it != msg.end() && beast::iequals(it->value(), "100-continue");
  }

  // Copies the parsed request into `req`, reusing its buffers. The header views point into
  // one block reserved to its final size first, so appending never moves what they see.
  void FillRequest(beast::http::request<beast::http::string_body>& msg, bool too_large,
                   Request& req) {
    req.method_.assign(msg.method_string());
    req.target_.assign(msg.target());
    size_t total = 0;
    for (const auto& f : msg) total += f.name_string().size() + f.value().size();
    req.header_block_.clear();
    req.header_block_.reserve(total);
    req.headers_.clear();
    for (const auto& f : msg) {
      const size_t a = req.header_block_.size();
      req.header_block_.append(f.name_string().data(), f.name_string().size());
      const size_t b = req.header_block_.size();
      req.header_block_.append(f.value().data(), f.value().size());
      const std::string_view block(req.header_block_);
      req.headers_.push_back({block.substr(a, b - a), block.substr(b, f.value().size())});
    }
    req.body_too_large_ = too_large;
    if (too_large) {
      req.body_.clear();
    } else {
      req.body_ = std::move(msg.body());
    }
    req.worker_ = worker_;
  }

  Task<bool> SendError(int status, std::string_view message) {
    keep_alive_ = false;
    std::string body = "{\"error\":{\"message\":\"";
    body += message;
    body += "\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}";
    const HeaderList headers{{"Content-Type", "application/json"}};
    co_await Send(status, headers, body);
    co_return false;
  }

  // Reads and serves one request. Returns false when the connection should close.
  // The parser and the Request are members reused from request to request: the coroutine
  // frame stays small (asio recycles frames of up to about 1 KiB per thread; larger ones
  // take malloc's slow path on every request) and the Request keeps its buffers' capacity.
  Task<bool> ServeOne() {
    auto& parser = parser_.emplace();
    parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    auto [ec, n] = co_await beast::http::async_read_header(socket_, buffer_, parser, kNoThrow);
    // A body over the limit is not answered here: the handler gets the request (headers,
    // no body) marked body_too_large(), so that it can answer in its own protocol's error
    // shape and record the call. The connection closes afterwards (the body is unread).
    bool too_large = false;
    if (ec == beast::http::error::body_limit) {
      // Content-Length already over the limit: Beast stops right after the header, whose
      // fields are all parsed.
      too_large = true;
    } else if (ec) {
      if (ec == beast::http::error::header_limit) {
        co_return co_await SendError(431, "request headers exceed the configured limit");
      }
      if (ec != beast::http::error::end_of_stream && ec != asio::error::operation_aborted &&
          ec != asio::error::eof && ec != asio::error::connection_reset &&
          ec != asio::error::bad_descriptor) {
        co_return co_await SendError(400, "malformed HTTP request");
      }
      co_return false;
    }
    const auto received =
        std::chrono::time_point_cast<core::Nanos>(std::chrono::steady_clock::now());
    in_handler_ = true;  // the idle timeout does not apply while a request is in progress
    // REQUIRES for content_length(): a finished header, which a body_limit stop is not.
    if (!too_large && parser.is_header_done()) {
      if (auto len = parser.content_length(); len && *len > options_.max_body_bytes) {
        too_large = true;
      }
    }
    if (!too_large && ExpectsContinue(parser.get())) {
      auto [wec, wn] = co_await asio::async_write(
          socket_, asio::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25), kNoThrow);
      if (wec) co_return false;
    }
    if (!too_large && !parser.is_done()) {
      // The body usually arrived with the header: parse it from the buffer first, since an
      // async read that completes at once costs a trip through the event loop's queue.
      boost::system::error_code bec = ParseBuffered(parser);
      if (!bec && !parser.is_done()) {
        auto [rec, bn] = co_await beast::http::async_read(socket_, buffer_, parser, kNoThrow);
        bec = rec;
      }
      if (bec == beast::http::error::body_limit) {
        too_large = true;  // chunked body that grew past the limit
      } else if (bec) {
        in_handler_ = false;
        co_return false;
      }
    }

    Request& req = req_;
    FillRequest(parser.get(), too_large, req);
    keep_alive_ = parser.get().keep_alive() && !too_large;
    if (too_large && !options_.pass_body_too_large) {
      in_handler_ = false;
      co_return co_await SendError(413, "request body exceeds the configured limit");
    }
    req.received_at_ = received;

    started_ = false;
    client_gone_ = false;
    co_await handler_(req, *this);
    std::string().swap(req.body_);  // an idle connection holds no request body
    in_handler_ = false;
    StopWatch();
    idle_deadline_ = std::chrono::steady_clock::now() + options_.idle_timeout;
    if (aborted_ || client_gone_) co_return false;
    if (!started_) {
      const HeaderList headers{{"Content-Type", "application/json"}};
      co_await Send(500, headers,
                    "{\"error\":{\"message\":\"handler produced no response\","
                    "\"type\":\"server_error\",\"param\":null,\"code\":null}}");
    }
    co_return keep_alive_;
  }

  tcp::socket socket_;
  const ServerOptions& options_;
  const Handler& handler_;
  const int worker_;
  WatchQueue& watch_queue_;
  beast::flat_buffer buffer_;
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  Request req_;  // the request being served; reused (see ServeOne)
  asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point idle_deadline_{};
  std::function<void()> on_gone_;
  bool keep_alive_ = true;
  bool started_ = false;
  bool client_gone_ = false;
  bool aborted_ = false;
  bool watching_ = false;
  bool watch_queued_ = false;
  uint64_t generation_ = 0;  // requests served; a queued watch names the one it was for
  bool in_handler_ = false;
};

void WatchQueue::Add(std::shared_ptr<Connection> conn, uint64_t generation) {
  entries_.push_back({std::chrono::steady_clock::now() + delay_, std::move(conn), generation});
  if (!timer_pending_) ScheduleFront();
}

void WatchQueue::ScheduleFront() {
  timer_pending_ = true;
  // Fire a little after the front is due so that one wake-up serves the entries due in the
  // next eighth of the delay: under load the timer then fires a few times per delay
  // rather than once per request.
  timer_.expires_at(entries_.front().due + delay_ / 8);
  timer_.async_wait([this](const boost::system::error_code& ec) { OnTimer(ec); });
}

void WatchQueue::OnTimer(const boost::system::error_code& ec) {
  timer_pending_ = false;
  if (ec) return;  // the loop is shutting down
  const auto now = std::chrono::steady_clock::now();
  while (!entries_.empty() && entries_.front().due <= now) {
    Entry e = std::move(entries_.front());
    entries_.pop_front();
    e.conn->ArmQueuedWatch(e.generation);
  }
  if (!entries_.empty()) ScheduleFront();
}

struct Server::Impl {
  struct Worker {
    explicit Worker(core::Nanos watch_delay) : watch(io, watch_delay) {}
    asio::io_context io{1};
    WatchQueue watch;  // after `io`: destroyed first, with the connections it holds
    std::optional<tcp::acceptor> acceptor;
    std::thread thread;
  };
  ServerOptions options;
  Handler handler;
  std::function<void(int)> on_worker_stop;
  std::vector<std::unique_ptr<Worker>> workers;
  bool running = false;
  std::mutex mu;

  static Task<void> AcceptLoop(Impl* impl, Worker* w, int index) {
    for (;;) {
      auto [ec, socket] = co_await w->acceptor->async_accept(kNoThrow);
      if (ec) {
        if (ec == asio::error::operation_aborted || !w->acceptor->is_open()) co_return;
        continue;  // EMFILE and friends: keep accepting; the next accept may succeed
      }
      auto conn = std::make_shared<Connection>(std::move(socket), impl->options, impl->handler,
                                               index, w->watch);
      asio::co_spawn(w->io, conn->Run(), asio::detached);
    }
  }
};

Server::Server(ServerOptions options, Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

Server::~Server() { Stop(); }

void Server::OnWorkerStop(std::function<void(int)> hook) {
  impl_->on_worker_stop = std::move(hook);
}

int Server::threads() const { return static_cast<int>(impl_->workers.size()); }

core::Status Server::Start() {
  std::lock_guard lock(impl_->mu);
  if (impl_->running) return core::FailedPrecondition("server already started");
  int n = impl_->options.threads > 0 ? impl_->options.threads
                                     : static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(impl_->options.host, ec);
  if (ec) {
    return core::InvalidArgument("listen address '" + impl_->options.host +
                                 "' is not an IP address");
  }
  uint16_t port = impl_->options.port;
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Impl::Worker>(impl_->options.client_gone_watch_delay);
    w->acceptor.emplace(w->io);
    tcp::endpoint ep(addr, port);
    w->acceptor->open(ep.protocol(), ec);
    if (!ec) w->acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (::setsockopt(w->acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) !=
          0) {
        ec = boost::system::error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) w->acceptor->bind(ep, ec);
    if (!ec) w->acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      impl_->workers.clear();
      return core::Unavailable("cannot listen on " + impl_->options.host + ":" +
                               std::to_string(port) + ": " + ec.message());
    }
    port = w->acceptor->local_endpoint().port();  // port 0: the rest share the chosen port
    impl_->workers.push_back(std::move(w));
  }
  port_ = port;
  for (int i = 0; i < n; ++i) {
    Impl::Worker* w = impl_->workers[static_cast<size_t>(i)].get();
    asio::co_spawn(w->io, Impl::AcceptLoop(impl_.get(), w, i), asio::detached);
    w->thread = std::thread([w] { w->io.run(); });
  }
  impl_->running = true;
  return core::Status::Ok();
}

void Server::Stop() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->running) return;
  std::vector<std::future<void>> done;
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    Impl::Worker* w = impl_->workers[i].get();
    asio::post(w->io, [this, w, i, p] {
      boost::system::error_code ec;
      w->acceptor->close(ec);
      if (impl_->on_worker_stop) impl_->on_worker_stop(static_cast<int>(i));
      p->set_value();
    });
  }
  for (auto& f : done) f.wait_for(std::chrono::seconds(10));
  for (auto& w : impl_->workers) w->io.stop();
  for (auto& w : impl_->workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  impl_->workers.clear();
  impl_->running = false;
}

}  // namespace llmscope::http
