#include "otlp/genai.h"

#include <gtest/gtest.h>

#include "otlp/decode.h"

namespace llmscope::otlp {
namespace {

constexpr int64_t kT0 = 1'718'000'000'000'000'000;
constexpr int64_t kMs = 1'000'000;

core::Span BaseSpan() {
  core::Span s;
  s.trace_id = *core::ParseTraceIdHex("5b8efff798038103d269b633813fc60c");
  s.span_id = *core::ParseSpanIdHex("eee19b7ec3c1b174");
  s.parent_span_id = *core::ParseSpanIdHex("eee19b7ec3c1b173");
  s.name = "chat gpt-4o";
  s.kind = core::SpanKind::kClient;
  s.service = "chat-frontend";
  s.start_unix_nanos = kT0;
  s.end_unix_nanos = kT0 + 1500 * kMs;
  return s;
}

void Set(core::Span& s, std::string key, core::AttributeValue v) {
  s.attributes.push_back(core::Attribute{std::move(key), std::move(v)});
}
std::string S(const char* v) { return v; }
int64_t I(int64_t v) { return v; }

core::Span CurrentOtelSpan() {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  Set(s, "gen_ai.provider.name", S("openai"));
  Set(s, "gen_ai.request.model", S("gpt-4o"));
  Set(s, "gen_ai.request.max_tokens", I(256));
  Set(s, "gen_ai.request.temperature", 0.2);
  Set(s, "gen_ai.request.top_p", I(1));
  Set(s, "gen_ai.response.model", S("gpt-4o-2024-08-06"));
  Set(s, "gen_ai.response.id", S("chatcmpl-123"));
  Set(s, "gen_ai.response.finish_reasons", core::JsonText{R"(["stop","length"])"});
  Set(s, "gen_ai.usage.input_tokens", I(1200));
  Set(s, "gen_ai.usage.output_tokens", I(300));
  Set(s, "gen_ai.usage.cache_read.input_tokens", I(1000));
  Set(s, "gen_ai.usage.cache_creation.input_tokens", I(100));
  Set(s, "gen_ai.usage.reasoning.output_tokens", I(120));
  Set(s, "gen_ai.response.time_to_first_chunk", 0.25);
  Set(s, "gen_ai.conversation.id", S("conv-9"));
  Set(s, "user.id", S("u-1"));
  return s;
}

TEST(MapGenAiSpan, CurrentConventions) {
  auto c = MapGenAiSpan(CurrentOtelSpan());
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->trace_id, BaseSpan().trace_id);
  EXPECT_EQ(c->span_id, BaseSpan().span_id);
  EXPECT_EQ(c->parent_span_id, BaseSpan().parent_span_id);
  EXPECT_EQ(c->start_unix_nanos, kT0);
  EXPECT_EQ(c->end_nanos, 1500 * kMs);
  EXPECT_EQ(c->first_content_nanos, 250 * kMs);
  EXPECT_TRUE(c->stream);  // a time to first chunk means a streamed response
  EXPECT_EQ(c->endpoint, core::Endpoint::kChatCompletions);
  EXPECT_EQ(c->requested_model, "gpt-4o");
  EXPECT_EQ(c->response_model, "gpt-4o-2024-08-06");
  EXPECT_EQ(c->provider, "openai");
  EXPECT_EQ(c->provider_kind, "openai");
  EXPECT_EQ(c->max_tokens, 256);
  EXPECT_EQ(c->temperature, 0.2);
  EXPECT_EQ(c->top_p, 1.0);
  EXPECT_EQ(c->finish_reasons, (std::vector<std::string>{"stop", "length"}));
  EXPECT_EQ(c->usage, (core::TokenUsage{1200, 300, 1000, 100, 120}));
  EXPECT_EQ(c->usage_source, core::UsageSource::kProvider);
  EXPECT_EQ(c->error, core::ErrorClass::kNone);
  EXPECT_EQ(c->http_status, 200);
  EXPECT_EQ(c->request_id, "chatcmpl-123");
  EXPECT_EQ(c->user, "u-1");
  EXPECT_EQ(c->session, "conv-9");
  EXPECT_EQ(c->tags, (std::vector<std::pair<std::string, std::string>>{
                         {"source", "otlp"}, {"service", "chat-frontend"}}));
  EXPECT_EQ(c->request_body, "");  // content capture is off by default
  ASSERT_TRUE(c->TimeToFirstTokenSeconds().has_value());
  EXPECT_DOUBLE_EQ(*c->TimeToFirstTokenSeconds(), 0.25);
}

TEST(MapGenAiSpan, AnthropicChatIsTheMessagesEndpoint) {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  Set(s, "gen_ai.provider.name", S("anthropic"));
  Set(s, "gen_ai.request.model", S("claude-sonnet-4"));
  auto c = MapGenAiSpan(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->endpoint, core::Endpoint::kMessages);
  EXPECT_EQ(c->usage_source, core::UsageSource::kMissing);  // no token counts at all
  EXPECT_EQ(c->usage, core::TokenUsage{});
  EXPECT_EQ(c->request_id, "eee19b7ec3c1b174");  // no response id: the span id
  EXPECT_EQ(c->response_model, "claude-sonnet-4");
  EXPECT_FALSE(c->stream);
}

TEST(MapGenAiSpan, OperationsMapToEndpoints) {
  struct Case {
    const char* op;
    std::optional<core::Endpoint> endpoint;
  } cases[] = {
      {"chat", core::Endpoint::kChatCompletions},
      {"generate_content", core::Endpoint::kChatCompletions},
      {"text_completion", core::Endpoint::kCompletions},
      {"embeddings", core::Endpoint::kEmbeddings},
      {"execute_tool", std::nullopt},
      {"invoke_agent", std::nullopt},
      {"create_agent", std::nullopt},
  };
  for (const auto& c : cases) {
    core::Span s = BaseSpan();
    Set(s, "gen_ai.operation.name", S(c.op));
    Set(s, "gen_ai.provider.name", S("openai"));
    auto call = MapGenAiSpan(s);
    ASSERT_EQ(call.has_value(), c.endpoint.has_value()) << c.op;
    if (call) {
      EXPECT_EQ(call->endpoint, *c.endpoint) << c.op;
    }
  }
}

TEST(MapGenAiSpan, LegacyConventions) {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.system", S("OpenAI"));
  Set(s, "gen_ai.request.model", S("gpt-3.5-turbo"));
  Set(s, "gen_ai.usage.prompt_tokens", I(11));
  Set(s, "gen_ai.usage.completion_tokens", S("7"));  // some SDKs send strings
  Set(s, "gen_ai.response.finish_reasons", S("stop"));
  auto c = MapGenAiSpan(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->endpoint, core::Endpoint::kChatCompletions);
  EXPECT_EQ(c->provider, "openai");
  EXPECT_EQ(c->usage.input, 11);
  EXPECT_EQ(c->usage.output, 7);
  EXPECT_EQ(c->usage_source, core::UsageSource::kProvider);
  EXPECT_EQ(c->finish_reasons, (std::vector<std::string>{"stop"}));
  EXPECT_EQ(c->first_content_nanos, -1);
}

TEST(MapGenAiSpan, OpenInference) {
  core::Span s = BaseSpan();
  Set(s, "openinference.span.kind", S("LLM"));
  Set(s, "llm.model_name", S("gpt-4o-mini"));
  Set(s, "llm.provider", S("openai"));
  Set(s, "llm.system", S("openai"));
  Set(s, "llm.token_count.prompt", I(50));
  Set(s, "llm.token_count.completion", I(20));
  Set(s, "llm.token_count.total", I(70));
  Set(s, "llm.token_count.prompt_details.cache_read", I(10));
  Set(s, "llm.token_count.completion_details.reasoning", I(5));
  Set(s, "llm.invocation_parameters", S(R"({"temperature":0.7,"max_tokens":99,"top_p":0.9})"));
  Set(s, "session.id", S("sess-1"));
  Set(s, "input.value", S("What is 2+2?"));
  Set(s, "output.value", S("4"));
  auto c = MapGenAiSpan(s, {.capture_content = true});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->endpoint, core::Endpoint::kChatCompletions);
  EXPECT_EQ(c->requested_model, "gpt-4o-mini");
  EXPECT_EQ(c->provider, "openai");
  EXPECT_EQ(c->usage, (core::TokenUsage{50, 20, 10, 0, 5}));
  EXPECT_EQ(c->temperature, 0.7);
  EXPECT_EQ(c->max_tokens, 99);
  EXPECT_EQ(c->top_p, 0.9);
  EXPECT_EQ(c->session, "sess-1");
  EXPECT_EQ(c->request_body, "What is 2+2?");
  EXPECT_EQ(c->response_text, "4");

  core::Span chain = BaseSpan();
  Set(chain, "openinference.span.kind", S("CHAIN"));
  EXPECT_FALSE(MapGenAiSpan(chain));
  core::Span embedding = BaseSpan();
  Set(embedding, "openinference.span.kind", S("EMBEDDING"));
  Set(embedding, "llm.model_name", S("text-embedding-3-small"));
  ASSERT_TRUE(MapGenAiSpan(embedding));
  EXPECT_EQ(MapGenAiSpan(embedding)->endpoint, core::Endpoint::kEmbeddings);
}

TEST(MapGenAiSpan, OpenLlmetry) {
  core::Span s = BaseSpan();
  Set(s, "llm.request.type", S("chat"));
  Set(s, "gen_ai.system", S("Anthropic"));
  Set(s, "gen_ai.request.model", S("claude-3-5-sonnet"));
  Set(s, "gen_ai.response.model", S("claude-3-5-sonnet-20241022"));
  Set(s, "gen_ai.usage.prompt_tokens", I(40));
  Set(s, "gen_ai.usage.cache_read_input_tokens", I(30));
  Set(s, "llm.usage.total_tokens", I(55));
  Set(s, "llm.is_streaming", true);
  Set(s, "traceloop.workflow.name", S("support-bot"));
  Set(s, "gen_ai.prompt.0.role", S("user"));
  Set(s, "gen_ai.prompt.0.content", S("hi"));
  Set(s, "gen_ai.completion.0.role", S("assistant"));
  Set(s, "gen_ai.completion.0.content", S("hello"));
  Set(s, "gen_ai.completion.0.finish_reason", S("end_turn"));
  auto c = MapGenAiSpan(s, {.capture_content = true});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->endpoint, core::Endpoint::kMessages);
  EXPECT_EQ(c->provider, "anthropic");
  EXPECT_EQ(c->usage.input, 40);
  EXPECT_EQ(c->usage.output, 15);  // total - prompt
  EXPECT_EQ(c->usage.cache_read, 30);
  EXPECT_TRUE(c->stream);
  EXPECT_EQ(c->finish_reasons, (std::vector<std::string>{"end_turn"}));
  EXPECT_EQ(c->request_body, R"([{"role":"user","content":"hi"}])");
  EXPECT_EQ(c->response_text,
            R"([{"role":"assistant","content":"hello","finish_reason":"end_turn"}])");
}

TEST(MapGenAiSpan, DisjointCacheCountsAreAddedToInput) {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  Set(s, "gen_ai.provider.name", S("anthropic"));
  Set(s, "gen_ai.usage.input_tokens", I(5));  // Anthropic's uncached input only
  Set(s, "gen_ai.usage.cache_read.input_tokens", I(100));
  Set(s, "gen_ai.usage.cache_write.input_tokens", I(20));
  auto c = MapGenAiSpan(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->usage.input, 125);
  EXPECT_EQ(c->usage.cache_read, 100);
  EXPECT_EQ(c->usage.cache_write, 20);
}

TEST(MapGenAiSpan, ServerTtftMisusedAsClientTimingIsReadAsTheLastResort) {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  Set(s, "gen_ai.provider.name", S("openai"));
  Set(s, "gen_ai.server.time_to_first_token", 0.4);
  auto c = MapGenAiSpan(s);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->first_content_nanos, 400 * kMs);
  // The proper attribute wins when both are present.
  Set(s, "gen_ai.response.time_to_first_chunk", 0.1);
  EXPECT_EQ(MapGenAiSpan(s)->first_content_nanos, 100 * kMs);
  // A TTFT longer than the span is nonsense and ignored.
  core::Span t = BaseSpan();
  Set(t, "gen_ai.operation.name", S("chat"));
  Set(t, "gen_ai.response.time_to_first_chunk", 9.0);
  EXPECT_EQ(MapGenAiSpan(t)->first_content_nanos, -1);
}

TEST(MapGenAiSpan, ErrorsFromStatusAndErrorType) {
  struct Case {
    const char* error_type;
    core::ErrorClass want;
  } cases[] = {
      {"RateLimitError", core::ErrorClass::kRateLimit},
      {"429", core::ErrorClass::kRateLimit},
      {"APITimeoutError", core::ErrorClass::kTimeout},
      {"AuthenticationError", core::ErrorClass::kAuth},
      {"BadRequestError", core::ErrorClass::kInvalidRequest},
      {"APIConnectionError", core::ErrorClass::kUpstreamUnreachable},
      {"InternalServerError", core::ErrorClass::kServerError},
      {"_OTHER", core::ErrorClass::kServerError},
  };
  for (const auto& c : cases) {
    core::Span s = BaseSpan();
    Set(s, "gen_ai.operation.name", S("chat"));
    Set(s, "error.type", S(c.error_type));
    s.status = core::SpanStatus::kError;
    s.status_message = "upstream said no";
    auto call = MapGenAiSpan(s);
    ASSERT_TRUE(call);
    EXPECT_EQ(call->error, c.want) << c.error_type;
    EXPECT_EQ(call->error_message, "upstream said no");
  }
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  s.status = core::SpanStatus::kError;
  s.events.push_back({kT0, "exception", {{"exception.message", S("connection reset")}}});
  auto call = MapGenAiSpan(s);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->error, core::ErrorClass::kServerError);
  EXPECT_EQ(call->error_message, "connection reset");
  EXPECT_EQ(call->http_status, 0);
}

TEST(MapGenAiSpan, UnknownProvidersAreBounded) {
  core::Span s = BaseSpan();
  Set(s, "gen_ai.operation.name", S("chat"));
  Set(s, "gen_ai.provider.name", S("my-very-own-llm-7f3a"));
  EXPECT_EQ(MapGenAiSpan(s)->provider, "other");
  core::Span t = BaseSpan();
  Set(t, "gen_ai.operation.name", S("chat"));
  Set(t, "gen_ai.system", S("az.ai.openai"));
  EXPECT_EQ(MapGenAiSpan(t)->provider, "azure.ai.openai");
  core::Span u = BaseSpan();
  Set(u, "gen_ai.operation.name", S("chat"));
  EXPECT_EQ(MapGenAiSpan(u)->provider, "otlp");
  EXPECT_EQ(MapGenAiSpan(u)->provider_kind, "otlp");
}

TEST(MapGenAiSpan, NonLlmSpansAreNotMapped) {
  core::Span http = BaseSpan();
  Set(http, "http.request.method", S("POST"));
  EXPECT_FALSE(MapGenAiSpan(http));
  EXPECT_FALSE(MapGenAiSpan(BaseSpan()));
}

TEST(MapGenAiSpan, ContentCaptureFromCurrentAttributesAndEvents) {
  core::Span s = CurrentOtelSpan();
  Set(s, "gen_ai.input.messages",
      core::JsonText{R"([{"role":"user","parts":[{"type":"text","content":"hi"}]}])"});
  Set(s, "gen_ai.output.messages", S(R"([{"role":"assistant"}])"));
  auto c = MapGenAiSpan(s, {.capture_content = true});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->request_body, R"([{"role":"user","parts":[{"type":"text","content":"hi"}]}])");
  EXPECT_EQ(c->response_text, R"([{"role":"assistant"}])");

  core::Span e = BaseSpan();  // the pre-1.37 event form
  Set(e, "gen_ai.system", S("openai"));
  Set(e, "gen_ai.request.model", S("gpt-4"));
  e.events.push_back({kT0, "gen_ai.content.prompt", {{"gen_ai.prompt", S("tell me")}}});
  e.events.push_back({kT0, "gen_ai.content.completion", {{"gen_ai.completion", S("ok")}}});
  auto d = MapGenAiSpan(e, {.capture_content = true});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->request_body, "tell me");
  EXPECT_EQ(d->response_text, "ok");
}

TEST(StripContent, RemovesContentAttributesAndEvents) {
  core::Span s = CurrentOtelSpan();
  const size_t kept = s.attributes.size();
  Set(s, "gen_ai.input.messages", S("[]"));
  Set(s, "gen_ai.output.messages", S("[]"));
  Set(s, "gen_ai.system_instructions", S("be nice"));
  Set(s, "gen_ai.prompt.0.content", S("hi"));
  Set(s, "gen_ai.completion.3.content", S("yo"));
  Set(s, "llm.input_messages.0.message.content", S("hi"));
  Set(s, "input.value", S("hi"));
  s.events.push_back({kT0, "gen_ai.content.prompt", {{"gen_ai.prompt", S("x")}}});
  s.events.push_back({kT0, "gen_ai.choice", {}});
  s.events.push_back({kT0, "exception", {{"gen_ai.prompt", S("x")}, {"a", S("b")}}});
  EXPECT_EQ(StripContent(s), 10);
  EXPECT_EQ(s.attributes.size(), kept);
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].attributes.size(), 1u);
  // Tokens and models survive.
  EXPECT_EQ(MapGenAiSpan(s)->usage.input, 1200);
  EXPECT_EQ(StripContent(s), 0);
}

TEST(RedactContent, RewritesOnlyContentValues) {
  core::Span s = CurrentOtelSpan();
  Set(s, "gen_ai.input.messages", core::JsonText{R"([{"content":"SECRET one"}])"});
  Set(s, "gen_ai.prompt.0.content", S("SECRET two"));
  Set(s, "user.note", S("SECRET stays: not a content attribute"));
  s.events.push_back({kT0, "gen_ai.content.prompt", {{"any.key", S("SECRET three")}}});
  s.events.push_back({kT0, "exception", {{"exception.message", S("SECRET four")}}});
  std::vector<std::string> seen;
  const int n = RedactContent(s, [&seen](std::string& text) {
    seen.push_back(text);
    const size_t at = text.find("SECRET");
    if (at == std::string::npos) return 0;
    text.replace(at, 6, "[X]");
    return 1;
  });
  EXPECT_EQ(n, 3);
  EXPECT_EQ(seen.size(), 3u);
  auto value = [&s](std::string_view key) -> std::string {
    for (const auto& a : s.attributes) {
      if (a.key != key) continue;
      if (const auto* j = std::get_if<core::JsonText>(&a.value)) return j->text;
      return std::get<std::string>(a.value);
    }
    return "";
  };
  EXPECT_EQ(value("gen_ai.input.messages"), R"([{"content":"[X] one"}])");
  EXPECT_EQ(value("gen_ai.prompt.0.content"), "[X] two");
  EXPECT_EQ(value("user.note"), "SECRET stays: not a content attribute");
  EXPECT_EQ(std::get<std::string>(s.events[0].attributes[0].value), "[X] three");
  EXPECT_EQ(std::get<std::string>(s.events[1].attributes[0].value), "SECRET four");
}

TEST(IsGatewaySpan, AttributeOrLookup) {
  core::Span s = CurrentOtelSpan();
  EXPECT_FALSE(IsGatewaySpan(s));
  int lookups = 0;
  GatewayCallLookup lookup = [&](const core::TraceId& t, const core::SpanId& id) {
    ++lookups;
    return t == BaseSpan().trace_id && id == BaseSpan().span_id;
  };
  EXPECT_TRUE(IsGatewaySpan(s, lookup));
  EXPECT_EQ(lookups, 1);
  s.span_id[0] ^= 1;
  EXPECT_FALSE(IsGatewaySpan(s, lookup));

  Set(s, "llmscope.gateway", true);
  EXPECT_TRUE(IsGatewaySpan(s));
  EXPECT_FALSE(MapGenAiSpan(s));  // never mapped twice
  core::Span t = CurrentOtelSpan();
  Set(t, "llmscope.gateway", S("true"));
  EXPECT_TRUE(IsGatewaySpan(t));
}

TEST(DescribeDialect, EachDialect) {
  Conformance current = DescribeDialect(CurrentOtelSpan());
  EXPECT_EQ(current.dialect, Dialect::kOtelGenAi);
  EXPECT_EQ(current.semconv_version, ">=1.37");
  EXPECT_TRUE(current.deprecated.empty());
  EXPECT_TRUE(current.missing.empty());

  core::Span legacy = BaseSpan();
  Set(legacy, "gen_ai.system", S("openai"));
  Set(legacy, "gen_ai.request.model", S("gpt-4"));
  Set(legacy, "gen_ai.usage.prompt_tokens", I(1));
  Set(legacy, "gen_ai.server.time_to_first_token", 0.3);
  legacy.status = core::SpanStatus::kError;
  Conformance l = DescribeDialect(legacy);
  EXPECT_EQ(l.dialect, Dialect::kOtelGenAiLegacy);
  EXPECT_EQ(l.semconv_version, "<=1.26");
  EXPECT_EQ(l.deprecated,
            (std::vector<std::string>{"gen_ai.system", "gen_ai.usage.prompt_tokens"}));
  EXPECT_EQ(l.misused, (std::vector<std::string>{"gen_ai.server.time_to_first_token"}));
  EXPECT_EQ(l.missing, (std::vector<std::string>{"gen_ai.operation.name", "gen_ai.provider.name",
                                                 "error.type"}));

  core::Span mid = BaseSpan();
  Set(mid, "gen_ai.operation.name", S("chat"));
  Set(mid, "gen_ai.system", S("openai"));
  Set(mid, "gen_ai.usage.input_tokens", I(1));
  EXPECT_EQ(DescribeDialect(mid).semconv_version, "1.27-1.36");

  core::Span oi = BaseSpan();
  Set(oi, "openinference.span.kind", S("LLM"));
  EXPECT_EQ(DescribeDialect(oi).dialect, Dialect::kOpenInference);
  EXPECT_EQ(DescribeDialect(oi).semconv_version, "");
  core::Span ol = BaseSpan();
  Set(ol, "llm.request.type", S("chat"));
  Set(ol, "gen_ai.system", S("openai"));
  EXPECT_EQ(DescribeDialect(ol).dialect, Dialect::kOpenLlmetry);
  EXPECT_EQ(DescribeDialect(BaseSpan()), Conformance{});
  EXPECT_EQ(DialectName(Dialect::kOtelGenAiLegacy), "otel-genai-legacy");
  // The other spans of instrumented apps are not GenAI spans, so conformance neither counts
  // them nor lists GenAI attributes as missing from them.
  core::Span workflow = BaseSpan();
  Set(workflow, "traceloop.span.kind", S("workflow"));
  Set(workflow, "traceloop.workflow.name", S("support-bot"));
  EXPECT_EQ(DescribeDialect(workflow), Conformance{});
  EXPECT_FALSE(MapGenAiSpan(workflow));
  core::Span traceloop_llm = workflow;  // the SDK's model call: current attributes as well
  Set(traceloop_llm, "gen_ai.provider.name", S("openai"));
  Set(traceloop_llm, "gen_ai.request.model", S("gpt-4o"));
  EXPECT_EQ(DescribeDialect(traceloop_llm).dialect, Dialect::kOpenLlmetry);
  core::Span chain = BaseSpan();
  Set(chain, "openinference.span.kind", S("CHAIN"));
  EXPECT_EQ(DescribeDialect(chain), Conformance{});
  core::Span llm = BaseSpan();
  Set(llm, "openinference.span.kind", S("llm"));
  EXPECT_EQ(DescribeDialect(llm).dialect, Dialect::kOpenInference);
}

TEST(ConformanceReport, CountsPerServiceAndBoundsServices) {
  ConformanceReport report(2);
  core::Span legacy = BaseSpan();
  Set(legacy, "gen_ai.system", S("openai"));
  Set(legacy, "gen_ai.request.model", S("gpt-4"));
  report.Add("a", DescribeDialect(CurrentOtelSpan()));
  report.Add("a", DescribeDialect(legacy));
  report.Add("b", DescribeDialect(CurrentOtelSpan()));
  report.Add("c", DescribeDialect(CurrentOtelSpan()));  // over the cap: "_other"
  EXPECT_EQ(report.ToJson(),
            R"({"services":[)"
            R"({"service":"_other","spans":1,"dialects":{"otel-genai":1},)"
            R"("semconv_versions":{">=1.37":1},"deprecated":{},"misused":{},"missing":{}},)"
            R"({"service":"a","spans":2,"dialects":{"otel-genai":1,"otel-genai-legacy":1},)"
            R"("semconv_versions":{"1.27-1.36":1,">=1.37":1},"deprecated":{"gen_ai.system":1},)"
            R"("misused":{},"missing":{"gen_ai.operation.name":1,"gen_ai.provider.name":1}},)"
            R"({"service":"b","spans":1,"dialects":{"otel-genai":1},)"
            R"("semconv_versions":{">=1.37":1},"deprecated":{},"misused":{},"missing":{}}]})");
}

TEST(MapGenAiSpan, EndToEndFromTheJsSdkFixtureShape) {
  // Decoding and mapping together, as the receiver will run them.
  const std::string json = R"({"resourceSpans":[{"resource":{"attributes":[
      {"key":"service.name","value":{"stringValue":"svc"}}]},
    "scopeSpans":[{"spans":[{
      "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
      "name":"chat gpt-4o-mini","kind":3,
      "startTimeUnixNano":"1718000000000000000","endTimeUnixNano":"1718000001500000000",
      "attributes":[
        {"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},
        {"key":"gen_ai.provider.name","value":{"stringValue":"openai"}},
        {"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o-mini"}},
        {"key":"gen_ai.usage.input_tokens","value":{"intValue":"120"}},
        {"key":"gen_ai.usage.output_tokens","value":{"intValue":42}},
        {"key":"gen_ai.response.finish_reasons",
         "value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}},
        {"key":"gen_ai.response.time_to_first_chunk","value":{"doubleValue":0.35}}]}]}]}]})";
  auto batch = DecodeTraces(json, Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  auto c = MapGenAiSpan(batch->spans.at(0));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->usage.input, 120);
  EXPECT_EQ(c->usage.output, 42);
  EXPECT_EQ(c->first_content_nanos, 350 * kMs);
  EXPECT_EQ(c->end_nanos, 1500 * kMs);
  EXPECT_EQ(c->finish_reasons, (std::vector<std::string>{"stop"}));
  EXPECT_EQ(c->tags.at(1).second, "svc");
}

}  // namespace
}  // namespace llmscope::otlp
