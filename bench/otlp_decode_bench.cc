// OTLP decoding cost: one ExportTraceServiceRequest of 512 spans with 20 attributes each,
// decoded into core::Span (storage not included). The spans/s counter is per core: the
// benchmark runs on one thread. Goal: at least 100k spans/s (docs/BENCHMARKS.md).
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <iterator>
#include <vector>

#include "otlp/convert.h"
#include "otlp/decode.h"
#include "otlp/genai.h"
#include "storage_sqlite/sqlite_store.h"

namespace llmscope {
namespace {

namespace pb = otlp::internal;

constexpr int kSpans = 512;
constexpr int kAttributes = 20;

// A request shaped like an instrumented LLM service's: GenAI attributes with realistic
// values (strings, ints, doubles), one resource with the usual SDK attributes.
std::string MakeRequest() {
  pb::pb_collector_trace::ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto add = [](auto* attrs, const std::string& k, const std::string& v) {
    auto* kv = attrs->Add();
    kv->set_key(k);
    kv->mutable_value()->set_string_value(v);
  };
  add(rs->mutable_resource()->mutable_attributes(), "service.name", "chat-frontend");
  add(rs->mutable_resource()->mutable_attributes(), "telemetry.sdk.language", "python");
  add(rs->mutable_resource()->mutable_attributes(), "telemetry.sdk.version", "1.30.0");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("opentelemetry.instrumentation.openai_v2");
  for (int i = 0; i < kSpans; ++i) {
    auto* span = ss->add_spans();
    std::string trace(16, '\x11'), id(8, '\x22');
    trace[0] = static_cast<char>(i);
    id[0] = static_cast<char>(i);
    id[1] = static_cast<char>(i >> 8);
    span->set_trace_id(trace);
    span->set_span_id(id);
    span->set_parent_span_id(std::string(8, '\x33'));
    span->set_name("chat gpt-4o-mini");
    span->set_kind(pb::pb_trace::Span::SPAN_KIND_CLIENT);
    span->set_start_time_unix_nano(1718000000000000000ULL + i * 1000);
    span->set_end_time_unix_nano(1718000001000000000ULL + i * 1000);
    auto* a = span->mutable_attributes();
    add(a, "gen_ai.operation.name", "chat");
    add(a, "gen_ai.provider.name", "openai");
    add(a, "gen_ai.request.model", "gpt-4o-mini");
    add(a, "gen_ai.response.model", "gpt-4o-mini-2024-07-18");
    add(a, "gen_ai.response.id", "chatcmpl-" + std::to_string(1000000 + i));
    add(a, "server.address", "api.openai.com");
    add(a, "user.id", "user-" + std::to_string(i % 50));
    add(a, "session.id", "session-" + std::to_string(i % 20));
    for (const char* k :
         {"gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.max_tokens",
          "server.port", "gen_ai.usage.cache_read.input_tokens", "http.response.status_code"}) {
      auto* kv = a->Add();
      kv->set_key(k);
      kv->mutable_value()->set_int_value(100 + i);
    }
    for (const char* k : {"gen_ai.request.temperature", "gen_ai.request.top_p",
                          "gen_ai.response.time_to_first_chunk"}) {
      auto* kv = a->Add();
      kv->set_key(k);
      kv->mutable_value()->set_double_value(0.25);
    }
    auto* fr = a->Add();
    fr->set_key("gen_ai.response.finish_reasons");
    fr->mutable_value()->mutable_array_value()->add_values()->set_string_value("stop");
    add(a, "gen_ai.output.type", "text");
    add(a, "error.type", "");
    benchmark::DoNotOptimize(a->size() == kAttributes);
  }
  return req.SerializeAsString();
}

void BM_DecodeTracesProtobuf(benchmark::State& state) {
  const std::string body = MakeRequest();
  for (auto _ : state) {
    auto batch = otlp::DecodeTraces(body, otlp::Encoding::kProtobuf);
    if (!batch.ok() || batch->spans.size() != kSpans) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(batch);
  }
  state.counters["spans/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kSpans,
                                                 benchmark::Counter::kIsRate);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_DecodeTracesProtobuf)->Unit(benchmark::kMicrosecond);

// The same spans as OTLP/JSON (ids in hex), for comparison.
void BM_DecodeTracesJson(benchmark::State& state) {
  auto batch = otlp::DecodeTraces(MakeRequest(), otlp::Encoding::kProtobuf);
  std::string body = R"({"resourceSpans":[{"resource":{"attributes":[)"
                     R"({"key":"service.name","value":{"stringValue":"chat-frontend"}}]},)"
                     R"("scopeSpans":[{"spans":[)";
  for (size_t i = 0; i < batch->spans.size(); ++i) {
    const core::Span& s = batch->spans[i];
    if (i > 0) body += ',';
    body += R"({"traceId":")" + core::ToHex(s.trace_id) + R"(","spanId":")" +
            core::ToHex(s.span_id) + R"(","name":"chat","kind":3,"startTimeUnixNano":")" +
            std::to_string(s.start_unix_nanos) + R"(","endTimeUnixNano":")" +
            std::to_string(s.end_unix_nanos) + R"(","attributes":[)";
    for (size_t j = 0; j < s.attributes.size(); ++j) {
      if (j > 0) body += ',';
      const auto& a = s.attributes[j];
      body += R"({"key":")" + a.key + R"(","value":)";
      if (const auto* str = std::get_if<std::string>(&a.value)) {
        body += R"({"stringValue":")" + *str + "\"}}";
      } else if (const auto* n = std::get_if<int64_t>(&a.value)) {
        body += R"({"intValue":")" + std::to_string(*n) + "\"}}";
      } else {
        body += R"({"doubleValue":0.25}})";
      }
    }
    body += "]}";
  }
  body += "]}]}]}";
  for (auto _ : state) {
    auto out = otlp::DecodeTraces(body, otlp::Encoding::kJson);
    if (!out.ok() || out->spans.size() != kSpans) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(out);
  }
  state.counters["spans/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kSpans,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeTracesJson)->Unit(benchmark::kMicrosecond);

// Mapping decoded spans to LLM calls, the step after decoding.
void BM_MapGenAiSpans(benchmark::State& state) {
  auto batch = otlp::DecodeTraces(MakeRequest(), otlp::Encoding::kProtobuf);
  for (auto _ : state) {
    for (const auto& s : batch->spans) benchmark::DoNotOptimize(otlp::MapGenAiSpan(s));
  }
  state.counters["spans/s"] = benchmark::Counter(static_cast<double>(state.iterations()) * kSpans,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MapGenAiSpans)->Unit(benchmark::kMicrosecond);

// Decoded and stored: the same request decoded, then written to SQLite (WAL, one
// transaction per request, as the store writer does), each round under fresh trace ids and
// a millisecond later than the previous round (as spans arrive), so that every span is an
// insert into growing indexes. CPU time covers both steps on one
// thread: the receiver's decode thread and the writer thread together, per span.
void BM_DecodeAndStoreSqlite(benchmark::State& state) {
  const std::string body = MakeRequest();
  char tmpl[] = "/tmp/llmscope-otlp-bench-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  if (dir == nullptr) {
    state.SkipWithError("mkdtemp failed");
    return;
  }
  storage_sqlite::SqliteOptions o;
  o.path = std::string(dir) + "/spans.db";
  auto store = storage_sqlite::SqliteStore::Open(o);
  if (!store.ok()) {
    state.SkipWithError(store.status().message().c_str());
    return;
  }
  // Requests per transaction: 1, or what pipeline::StoreWriter groups under a sustained
  // load (consecutive span batches up to write_batch_records = 5000 spans per write).
  const auto per_write = static_cast<size_t>(state.range(0));
  uint64_t round = 0;
  std::vector<core::Span> pending;
  for (auto _ : state) {
    pending.clear();
    for (size_t r = 0; r < per_write; ++r) {
      auto batch = otlp::DecodeTraces(body, otlp::Encoding::kProtobuf);
      if (!batch.ok()) state.SkipWithError("decode failed");
      ++round;
      for (auto& sp : batch->spans) {
        std::memcpy(sp.trace_id.data() + 8, &round, sizeof round);
        // Time moves on: each request's spans start a millisecond after the previous one's.
        const int64_t shift = static_cast<int64_t>(round) * 1'000'000;
        sp.start_unix_nanos += shift;
        sp.end_unix_nanos += shift;
      }
      std::move(batch->spans.begin(), batch->spans.end(), std::back_inserter(pending));
    }
    if (auto st = (*store)->WriteSpans(pending); !st.ok()) {
      state.SkipWithError(st.message().c_str());
    }
  }
  state.counters["spans/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * per_write * kSpans), benchmark::Counter::kIsRate);
  store->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DecodeAndStoreSqlite)
    ->Arg(1)
    ->Arg(8)
    ->Unit(benchmark::kMicrosecond)
    ->MeasureProcessCPUTime();

}  // namespace
}  // namespace llmscope

BENCHMARK_MAIN();
