#include "http/blocking_client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <utility>

namespace llmscope::http {

namespace asio = boost::asio;

// One private event loop and the Client that lives on it. Used by one Fetch at a time.
struct BlockingClient::Loop {
  asio::io_context io;
  std::unique_ptr<Client> client;

  // Sockets and their watchdog coroutines must not outlive the io_context: close the pool,
  // then let the closed connections' coroutines finish before the loop goes.
  ~Loop() {
    try {
      if (client) client->Shutdown();
      io.restart();
      io.poll();
      client.reset();
      io.restart();
      io.poll();
    } catch (const std::exception&) {
      // A destructor must not throw; whatever is left goes with the io_context.
    }
  }
};

namespace {

std::string DurationText(core::Nanos d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms > 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  if (ms > 0) return std::to_string(ms) + "ms";
  return std::to_string(d.count()) + "ns";
}

// The exchange as a coroutine: send, read the whole body, hand back the pooled connection
// (the Exchange's destructor does that once the body ended cleanly).
Task<void> RunExchange(Client& client, Origin origin, ClientRequest request, Cancellation* cancel,
                       std::optional<core::Result<BlockingResponse>>* out) {
  auto sent = co_await client.Send(origin, std::move(request), cancel);
  if (!sent.ok()) {
    *out = sent.status();
    co_return;
  }
  std::unique_ptr<Exchange> exchange = std::move(sent).value();
  BlockingResponse response;
  response.status = exchange->status();
  core::Status read = co_await exchange->ReadAll(response.body);
  if (!read.ok()) {
    *out = read;
    co_return;
  }
  response.headers = exchange->TakeHeaders();
  exchange.reset();
  *out = std::move(response);
}

}  // namespace

std::optional<std::string_view> BlockingResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (HeaderNameEquals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

BlockingClient::BlockingClient(BlockingClientOptions options) : options_(std::move(options)) {}

BlockingClient::~BlockingClient() = default;

core::Result<std::unique_ptr<BlockingClient>> BlockingClient::Create(
    BlockingClientOptions options) {
  if (options.max_idle_loops < 1) {
    return core::InvalidArgument("max_idle_loops: must be at least 1");
  }
  // Fail now, not on the first call, when the client cannot be made.
  auto probe = Client::Create(options.client);
  if (!probe.ok()) return probe.status();
  auto self = std::unique_ptr<BlockingClient>(new BlockingClient(std::move(options)));
  auto loop = std::make_unique<Loop>();
  loop->client = std::move(probe).value();
  self->idle_.push_back(std::move(loop));
  return self;
}

core::Result<std::unique_ptr<BlockingClient::Loop>> BlockingClient::TakeLoop() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto loop = std::move(idle_.back());
      idle_.pop_back();
      return loop;
    }
  }
  auto client = Client::Create(options_.client);
  if (!client.ok()) return client.status();
  auto loop = std::make_unique<Loop>();
  loop->client = std::move(client).value();
  return loop;
}

void BlockingClient::ReturnLoop(std::unique_ptr<Loop> loop) {
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < options_.max_idle_loops) {
      idle_.push_back(std::move(loop));
      return;
    }
  }
  // `loop` closes its connections outside the lock.
}

core::Result<BlockingResponse> BlockingClient::Fetch(const Origin& origin, ClientRequest request,
                                                     core::Nanos timeout) {
  auto taken = TakeLoop();
  if (!taken.ok()) return taken.status();
  std::unique_ptr<Loop> loop = std::move(taken).value();
  const auto deadline = std::chrono::steady_clock::now() + timeout;

  std::optional<core::Result<BlockingResponse>> result;
  Cancellation cancel;
  bool cancelled = false;
  bool crashed = false;
  try {
    loop->io.restart();
    asio::co_spawn(loop->io,
                   RunExchange(*loop->client, origin, std::move(request), &cancel, &result),
                   [&crashed](std::exception_ptr e) {
                     if (e) crashed = true;
                   });
    // Pooled connections keep watchdog timers pending, so the loop never runs out of work
    // while they live; the exchange's own completion ends the wait.
    while (!result && !crashed) {
      if (!cancelled) {
        size_t ran = loop->io.run_one_until(deadline);
        if (ran == 0 && !result && std::chrono::steady_clock::now() >= deadline) {
          cancel.Cancel();  // closes the socket: the pending step fails with kCancelled
          cancelled = true;
        } else if (ran == 0 && loop->io.stopped()) {
          crashed = true;
        }
      } else if (loop->io.run_one() == 0) {
        crashed = true;
      }
    }
  } catch (const std::exception& e) {
    return core::Internal("http request to " + origin.Key() + " failed: " + e.what());
  }
  if (crashed || !result) {
    return core::Internal("http request to " + origin.Key() + " ended without a result");
  }
  if (cancelled && !result->ok()) {
    return core::Status(core::StatusCode::kDeadlineExceeded,
                        "no complete answer from " + origin.Key() + " within the timeout of " +
                            DurationText(timeout));
  }
  ReturnLoop(std::move(loop));
  return std::move(*result);
}

}  // namespace llmscope::http
