#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "http/http.h"

namespace llmscope::http {

struct ServerOptions {
  std::string host = "127.0.0.1";      // address to bind; "0.0.0.0" for every interface
  uint16_t port = 8080;                // 0 = any free port; port() tells which
  int threads = 0;                     // event-loop threads; 0 = one per core
  size_t max_body_bytes = 8 << 20;     // larger request bodies get 413
  size_t max_header_bytes = 64 << 10;  // larger request headers get 431
  core::Nanos idle_timeout = std::chrono::seconds(75);  // keep-alive idle before close
  // false: a body over max_body_bytes gets a generic 413 from the server. true: the
  // handler receives the request marked body_too_large() and answers it itself.
  bool pass_body_too_large = false;
  // How long a handler must have been waiting before WatchClientGone arms the socket
  // readiness watch (the watch then starts up to an eighth of this later). Most calls end
  // sooner, and arming costs an epoll_ctl and a coroutine per request; a client that leaves
  // a shorter call is noticed by the failed write. LLM calls that matter (an abandoned
  // generation still being paid for) run for seconds. 0 arms at once.
  core::Nanos client_gone_watch_delay = std::chrono::milliseconds(100);
};

// One parsed request. Header and body views live as long as the Request.
// Thread-safety: owned by the connection's coroutine; not shared.
class Request {
 public:
  std::string_view method() const { return method_; }
  std::string_view target() const { return target_; }  // path and query as sent
  std::string_view path() const;                       // target without the query
  std::optional<std::string_view> header(std::string_view name) const;
  const std::vector<Header>& headers() const { return headers_; }
  const std::string& body() const { return body_; }
  // The body exceeded ServerOptions::max_body_bytes and was not read: body() is empty and
  // the handler must answer 413 (the connection closes after the response).
  bool body_too_large() const { return body_too_large_; }
  std::string& mutable_body() { return body_; }
  // Which server thread runs this request: index into per-thread state owned by the handler.
  int worker() const { return worker_; }
  core::MonoTime received_at() const { return received_at_; }

 private:
  friend class Connection;
  std::string method_;
  std::string target_;
  std::string header_block_;  // backing store for headers_
  std::vector<Header> headers_;
  std::string body_;
  int worker_ = 0;
  bool body_too_large_ = false;
  core::MonoTime received_at_{};
};

// Writes one response: either Send() once, or StartStream(), WriteChunk()*, FinishStream().
// Every call returns false once the client is gone; the handler should then stop work.
// Thread-safety: owned by the connection's coroutine; not shared.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual Task<bool> Send(int status, const HeaderList& headers, std::string_view body) = 0;
  // Chunked transfer encoding; `headers` must not contain Content-Length.
  virtual Task<bool> StartStream(int status, const HeaderList& headers) = 0;
  virtual Task<bool> WriteChunk(std::string_view bytes) = 0;
  virtual Task<bool> FinishStream() = 0;
  // Ends the response abruptly (the peer sees a truncated body) and closes the connection.
  virtual void Abort() = 0;
  // Calls `on_gone` once if the client closes its connection while the handler is still
  // working (for example while waiting on an upstream). Stops at the end of the response.
  // The watch starts ServerOptions::client_gone_watch_delay after this call; a client that
  // leaves earlier is noticed then (or by the response's failed write).
  virtual void WatchClientGone(std::function<void()> on_gone) = 0;
  virtual bool client_gone() const = 0;
  virtual bool started() const = 0;
};

using Handler = std::function<Task<void>(Request&, ResponseWriter&)>;

// HTTP/1.1 server: one event loop per thread, each with its own SO_REUSEPORT acceptor, so a
// connection lives on one thread for its whole life and handlers need no locks for
// per-thread state.
// Thread-safety: Start/Stop from one controlling thread; port() from any thread after Start.
class Server {
 public:
  Server(ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the threads. Fails with a message naming the address on bind errors.
  core::Status Start();
  // Stops accepting, runs the worker-stop hook on each worker's thread, stops the event
  // loops and joins the threads. In-flight handler coroutines are destroyed with the loops.
  // Idempotent.
  void Stop();
  // REQUIRES: before Start(). Called on worker i's own thread during Stop(), while its
  // event loop is still alive: the place to close per-thread sockets (client pools).
  void OnWorkerStop(std::function<void(int worker)> hook);
  uint16_t port() const { return port_.load(); }
  int threads() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<uint16_t> port_{0};
};

}  // namespace llmscope::http
