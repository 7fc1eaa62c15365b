// Per-call costs of the request path's pure parts. Figures go to docs/BENCHMARKS.md beside
// the side-by-side proxy run; they explain where the gateway's microseconds go.
#include <benchmark/benchmark.h>

#include "core/log.h"
#include "gateway/sse.h"
#include "gateway/wire.h"
#include "metrics/registry.h"
#include "pipeline/call_log.h"
#include "pipeline/pipeline.h"
#include "pricing/price_catalog.h"
#include "stats/llm_metrics.h"

namespace llmscope {
namespace {

const std::string kRequest =
    R"({"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},)"
    R"({"role":"user","content":"Say hello in one short sentence."}],"max_tokens":64,"stream":true})";

std::string Chunk(int i) {
  return "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
         "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok" +
         std::to_string(i) + " \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
}

void BM_ParseRequest(benchmark::State& state) {
  for (auto _ : state) {
    auto r = gateway::ParseRequest(gateway::Dialect::kChatCompletions, kRequest);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ParseRequest);

void BM_PrepareUpstreamBody(benchmark::State& state) {
  auto facts = gateway::ParseRequest(gateway::Dialect::kChatCompletions, kRequest);
  for (auto _ : state) {
    bool injected = false;
    auto body = gateway::PrepareUpstreamBody(gateway::Dialect::kChatCompletions, kRequest, *facts,
                                             &injected);
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_PrepareUpstreamBody);

// One 20-event stream through the SSE tap and the usage observer, as the gateway does.
void BM_StreamTap20Events(benchmark::State& state) {
  std::string stream;
  for (int i = 0; i < 20; ++i) stream += Chunk(i);
  stream +=
      "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
      "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20,\"total_tokens\":32}}\n\ndata: "
      "[DONE]\n\n";
  std::string out;
  for (auto _ : state) {
    gateway::SseTap tap;
    gateway::StreamObserver obs(gateway::Dialect::kChatCompletions, true);
    out.clear();
    tap.Feed(stream, out, [&](const gateway::SseEvent& e) { return obs.OnEvent(e).forward; });
    benchmark::DoNotOptimize(obs.facts());
  }
  state.SetItemsProcessed(state.iterations() * 22);
}
BENCHMARK(BM_StreamTap20Events);

core::LlmCall SampleCall() {
  core::LlmCall c;
  c.request_id = "req_0123456789abcdef";
  c.trace_id[0] = 1;
  c.span_id[0] = 2;
  c.requested_model = "gpt-4o-mini";
  c.response_model = "gpt-4o-mini-2024-07-18";
  c.provider = "openai";
  c.provider_kind = "openai";
  c.http_status = 200;
  c.end_nanos = 812'000'000;
  c.first_content_nanos = 240'000'000;
  c.first_byte_nanos = 230'000'000;
  c.usage = {120, 40, 0, 0, 0};
  c.usage_source = core::UsageSource::kProvider;
  c.cost_usd = 0.0000420;
  c.finish_reasons = {"stop"};
  return c;
}

void BM_FormatCallJson(benchmark::State& state) {
  auto c = SampleCall();
  for (auto _ : state) benchmark::DoNotOptimize(pipeline::FormatCallJson(c, false));
}
BENCHMARK(BM_FormatCallJson);

void BM_LlmMetricsConsume(benchmark::State& state) {
  metrics::Registry reg;
  auto m = stats::LlmMetrics::Create(reg, {});
  std::vector<core::LlmCall> batch(64, SampleCall());
  for (auto _ : state) (*m)->Consume(batch);
  state.SetItemsProcessed(state.iterations() * 64);
}
BENCHMARK(BM_LlmMetricsConsume);

void BM_PriceLookupAndCost(benchmark::State& state) {
  auto cat = pricing::PriceCatalog::Default();
  auto c = SampleCall();
  for (auto _ : state) {
    auto p = cat->Lookup(c.response_model, 1'760'000'000'000'000'000);
    benchmark::DoNotOptimize(pricing::Cost(p->price, c.usage));
  }
}
BENCHMARK(BM_PriceLookupAndCost);

void BM_PipelineSubmit(benchmark::State& state) {
  metrics::Registry reg;
  core::NullLogger log;
  pipeline::PipelineOptions o;
  o.queue_capacity = 1 << 20;
  pipeline::Pipeline p(o, nullptr, reg, log);
  (void)p.Start();
  for (auto _ : state) p.Submit(SampleCall());
  p.Stop();
}
BENCHMARK(BM_PipelineSubmit)->Threads(1)->Threads(2);

}  // namespace
}  // namespace llmscope

BENCHMARK_MAIN();
