#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/http.h"

namespace llmscope::http {

// Where requests go: scheme, host, port and a base path prefix ("/v1").
struct Origin {
  bool tls = false;
  std::string host;
  uint16_t port = 0;
  std::string base_path;  // without trailing slash; "" for none

  // Parses "http://host:port/base" or "https://host/base". Errors name the URL.
  static core::Result<Origin> Parse(std::string_view url);
  std::string Key() const;  // "https://host:port": identifies a connection pool
};

struct ClientOptions {
  core::Nanos connect_timeout = std::chrono::seconds(10);      // TCP connect + TLS handshake
  core::Nanos first_byte_timeout = std::chrono::seconds(600);  // request sent -> headers
  core::Nanos idle_timeout = std::chrono::seconds(300);        // max gap between body bytes
  size_t max_idle_per_origin = 256;  // pooled keep-alive connections kept per origin
  // A pooled connection idle at least this long is probed (a non-blocking peek) before
  // reuse, so one the server has closed is not tried. One idle for less is reused without
  // the system call: servers close idle connections after seconds, and a request that still
  // meets a closed connection is retried once on a new one.
  core::Nanos probe_idle_after = std::chrono::seconds(1);
  size_t max_response_bytes = 64 << 20;  // a non-streamed body larger than this fails
  bool verify_tls = true;                // verify the server certificate and host name
  std::string ca_file;                   // extra CA bundle (PEM); system roots are always used
};

struct ClientRequest {
  std::string method = "POST";
  std::string target;  // path and query, already joined with the origin's base path
  HeaderList headers;  // Host and Content-Length are added by the client
  // More header lines, already serialized as "Name: value\r\n" each, appended verbatim:
  // lets a proxy forward many headers with one allocation instead of one per name/value.
  std::string raw_headers;
  std::string body;
};

// How an exchange failed. Codes: kUnavailable (connect, TLS, reset before the response:
// the upstream is unreachable), kDeadlineExceeded (a timeout), kCancelled (Cancel()),
// kDataLoss is not used; a body cut short is kUnavailable with "truncated" in the message
// and truncated() true.
struct ExchangeError {
  core::Status status;
  bool truncated = false;  // the response started but its body ended early
};

class UpstreamConn;
class ClientImpl;

// Lets another coroutine of the same event loop abort a Send() in progress (connecting,
// waiting for headers) or the exchange it produced. Cancel() is idempotent.
// Thread-safety: one event loop.
class Cancellation {
 public:
  void Cancel() {
    if (cancelled_) return;
    cancelled_ = true;
    if (on_cancel_) on_cancel_();
  }
  bool cancelled() const { return cancelled_; }

 private:
  friend class Client;
  friend class Exchange;
  std::function<void()> on_cancel_;
  bool cancelled_ = false;
};

// One request/response on a pooled connection. The body is read piece by piece, so streamed
// responses pass through as they arrive.
// Thread-safety: used by one coroutine on the event loop that created it. Cancel() may be
// called from another coroutine of the same event loop.
class Exchange {
 public:
  ~Exchange();
  int status() const { return status_; }
  std::optional<std::string_view> header(std::string_view name) const;
  const HeaderList& headers() const { return headers_; }
  // Moves the response headers out (a proxy forwarding them avoids copying each one);
  // header() finds nothing afterwards.
  HeaderList TakeHeaders() { return std::move(headers_); }
  // Next piece of the body, de-chunked. An empty view means the body ended cleanly.
  // The view is valid until the next call.
  Task<core::Result<std::string_view>> ReadSome();
  // Reads the rest of the body into `out` (bounded by max_response_bytes).
  Task<core::Status> ReadAll(std::string& out);
  // Aborts the exchange: closes the connection; a pending read fails with kCancelled.
  void Cancel();
  bool truncated() const { return truncated_; }

 private:
  friend class ClientImpl;
  friend class Client;
  Exchange() = default;
  std::shared_ptr<UpstreamConn> conn_;
  ClientImpl* client_ = nullptr;
  std::string key_;  // the origin's pool key
  Cancellation* cancel_ = nullptr;
  int status_ = 0;
  HeaderList headers_;
  bool done_ = false;
  bool truncated_ = false;
  bool cancelled_ = false;
};

// HTTP/1.1 client with keep-alive pools per origin, TLS with certificate verification, and
// timeouts. One Client per event-loop thread: pools are not shared across threads.
// Thread-safety: a Client and its exchanges are used from one event loop only.
class Client {
 public:
  // Fails when the TLS setup fails (an unreadable ca_file, say), naming the problem.
  static core::Result<std::unique_ptr<Client>> Create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends a request and waits for the response headers. The body is read from the Exchange.
  // A pooled connection that the server had closed is retried once on a fresh one.
  // `cancel`, when given, aborts the send or the exchange; it must outlive the exchange.
  Task<core::Result<std::unique_ptr<Exchange>>> Send(const Origin& origin, ClientRequest req,
                                                     Cancellation* cancel = nullptr);

  // Closes pooled connections; later releases close instead of pooling. Call on the
  // client's event loop before that loop is destroyed: sockets must not outlive it.
  void Shutdown();

  // Connections opened and connect/TLS failures since start, for the operator's metrics.
  uint64_t connections_opened() const;
  uint64_t connect_errors() const;

 private:
  explicit Client(std::unique_ptr<ClientImpl> impl);
  std::unique_ptr<ClientImpl> impl_;
};

}  // namespace llmscope::http
