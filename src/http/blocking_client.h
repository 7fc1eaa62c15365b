#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "http/client.h"
#include "http/http.h"

namespace llmscope::http {

struct BlockingClientOptions {
  // Settings of the Client behind each private event loop: TLS, keep-alive pool size per
  // origin, the response size bound. Its connect/first-byte/idle timeouts are backstops; a
  // Fetch's own timeout bounds the whole exchange and normally ends it first.
  ClientOptions client;
  // Event loops (each with its own Client and keep-alive pool) kept for reuse between
  // calls. More concurrent callers than this still proceed, each on a loop of its own; the
  // extra loops are closed when their call ends. REQUIRES: >= 1.
  size_t max_idle_loops = 4;
};

// A whole response: status, headers and the complete body.
struct BlockingResponse {
  int status = 0;
  HeaderList headers;
  std::string body;
  // The first header with this name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
};

// Thread-safety: Fetch may be called from any number of threads at once; each call runs on
// an event loop of its own (taken from a small pool, or made for the call), so callers never
// wait on each other. REQUIRES: never called on an event-loop thread (it blocks).
//
// A synchronous HTTP/1.1 client for code that runs on worker threads rather than on an
// event loop (storage backends that speak HTTP). It wraps the asynchronous Client: each call
// runs the exchange on a private io_context until it completes or its deadline passes; then
// the exchange is cancelled and the call returns DEADLINE_EXCEEDED. Connections are kept
// alive between calls on the same loop.
class BlockingClient {
 public:
  // Fails when the Client cannot be made (TLS set-up: an unreadable ca_file, say).
  static core::Result<std::unique_ptr<BlockingClient>> Create(BlockingClientOptions options = {});
  // REQUIRES: no Fetch in progress.
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  // Sends `request` to `origin` and reads the whole response, within `timeout` from the
  // call (connect, send, headers and body together). Any HTTP status is a success here; the
  // caller interprets it. Errors: UNAVAILABLE (cannot connect, reset, truncated body),
  // DEADLINE_EXCEEDED (`timeout` passed; the message names it), RESOURCE_EXHAUSTED (a body
  // over ClientOptions::max_response_bytes), INTERNAL (unexpected failure).
  core::Result<BlockingResponse> Fetch(const Origin& origin, ClientRequest request,
                                       core::Nanos timeout);

 private:
  struct Loop;
  explicit BlockingClient(BlockingClientOptions options);
  core::Result<std::unique_ptr<Loop>> TakeLoop();
  void ReturnLoop(std::unique_ptr<Loop> loop);

  const BlockingClientOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Loop>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace llmscope::http
