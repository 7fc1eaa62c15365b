// OTLP burst: many senders post 512-span protobuf requests to a running llmscope as fast as
// they can for a bounded time, while the server's resident memory is sampled from /proc.
// Shows what the OTLP issue asks of a burst well above the sustainable rate: memory stays
// bounded, the excess is refused with a retryable answer (503 + Retry-After), and it is
// counted. bench/otlp_burst.sh starts the server and runs this; docs/BENCHMARKS.md has the
// figures.
//
//   otlp_burst --port P --pid PID [--senders 16] [--seconds 20] [--spans 512]

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/span.h"
#include "http/blocking_client.h"
#include "otlp/encode.h"

namespace {

using namespace llmscope;
using Clock = std::chrono::steady_clock;

// Resident set size of `pid` in KiB, 0 when unreadable.
long RssKib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

// One request body of `n` GenAI client spans with 20 attributes each; `seed` makes its
// trace ids and times its own, so that bodies are distinct spans.
std::string MakeBody(int n, uint64_t seed) {
  std::vector<core::Span> spans(static_cast<size_t>(n));
  const int64_t t0 = 1'718'000'000'000'000'000 + static_cast<int64_t>(seed) * 1'000'000'000;
  for (int i = 0; i < n; ++i) {
    core::Span& s = spans[static_cast<size_t>(i)];
    std::memcpy(s.trace_id.data(), &seed, sizeof seed);
    s.trace_id[8] = static_cast<uint8_t>(i);
    s.trace_id[9] = static_cast<uint8_t>(i >> 8);
    s.span_id[0] = static_cast<uint8_t>(i + 1);
    s.span_id[1] = static_cast<uint8_t>((i + 1) >> 8);
    s.name = "chat gpt-4o-mini";
    s.kind = core::SpanKind::kClient;
    s.service = "burst-app";
    s.scope = "opentelemetry.instrumentation.openai_v2";
    s.start_unix_nanos = t0 + i * 1000;
    s.end_unix_nanos = s.start_unix_nanos + 900'000'000;
    s.resource_attributes = {{"service.name", std::string("burst-app")}};
    auto& a = s.attributes;
    a = {{"gen_ai.operation.name", std::string("chat")},
         {"gen_ai.provider.name", std::string("openai")},
         {"gen_ai.request.model", std::string("gpt-4o-mini")},
         {"gen_ai.response.model", std::string("gpt-4o-mini-2024-07-18")},
         {"gen_ai.usage.input_tokens", int64_t{120 + i}},
         {"gen_ai.usage.output_tokens", int64_t{40 + i}},
         {"gen_ai.request.max_tokens", int64_t{256}},
         {"gen_ai.request.temperature", 0.7},
         {"gen_ai.request.top_p", 1.0},
         {"gen_ai.response.id", "chatcmpl-" + std::to_string(seed) + "-" + std::to_string(i)},
         {"gen_ai.response.finish_reasons", core::JsonText{R"(["stop"])"}},
         {"server.address", std::string("api.openai.com")},
         {"server.port", int64_t{443}},
         {"http.response.status_code", int64_t{200}},
         {"user.id", "user-" + std::to_string(i % 50)},
         {"session.id", "session-" + std::to_string(i % 20)},
         {"app.feature", std::string("chat")},
         {"deployment.environment", std::string("prod")},
         {"gen_ai.conversation.id", "conv-" + std::to_string(i % 30)},
         {"gen_ai.output.type", std::string("text")}};
  }
  return otlp::EncodeTraces(spans);
}

int Arg(int argc, char** argv, const char* name, int def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  const int port = Arg(argc, argv, "--port", 0);
  const int pid = Arg(argc, argv, "--pid", 0);
  const int senders = Arg(argc, argv, "--senders", 16);
  const int seconds = Arg(argc, argv, "--seconds", 20);
  const int spans = Arg(argc, argv, "--spans", 512);
  if (port <= 0 || pid <= 0 || senders <= 0 || seconds <= 0 || seconds > 600 || spans <= 0) {
    std::fprintf(stderr,
                 "usage: otlp_burst --port P --pid PID [--senders 16] [--seconds 20 (max 600)] "
                 "[--spans 512]\n");
    return 2;
  }
  constexpr int kBodies = 64;
  std::vector<std::string> bodies;
  for (int i = 0; i < kBodies; ++i) bodies.push_back(MakeBody(spans, static_cast<uint64_t>(i)));

  http::BlockingClientOptions co;
  co.max_idle_loops = static_cast<size_t>(senders);
  auto client = http::BlockingClient::Create(co);
  if (!client.ok()) {
    std::fprintf(stderr, "otlp_burst: %s\n", client.status().ToString().c_str());
    return 1;
  }
  http::Origin origin;
  origin.host = "127.0.0.1";
  origin.port = static_cast<uint16_t>(port);

  std::atomic<long> accepted{0}, refused_retryable{0}, retry_after{0}, other{0}, failed{0};
  std::atomic<bool> stop{false};
  const long rss_before = RssKib(pid);
  std::atomic<long> rss_max{rss_before};
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds(seconds);

  std::vector<std::thread> threads;
  for (int t = 0; t < senders; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); Clock::now() < end;
           i += static_cast<size_t>(senders)) {
        http::ClientRequest req;
        req.target = "/v1/traces";
        req.headers = {{"Content-Type", "application/x-protobuf"}};
        req.body = bodies[i % bodies.size()];
        auto r = (*client)->Fetch(origin, std::move(req), std::chrono::seconds(10));
        if (!r.ok()) {
          ++failed;
        } else if (r->status == 200) {
          ++accepted;
        } else if (r->status == 503 || r->status == 429) {
          ++refused_retryable;
          if (r->header("retry-after")) ++retry_after;
        } else {
          ++other;
        }
      }
    });
  }
  std::thread sampler([&] {
    while (!stop.load()) {
      long rss = RssKib(pid);
      long prev = rss_max.load();
      while (rss > prev && !rss_max.compare_exchange_weak(prev, rss)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  for (auto& th : threads) th.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  stop = true;
  sampler.join();
  const long offered = accepted + refused_retryable + other + failed;
  std::printf("senders %d, %d spans per request (%zu bytes), %.1f s\n", senders, spans,
              bodies[0].size(), secs);
  std::printf("offered   %ld requests (%.0f spans/s)\n", offered, offered * spans / secs);
  std::printf("accepted  %ld requests (%.0f spans/s)\n", accepted.load(),
              accepted.load() * spans / secs);
  std::printf("refused   %ld (503/429, %ld with Retry-After); other %ld; failed %ld\n",
              refused_retryable.load(), retry_after.load(), other.load(), failed.load());
  std::printf("rss_kib   before %ld, max %ld, after %ld\n", rss_before, rss_max.load(),
              RssKib(pid));
  return failed.load() == 0 && other.load() == 0 ? 0 : 1;
}
