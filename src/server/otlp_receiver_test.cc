#include "server/otlp_receiver.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/log.h"
#include "metrics/exposition.h"
#include "metrics/registry.h"
#include "testing/fake_clock.h"

namespace llmscope::server {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1'700'000'000 * kSecond;

class CollectingSink final : public core::RecordSink {
 public:
  bool Submit(core::LlmCall&& call) override {
    calls.push_back(std::move(call));
    return true;
  }
  std::vector<core::LlmCall> calls;
};

core::TraceId Trace(uint8_t b) {
  core::TraceId t{};
  t.fill(b);
  return t;
}
core::SpanId SpanOf(uint8_t b) {
  core::SpanId s{};
  s.fill(b);
  return s;
}

// A gateway call in trace `trace` that continued the client's span `parent`.
core::LlmCall GatewayCall(uint8_t trace, int64_t start, int64_t duration, std::string model,
                          uint8_t parent = 7) {
  core::LlmCall c;
  c.trace_id = Trace(trace);
  c.span_id = SpanOf(9);
  c.parent_span_id = SpanOf(parent);
  c.start_unix_nanos = start;
  c.end_nanos = duration;
  c.requested_model = std::move(model);
  return c;
}

// The application's view of an LLM call, as MapGenAiSpan makes it.
core::LlmCall AppView(uint8_t trace, int64_t start, int64_t duration, std::string model) {
  core::LlmCall c = GatewayCall(trace, start, duration, std::move(model), 0);
  c.parent_span_id = {};
  c.tags = {{"source", "otlp"}};
  return c;
}

TEST(GatewayCallIndexTest, CoversTheAppViewOfAGatewayCallInTheSameTrace) {
  for (bool near_edge : {false, true}) {
    CollectingSink next;
    GatewayCallIndex index(next);
    EXPECT_TRUE(index.Submit(GatewayCall(1, kT0 + kSecond / 10, kSecond / 2, "gpt-4o")));
    ASSERT_EQ(next.calls.size(), 1u);  // passed on unchanged
    EXPECT_EQ(index.size(), 1u);
    auto view = [](uint8_t trace, int64_t start, int64_t duration, std::string model,
                   uint8_t span) {
      core::LlmCall c = AppView(trace, start, duration, std::move(model));
      c.span_id = SpanOf(span);
      return c;
    };
    EXPECT_FALSE(index.Covers(view(2, kT0, kSecond, "gpt-4o", 20)));                // another trace
    EXPECT_FALSE(index.Covers(view(1, kT0, kSecond, "claude-3-5", 21)));            // another model
    EXPECT_FALSE(index.Covers(view(1, kT0 + 3 * kSecond, kSecond, "gpt-4o", 22)));  // later
    if (near_edge) {
      // Within the one-second slack for clocks of different hosts.
      EXPECT_TRUE(index.Covers(view(1, kT0 + kSecond / 2, kSecond / 20, "gpt-4o", 23)));
    } else {
      EXPECT_TRUE(index.Covers(view(1, kT0, kSecond, "gpt-4o", 24)));
    }
  }
}

// Two LLM spans of one trace, same model, same time: one went through the gateway (whose
// call continued it), the other straight to a provider. One gateway call covers one span, so
// one of them is counted as a call of its own in either order of arrival (before, every span
// matching a gateway call was dropped as its duplicate); the span the gateway call continued
// is the one covered whenever it arrives first or nothing else matched before it.
TEST(GatewayCallIndexTest, EachGatewayCallCoversOneSpan) {
  for (bool direct_first : {true, false}) {
    CollectingSink next;
    GatewayCallIndex index(next);
    index.Submit(GatewayCall(1, kT0 + kSecond / 10, kSecond / 2, "gpt-4o", /*parent=*/5));
    core::LlmCall via_gateway = AppView(1, kT0, kSecond, "gpt-4o");
    via_gateway.span_id = SpanOf(5);
    core::LlmCall direct = AppView(1, kT0, kSecond, "gpt-4o");
    direct.span_id = SpanOf(6);
    int covered = 0;
    if (direct_first) {
      covered += index.Covers(direct);
      covered += index.Covers(via_gateway);
    } else {
      EXPECT_TRUE(index.Covers(via_gateway));
      EXPECT_FALSE(index.Covers(direct));
      covered = 1;
      EXPECT_TRUE(index.Covers(via_gateway)) << "an export retry of the same span";
    }
    EXPECT_EQ(covered, 1) << (direct_first ? "direct span first" : "gateway's span first");
  }
  // A second gateway call in the trace covers the second span.
  CollectingSink next;
  GatewayCallIndex index(next);
  index.Submit(GatewayCall(2, kT0 + kSecond / 10, kSecond / 2, "gpt-4o", /*parent=*/4));
  index.Submit(GatewayCall(2, kT0 + kSecond / 5, kSecond / 2, "gpt-4o", /*parent=*/3));
  core::LlmCall a = AppView(2, kT0, kSecond, "gpt-4o");
  a.span_id = SpanOf(5);
  core::LlmCall b = AppView(2, kT0, kSecond, "gpt-4o");
  b.span_id = SpanOf(6);
  core::LlmCall c = AppView(2, kT0, kSecond, "gpt-4o");
  c.span_id = SpanOf(8);
  EXPECT_TRUE(index.Covers(a));
  EXPECT_TRUE(index.Covers(b));
  EXPECT_FALSE(index.Covers(c)) << "two gateway calls cover two spans, not three";
}

TEST(GatewayCallIndexTest, IndexesOnlyCallsThatContinuedAClientTraceAndStaysBounded) {
  CollectingSink next;
  GatewayCallIndex index(next, /*capacity=*/2);
  index.Submit(GatewayCall(1, kT0, kSecond, "m", /*parent=*/0));  // no client traceparent
  core::LlmCall from_otlp = GatewayCall(2, kT0, kSecond, "m");
  from_otlp.tags = {{"source", "otlp"}};
  index.Submit(std::move(from_otlp));
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(next.calls.size(), 2u);

  index.Submit(GatewayCall(3, kT0, kSecond, "m"));
  index.Submit(GatewayCall(4, kT0, kSecond, "m"));
  index.Submit(GatewayCall(5, kT0, kSecond, "m"));
  EXPECT_EQ(index.size(), 2u);
  EXPECT_FALSE(index.Covers(AppView(3, kT0, kSecond, "m")));  // the oldest went first
  EXPECT_TRUE(index.Covers(AppView(4, kT0, kSecond, "m")));
  EXPECT_TRUE(index.Covers(AppView(5, kT0, kSecond, "m")));
}

core::Span LlmSpan(uint8_t trace, uint8_t span, std::string model) {
  core::Span s;
  s.trace_id = Trace(trace);
  s.span_id = SpanOf(span);
  s.name = "chat " + model;
  s.kind = core::SpanKind::kClient;
  s.service = "app";
  s.start_unix_nanos = kT0;
  s.end_unix_nanos = kT0 + kSecond;
  s.attributes = {{"gen_ai.operation.name", std::string("chat")},
                  {"gen_ai.provider.name", std::string("openai")},
                  {"gen_ai.request.model", model},
                  {"gen_ai.usage.input_tokens", int64_t{10}},
                  {"gen_ai.usage.output_tokens", int64_t{5}},
                  {"gen_ai.input.messages", std::string("[{\"role\":\"user\"}]")}};
  return s;
}

TEST(OtlpReceiverTest, MapsLlmSpansSkipsGatewayDuplicatesAndStripsContent) {
  CollectingSink pipeline;
  CollectingSink gateway_next;
  GatewayCallIndex index(gateway_next);
  index.Submit(GatewayCall(1, kT0 + kSecond / 10, kSecond / 2, "gpt-4o"));
  metrics::Registry registry;
  testing::FakeClock clock(kT0);
  core::NullLogger log;
  int waits = 0;
  OtlpReceiverOptions o;
  o.wait_for_gateway = [&waits] { ++waits; };
  OtlpReceiver receiver(o, pipeline, nullptr, &index, registry, clock, log);

  core::Span plain;
  plain.trace_id = Trace(1);
  plain.span_id = SpanOf(3);
  plain.name = "retrieval";
  plain.start_unix_nanos = kT0;
  plain.end_unix_nanos = kT0 + 1;
  std::vector<core::Span> spans{plain, LlmSpan(1, 4, "gpt-4o"), LlmSpan(2, 5, "gpt-4o")};
  auto out = receiver.Accept(std::move(spans));
  EXPECT_EQ(out.spans_stored, 3);
  EXPECT_EQ(out.gateway_duplicates, 1);  // trace 1's span is the gateway call's app view
  EXPECT_EQ(out.calls_mapped, 1);
  EXPECT_EQ(waits, 1);  // once per request
  ASSERT_EQ(pipeline.calls.size(), 1u);
  EXPECT_EQ(pipeline.calls[0].trace_id, Trace(2));
  EXPECT_EQ(pipeline.calls[0].usage.input, 10);
  EXPECT_TRUE(pipeline.calls[0].request_body.empty());  // content capture is off
  EXPECT_NE(receiver.ConformanceJson().find("\"service\":\"app\""), std::string::npos);
  EXPECT_NE(registry.Render(metrics::Format::kPrometheusText)
                .find("llmscope_otlp_llm_spans_total{outcome=\"gateway_duplicate\"} 1"),
            std::string::npos);
}

// OTLP/gRPC runs the same decode and accept; errors become gRPC status codes, partial
// success stays in the response message, and each call is counted with transport="grpc".
TEST(OtlpReceiverTest, ProcessGrpcAnswersWithGrpcCodesAndPartialSuccess) {
  CollectingSink pipeline;
  metrics::Registry registry;
  testing::FakeClock clock(kT0);
  core::NullLogger log;
  OtlpReceiverOptions o;
  o.limits.max_body_bytes = 64;
  OtlpReceiver receiver(o, pipeline, nullptr, nullptr, registry, clock, log);

  // An empty ExportTraceServiceRequest is valid: OK with an empty response.
  otlp::GrpcReply empty = receiver.ProcessGrpc(otlp::Signal::kTraces, "");
  EXPECT_EQ(empty.grpc_code, otlp::kGrpcOk);
  EXPECT_TRUE(empty.response_bytes.empty());

  // resource_spans { scope_spans { spans { name: "x" } } }: a span without ids is rejected.
  const std::string one_bad_span("\x0a\x07\x12\x05\x12\x03\x2a\x01x", 9);
  otlp::GrpcReply partial = receiver.ProcessGrpc(otlp::Signal::kTraces, one_bad_span);
  EXPECT_EQ(partial.grpc_code, otlp::kGrpcOk);
  EXPECT_NE(partial.response_bytes.find("trace_id"), std::string::npos);  // error_message

  otlp::GrpcReply garbage =
      receiver.ProcessGrpc(otlp::Signal::kLogs, std::string("\x0a\xff\xff\xff\x0f\x01", 6));
  EXPECT_EQ(garbage.grpc_code, otlp::kGrpcInvalidArgument);
  EXPECT_FALSE(garbage.message.empty());

  otlp::GrpcReply big = receiver.ProcessGrpc(otlp::Signal::kMetrics, std::string(100, '\0'));
  EXPECT_EQ(big.grpc_code, otlp::kGrpcResourceExhausted);
  EXPECT_NE(big.message.find("max_body_bytes"), std::string::npos) << big.message;

  receiver.CountGrpcRequest(otlp::Signal::kTraces, otlp::kGrpcUnavailable);
  const std::string text = registry.Render(metrics::Format::kPrometheusText);
  for (const char* line :
       {"llmscope_otlp_requests_total{transport=\"grpc\",signal=\"traces\",code=\"OK\"} 2",
        "llmscope_otlp_requests_total{transport=\"grpc\",signal=\"logs\",code=\"INVALID_"
        "ARGUMENT\"} 1",
        "llmscope_otlp_requests_total{transport=\"grpc\",signal=\"metrics\",code=\"RESOURCE_"
        "EXHAUSTED\"} 1",
        "llmscope_otlp_requests_total{transport=\"grpc\",signal=\"traces\",code=\"UNAVAILABLE\"} "
        "1"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace llmscope::server
