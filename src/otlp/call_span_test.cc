#include "otlp/call_span.h"

#include <gtest/gtest.h>

#include "otlp/decode.h"
#include "otlp/encode.h"
#include "otlp/genai.h"

namespace llmscope::otlp {
namespace {

constexpr int64_t kT0 = 1'718'000'000'000'000'000;
constexpr int64_t kMs = 1'000'000;

core::LlmCall GatewayCall() {
  core::LlmCall c;
  c.request_id = "chatcmpl-llmscope-1";
  c.trace_id = *core::ParseTraceIdHex("5b8efff798038103d269b633813fc60c");
  c.span_id = *core::ParseSpanIdHex("eee19b7ec3c1b174");
  c.parent_span_id = *core::ParseSpanIdHex("eee19b7ec3c1b173");
  c.start_unix_nanos = kT0;
  c.first_content_nanos = 250 * kMs;
  c.end_nanos = 1200 * kMs;
  c.overhead_nanos = 85'000;
  c.endpoint = core::Endpoint::kMessages;
  c.requested_model = "claude-sonnet-4";
  c.response_model = "claude-sonnet-4-20250514";
  c.provider = "anthropic-prod";
  c.provider_kind = "anthropic";
  c.http_status = 200;
  c.max_tokens = 1024;
  c.temperature = 0.7;
  c.top_p = 0.9;
  c.finish_reasons = {"end_turn"};
  c.usage = {.input = 1200, .output = 300, .cache_read = 1000, .cache_write = 100, .reasoning = 50};
  c.usage_source = core::UsageSource::kProvider;
  c.cost_usd = 0.0123;
  return c;
}

const core::AttributeValue* Find(const core::Span& s, std::string_view key) {
  for (const auto& a : s.attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

TEST(SpanFromCallTest, GenAiConventionsAndLlmscopeAttributes) {
  const core::Span s = SpanFromCall(GatewayCall());
  EXPECT_EQ(s.name, "chat claude-sonnet-4");
  EXPECT_EQ(s.kind, core::SpanKind::kClient);
  EXPECT_EQ(s.service, "llmscope");
  EXPECT_EQ(core::ToHex(s.trace_id), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(core::ToHex(s.span_id), "eee19b7ec3c1b174");
  EXPECT_EQ(core::ToHex(s.parent_span_id), "eee19b7ec3c1b173");
  EXPECT_EQ(s.start_unix_nanos, kT0);
  EXPECT_EQ(s.end_unix_nanos, kT0 + 1200 * kMs);
  EXPECT_EQ(s.status, core::SpanStatus::kUnset);

  auto str = [&](std::string_view k) { return std::get<std::string>(*Find(s, k)); };
  auto num = [&](std::string_view k) { return std::get<int64_t>(*Find(s, k)); };
  auto dbl = [&](std::string_view k) { return std::get<double>(*Find(s, k)); };
  EXPECT_EQ(str("gen_ai.operation.name"), "chat");
  EXPECT_EQ(str("gen_ai.provider.name"), "anthropic");
  EXPECT_EQ(str("gen_ai.request.model"), "claude-sonnet-4");
  EXPECT_EQ(str("gen_ai.response.model"), "claude-sonnet-4-20250514");
  EXPECT_EQ(str("gen_ai.response.id"), "chatcmpl-llmscope-1");
  EXPECT_EQ(num("gen_ai.usage.input_tokens"), 1200);
  EXPECT_EQ(num("gen_ai.usage.output_tokens"), 300);
  EXPECT_EQ(num("gen_ai.usage.cache_read.input_tokens"), 1000);
  EXPECT_EQ(num("gen_ai.usage.cache_creation.input_tokens"), 100);
  EXPECT_EQ(num("gen_ai.usage.reasoning.output_tokens"), 50);
  EXPECT_EQ(num("gen_ai.request.max_tokens"), 1024);
  EXPECT_EQ(dbl("gen_ai.request.temperature"), 0.7);
  EXPECT_EQ(dbl("gen_ai.request.top_p"), 0.9);
  EXPECT_EQ(std::get<core::JsonText>(*Find(s, "gen_ai.response.finish_reasons")).text,
            R"(["end_turn"])");
  EXPECT_EQ(num("http.response.status_code"), 200);
  EXPECT_EQ(Find(s, "error.type"), nullptr);
  EXPECT_EQ(std::get<bool>(*Find(s, "llmscope.gateway")), true);
  EXPECT_EQ(str("llmscope.provider"), "anthropic-prod");
  EXPECT_DOUBLE_EQ(dbl("llmscope.ttft_s"), 0.25);
  EXPECT_EQ(num("llmscope.overhead_us"), 85);
  EXPECT_DOUBLE_EQ(dbl("llmscope.cost_usd"), 0.0123);
}

TEST(SpanFromCallTest, FailedCallIsAnErrorSpan) {
  core::LlmCall c = GatewayCall();
  c.error = core::ErrorClass::kServerError;
  c.error_message = "upstream answered 500";
  c.http_status = 500;
  c.usage_source = core::UsageSource::kMissing;
  c.first_content_nanos = -1;
  c.cost_usd.reset();
  c.provider_kind = "openai_compatible";
  const core::Span s = SpanFromCall(c);
  EXPECT_EQ(s.status, core::SpanStatus::kError);
  EXPECT_EQ(s.status_message, "upstream answered 500");
  EXPECT_EQ(std::get<std::string>(*Find(s, "error.type")), "server_error");
  EXPECT_EQ(std::get<std::string>(*Find(s, "gen_ai.provider.name")), "openai_compatible");
  EXPECT_EQ(Find(s, "gen_ai.usage.input_tokens"), nullptr);  // never reported as 0
  EXPECT_EQ(Find(s, "llmscope.ttft_s"), nullptr);
  EXPECT_EQ(Find(s, "llmscope.cost_usd"), nullptr);
}

// The double-counting rule: llmscope re-ingesting its own export (or a second llmscope
// downstream) stores the span but never maps it to another call.
TEST(SpanFromCallTest, NotMappedBackIntoACall) {
  const core::Span s = SpanFromCall(GatewayCall());
  EXPECT_TRUE(IsGatewaySpan(s));
  EXPECT_FALSE(MapGenAiSpan(s).has_value());
  auto batch = DecodeTraces(EncodeTraces({s}), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->spans[0], s);  // survives the wire unchanged
  EXPECT_TRUE(IsGatewaySpan(batch->spans[0]));
  EXPECT_FALSE(MapGenAiSpan(batch->spans[0]).has_value());
}

TEST(CallSpanSinkTest, SkipsCallsMappedFromSpans) {
  std::vector<core::Span> got;
  CallSpanSink sink([&](std::vector<core::Span>&& spans) {
    for (auto& s : spans) got.push_back(std::move(s));
  });
  core::LlmCall from_otlp = GatewayCall();
  from_otlp.tags = {{"source", "otlp"}};
  core::LlmCall no_ids = GatewayCall();
  no_ids.span_id = {};
  sink.Consume({GatewayCall(), from_otlp, no_ids});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], SpanFromCall(GatewayCall()));
  sink.Consume({from_otlp});  // nothing to hand on: no call
  EXPECT_EQ(got.size(), 1u);
}

}  // namespace
}  // namespace llmscope::otlp
