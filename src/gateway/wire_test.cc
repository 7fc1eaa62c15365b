#include "gateway/wire.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/sse.h"

namespace llmscope::gateway {
namespace {

namespace json = boost::json;
using core::ErrorClass;
using core::TokenUsage;

json::value ParseOrDie(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

void ExpectUsage(const std::optional<TokenUsage>& got, TokenUsage want) {
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->input, want.input);
  EXPECT_EQ(got->output, want.output);
  EXPECT_EQ(got->cache_read, want.cache_read);
  EXPECT_EQ(got->cache_write, want.cache_write);
  EXPECT_EQ(got->reasoning, want.reasoning);
}

// Runs a whole SSE stream through a tap and an observer, as the handler does.
struct Observed {
  std::vector<StreamObserver::Verdict> verdicts;
  std::string forwarded;
  ResponseFacts facts;
  uint64_t malformed = 0;
};

Observed Observe(Dialect dialect, std::string_view stream, bool strip,
                 const std::vector<std::string_view>& chunks = {}) {
  SseTap tap;
  StreamObserver observer(dialect, strip);
  Observed o;
  auto on_event = [&](const SseEvent& e) {
    const StreamObserver::Verdict v = observer.OnEvent(e);
    o.verdicts.push_back(v);
    return v.forward;
  };
  if (chunks.empty()) {
    tap.Feed(stream, o.forwarded, on_event);
  } else {
    for (std::string_view c : chunks) tap.Feed(c, o.forwarded, on_event);
  }
  EXPECT_FALSE(tap.Finish(o.forwarded));
  o.facts = observer.facts();
  o.malformed = observer.malformed_events();
  return o;
}

std::vector<bool> ContentFlags(const Observed& o) {
  std::vector<bool> flags;
  for (const auto& v : o.verdicts) flags.push_back(v.content);
  return flags;
}

// ----------------------------------------------------------------------------------------
// Streams, as the providers send them.

constexpr std::string_view kUsageChunk =
    "data: "
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,)"
    R"("model":"o4-mini-2025-04-16","system_fingerprint":"fp_1","choices":[],)"
    R"("usage":{"prompt_tokens":1200,"completion_tokens":50,"total_tokens":1250,)"
    R"("prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},)"
    R"("completion_tokens_details":{"reasoning_tokens":20,"audio_tokens":0,)"
    R"("accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}})"
    "\n\n";

const std::string kChatStream =
    std::string("data: ") +
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,)"
    R"("model":"o4-mini-2025-04-16","system_fingerprint":"fp_1","choices":[{"index":0,)"
    R"("delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,)"
    R"("finish_reason":null}],"usage":null})"
    "\n\n"
    "data: "
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,)"
    R"("model":"o4-mini-2025-04-16","system_fingerprint":"fp_1","choices":[{"index":0,)"
    R"("delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null})"
    "\n\n"
    "data: "
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,)"
    R"("model":"o4-mini-2025-04-16","system_fingerprint":"fp_1","choices":[{"index":0,)"
    R"("delta":{"content":" w\u00f6rld"},"logprobs":null,"finish_reason":null}],"usage":null})"
    "\n\n"
    "data: "
    R"({"id":"chatcmpl-9","object":"chat.completion.chunk","created":1730000000,)"
    R"("model":"o4-mini-2025-04-16","system_fingerprint":"fp_1","choices":[{"index":0,)"
    R"("delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null})"
    "\n\n" +
    std::string(kUsageChunk) + "data: [DONE]\n\n";

TEST(StreamObserverTest, ChatStreamWithInjectedUsageIsStripped) {
  const Observed o = Observe(Dialect::kChatCompletions, kChatStream, /*strip=*/true);
  ASSERT_EQ(o.verdicts.size(), 6u);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{false, true, true, false, false, false}));
  EXPECT_FALSE(o.verdicts[4].forward);  // the usage-only chunk
  std::string expected = kChatStream;
  expected.erase(expected.find(kUsageChunk), kUsageChunk.size());
  EXPECT_EQ(o.forwarded, expected);
  EXPECT_EQ(o.facts.response_model, "o4-mini-2025-04-16");
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"stop"});
  ExpectUsage(o.facts.usage, {.input = 1200, .output = 50, .cache_read = 1024, .reasoning = 20});
  EXPECT_TRUE(o.facts.saw_content);
  EXPECT_EQ(o.facts.content_chars, std::string("Hello w\xC3\xB6rld").size());
  EXPECT_TRUE(o.facts.terminated);
  EXPECT_FALSE(o.facts.content_filtered);
  EXPECT_TRUE(o.facts.error_type.empty());
}

TEST(StreamObserverTest, ChatStreamKeepsUsageChunkTheClientAskedFor) {
  const Observed o = Observe(Dialect::kChatCompletions, kChatStream, /*strip=*/false);
  EXPECT_EQ(o.forwarded, kChatStream);
  ExpectUsage(o.facts.usage, {.input = 1200, .output = 50, .cache_read = 1024, .reasoning = 20});
}

TEST(StreamObserverTest, StrippingHoldsAtEverySplitPoint) {
  std::string expected = kChatStream;
  expected.erase(expected.find(kUsageChunk), kUsageChunk.size());
  for (size_t k = 0; k <= kChatStream.size(); k += 7) {
    const std::string_view s = kChatStream;
    const Observed o = Observe(Dialect::kChatCompletions, s, true, {s.substr(0, k), s.substr(k)});
    ASSERT_EQ(o.forwarded, expected) << k;
    ASSERT_TRUE(o.facts.usage.has_value()) << k;
    ASSERT_TRUE(o.facts.terminated) << k;
  }
}

TEST(StreamObserverTest, UsageOnTheLastContentChunkIsTakenAndForwarded) {
  // Some OpenAI-compatible servers attach usage to the final content chunk.
  const std::string stream =
      "data: "
      R"({"id":"c","object":"chat.completion.chunk","model":"llama-3.1-8b","choices":[{"index":0,)"
      R"("delta":{"role":"assistant"},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"id":"c","object":"chat.completion.chunk","model":"llama-3.1-8b","choices":[{"index":0,)"
      R"("delta":{"content":"Hi!"},"finish_reason":"stop"}],)"
      R"("usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}})"
      "\n\n"
      "data: [DONE]\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, /*strip=*/true);
  EXPECT_EQ(o.forwarded, stream);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{false, true, false}));
  ExpectUsage(o.facts.usage, {.input = 12, .output = 3});
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"stop"});
}

TEST(StreamObserverTest, UsageChunkWithNullOrMissingChoicesIsUsageOnly) {
  for (std::string_view choices : {R"("choices":null,)", ""}) {
    const std::string stream = "data: {\"id\":\"c\"," + std::string(choices) +
                               R"("usage":{"prompt_tokens":5,"completion_tokens":1}})" +
                               "\n\ndata: [DONE]\n\n";
    const Observed o = Observe(Dialect::kChatCompletions, stream, /*strip=*/true);
    EXPECT_EQ(o.forwarded, "data: [DONE]\n\n") << choices;
    ExpectUsage(o.facts.usage, {.input = 5, .output = 1});
  }
}

TEST(StreamObserverTest, ChatToolCallsAreContent) {
  const std::string stream =
      "data: "
      R"({"model":"gpt-4.1","choices":[{"index":0,"delta":{"role":"assistant","content":null,)"
      R"("tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":)"
      R"("get_weather","arguments":""}}]},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,)"
      R"("function":{"arguments":"{\"city\":"}}]},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"model":"gpt-4.1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,)"
      R"("function":{"arguments":""}}]},"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"model":"gpt-4.1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]})"
      "\n\n"
      "data: [DONE]\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, false);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{true, true, false, false, false}));
  EXPECT_EQ(o.facts.content_chars, std::string("get_weather").size() + 8);
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"tool_calls"});
  EXPECT_FALSE(o.facts.usage.has_value());
}

TEST(StreamObserverTest, ChatReasoningContentAndRefusalAreContent) {
  const std::string stream =
      "data: "
      R"({"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant",)"
      R"("content":null,"reasoning_content":"Think"}}]})"
      "\n\n"
      "data: "
      R"({"model":"gpt-4o","choices":[{"index":0,"delta":{"refusal":"No."}}]})"
      "\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, false);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{true, true}));
  EXPECT_FALSE(o.facts.terminated);  // no [DONE]
}

TEST(StreamObserverTest, ContentFilterFinishReason) {
  const std::string stream =
      "data: "
      R"({"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]})"
      "\n\ndata: [DONE]\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, false);
  EXPECT_TRUE(o.facts.content_filtered);
}

TEST(StreamObserverTest, ErrorObjectInsideA200Stream) {
  const std::string stream =
      "data: "
      R"({"model":"m","choices":[{"index":0,"delta":{"content":"a"}}]})"
      "\n\n"
      "data: "
      R"({"error":{"message":"The server had an error","type":"server_error","param":null,)"
      R"("code":null}})"
      "\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, false);
  EXPECT_EQ(o.facts.error_type, "server_error");
  EXPECT_EQ(o.facts.error_message, "The server had an error");
  EXPECT_FALSE(o.facts.terminated);
}

TEST(StreamObserverTest, FlatAndNamedErrorEventsOfCompatibleServers) {
  const Observed flat =
      Observe(Dialect::kChatCompletions,
              "data: "
              R"({"object":"error","message":"context too long","type":"BadRequestError",)"
              R"("param":null,"code":400})"
              "\n\n",
              false);
  EXPECT_EQ(flat.facts.error_type, "BadRequestError");
  EXPECT_EQ(flat.facts.error_message, "context too long");
  const Observed named =
      Observe(Dialect::kChatCompletions,
              "event: error\ndata: {\"message\":\"boom\",\"code\":500}\n\n", false);
  EXPECT_EQ(named.facts.error_type, "500");
  EXPECT_EQ(named.facts.error_message, "boom");
}

TEST(StreamObserverTest, MalformedEventsAreForwardedAndIgnored) {
  const std::string stream =
      "data: {\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"x\"\n\n"  // truncated JSON
      "data: [1,2]\n\n"                                                        // not an object
      "data: "
      R"({"model":"m","choices":[{"index":0,"delta":{"content":"ok"}}],"usage":"weird"})"
      "\n\n"
      "data: [DONE]\n\n";
  const Observed o = Observe(Dialect::kChatCompletions, stream, true);
  EXPECT_EQ(o.forwarded, stream);
  EXPECT_EQ(o.malformed, 2u);
  EXPECT_EQ(o.facts.content_chars, 2u);
  EXPECT_FALSE(o.facts.usage.has_value());
  EXPECT_TRUE(o.facts.terminated);
}

TEST(StreamObserverTest, LegacyCompletionsStream) {
  const std::string stream =
      "data: "
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct",)"
      R"("choices":[{"text":"Once","index":0,"logprobs":null,"finish_reason":null}]})"
      "\n\n"
      "data: "
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct",)"
      R"("choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}]})"
      "\n\n"
      "data: "
      R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct",)"
      R"("choices":[],"usage":{"prompt_tokens":4,"completion_tokens":16,"total_tokens":20}})"
      "\n\n"
      "data: [DONE]\n\n";
  const Observed o = Observe(Dialect::kCompletions, stream, true);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{true, false, false, false}));
  EXPECT_FALSE(o.verdicts[2].forward);
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"length"});
  ExpectUsage(o.facts.usage, {.input = 4, .output = 16});
  EXPECT_TRUE(o.facts.terminated);
}

const std::string kResponsesStream =
    std::string("event: response.created\n") +
    R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1",)"
    R"("object":"response","created_at":1,"status":"in_progress","model":"gpt-5-2025-08-07",)"
    R"("output":[],"usage":null}})"
    "\n\n"
    "event: response.in_progress\n"
    R"(data: {"type":"response.in_progress","sequence_number":1,"response":{"id":"resp_1",)"
    R"("status":"in_progress","model":"gpt-5-2025-08-07","output":[]}})"
    "\n\n"
    "event: response.output_item.added\n"
    R"(data: {"type":"response.output_item.added","sequence_number":2,"output_index":0,)"
    R"("item":{"id":"msg_1","type":"message","status":"in_progress","role":"assistant",)"
    R"("content":[]}})"
    "\n\n"
    "event: response.content_part.added\n"
    R"(data: {"type":"response.content_part.added","sequence_number":3,"item_id":"msg_1",)"
    R"("output_index":0,"content_index":0,"part":{"type":"output_text","text":"",)"
    R"("annotations":[]}})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1",)"
    R"("output_index":0,"content_index":0,"delta":"Hi"})"
    "\n\n"
    "event: response.output_text.delta\n"
    R"(data: {"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_1",)"
    R"("output_index":0,"content_index":0,"delta":" there"})"
    "\n\n"
    "event: response.output_text.done\n"
    R"(data: {"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1",)"
    R"("output_index":0,"content_index":0,"text":"Hi there"})"
    "\n\n"
    "event: response.completed\n"
    R"(data: {"type":"response.completed","sequence_number":7,"response":{"id":"resp_1",)"
    R"("object":"response","status":"completed","model":"gpt-5-2025-08-07","output":[{)"
    R"("id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{)"
    R"("type":"output_text","text":"Hi there","annotations":[]}]}],"usage":{)"
    R"("input_tokens":300,"input_tokens_details":{"cached_tokens":256},"output_tokens":120,)"
    R"("output_tokens_details":{"reasoning_tokens":64},"total_tokens":420}}})"
    "\n\n";

TEST(StreamObserverTest, ResponsesStream) {
  const Observed o = Observe(Dialect::kResponses, kResponsesStream, false);
  EXPECT_EQ(o.forwarded, kResponsesStream);
  EXPECT_EQ(ContentFlags(o),
            (std::vector<bool>{false, false, false, false, true, true, false, false}));
  EXPECT_EQ(o.facts.response_model, "gpt-5-2025-08-07");
  ExpectUsage(o.facts.usage, {.input = 300, .output = 120, .cache_read = 256, .reasoning = 64});
  EXPECT_EQ(o.facts.content_chars, 8u);  // deltas only, not again from the final response
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"completed"});
  EXPECT_TRUE(o.facts.terminated);
}

TEST(StreamObserverTest, ResponsesFunctionCallAndReasoningDeltasAreContent) {
  const std::string stream =
      "event: response.reasoning_summary_text.delta\n"
      R"(data: {"type":"response.reasoning_summary_text.delta","item_id":"rs_1","delta":"Plan"})"
      "\n\n"
      "event: response.function_call_arguments.delta\n"
      R"(data: {"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":"{\"a\""})"
      "\n\n"
      "event: response.function_call_arguments.delta\n"
      R"(data: {"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":""})"
      "\n\n";
  const Observed o = Observe(Dialect::kResponses, stream, false);
  EXPECT_EQ(ContentFlags(o), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(o.facts.content_chars, 8u);
}

TEST(StreamObserverTest, ResponsesFailedIncompleteAndError) {
  {
    const std::string stream =
        "event: response.failed\n"
        R"(data: {"type":"response.failed","sequence_number":3,"response":{"id":"r",)"
        R"("status":"failed","model":"gpt-5","error":{"code":"server_error",)"
        R"("message":"The model failed"},"usage":null}})"
        "\n\n";
    const Observed o = Observe(Dialect::kResponses, stream, false);
    EXPECT_TRUE(o.facts.terminated);
    EXPECT_EQ(o.facts.error_type, "server_error");
    EXPECT_EQ(o.facts.error_message, "The model failed");
    EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"failed"});
  }
  {
    const std::string stream =
        "event: response.incomplete\n"
        R"(data: {"type":"response.incomplete","response":{"status":"incomplete","model":"m",)"
        R"("incomplete_details":{"reason":"content_filter"},"usage":{"input_tokens":5,)"
        R"("output_tokens":7}}})"
        "\n\n";
    const Observed o = Observe(Dialect::kResponses, stream, false);
    EXPECT_TRUE(o.facts.terminated);
    EXPECT_TRUE(o.facts.content_filtered);
    EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"content_filter"});
    ExpectUsage(o.facts.usage, {.input = 5, .output = 7});
  }
  {
    const std::string stream =
        "event: error\n"
        R"(data: {"type":"error","code":"rate_limit_exceeded","message":"Slow down","param":null,)"
        R"("sequence_number":2})"
        "\n\n";
    const Observed o = Observe(Dialect::kResponses, stream, false);
    EXPECT_FALSE(o.facts.terminated);
    EXPECT_EQ(o.facts.error_type, "rate_limit_exceeded");
    EXPECT_EQ(o.facts.error_message, "Slow down");
  }
}

const std::string kAnthropicStream =
    std::string("event: message_start\n") +
    R"(data: {"type":"message_start","message":{"id":"msg_01","type":"message",)"
    R"("role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,)"
    R"("stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":200,)"
    R"("cache_read_input_tokens":3000,"output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking",)"
    R"("thinking":"","signature":""}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta",)"
    R"("thinking":"Let me see"}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta",)"
    R"("signature":"EqQBCgIYAhIM"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta",)"
    R"("text":"Hello"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":1})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use",)"
    R"("id":"toolu_1","name":"get_weather","input":{}}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",)"
    R"("partial_json":""}})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta",)"
    R"("partial_json":"{\"city\": \"Paris\"}"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":2})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},)"
    R"("usage":{"output_tokens":87}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

TEST(StreamObserverTest, AnthropicStream) {
  const Observed o = Observe(Dialect::kAnthropicMessages, kAnthropicStream, false);
  EXPECT_EQ(o.forwarded, kAnthropicStream);
  EXPECT_EQ(ContentFlags(o),
            (std::vector<bool>{false, false, false, true, false, false, false, true, false, true,
                               false, true, false, false, false}));
  EXPECT_EQ(o.facts.response_model, "claude-sonnet-4-5-20250929");
  ExpectUsage(o.facts.usage, {.input = 3210, .output = 87, .cache_read = 3000, .cache_write = 200});
  EXPECT_EQ(o.facts.finish_reasons, std::vector<std::string>{"tool_use"});
  EXPECT_EQ(o.facts.content_chars, std::string("Let me seeHelloget_weather").size() + 17);
  EXPECT_TRUE(o.facts.terminated);
  EXPECT_EQ(o.malformed, 0u);
}

TEST(StreamObserverTest, AnthropicMessageDeltaMayCarryInputAndCacheCounts) {
  const std::string stream =
      "event: message_start\n"
      R"(data: {"type":"message_start","message":{"model":"claude-opus-4-1","usage":{)"
      R"("input_tokens":0,"output_tokens":0}}})"
      "\n\n"
      "event: message_delta\n"
      R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{)"
      R"("input_tokens":12,"cache_creation_input_tokens":100,"cache_read_input_tokens":50,)"
      R"("output_tokens":40,"server_tool_use":null}})"
      "\n\n"
      "event: message_stop\n"
      R"(data: {"type":"message_stop"})"
      "\n\n";
  const Observed o = Observe(Dialect::kAnthropicMessages, stream, false);
  ExpectUsage(o.facts.usage, {.input = 162, .output = 40, .cache_read = 50, .cache_write = 100});
}

TEST(StreamObserverTest, AnthropicErrorAndRefusal) {
  {
    const std::string stream =
        "event: error\n"
        R"(data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"
        "\n\n";
    const Observed o = Observe(Dialect::kAnthropicMessages, stream, false);
    EXPECT_EQ(o.facts.error_type, "overloaded_error");
    EXPECT_EQ(o.facts.error_message, "Overloaded");
    EXPECT_FALSE(o.facts.terminated);
  }
  {
    const std::string stream =
        "event: message_delta\n"
        R"(data: {"type":"message_delta","delta":{"stop_reason":"refusal"},"usage":{)"
        R"("output_tokens":3}})"
        "\n\n";
    const Observed o = Observe(Dialect::kAnthropicMessages, stream, false);
    EXPECT_TRUE(o.facts.content_filtered);
  }
}

TEST(StreamObserverTest, MutatedStreamsNeverCrashAndAreForwardedWhole) {
  // Byte flips, truncations and stray line breaks in real streams: whatever the observer
  // makes of them, every byte is forwarded (nothing is stripped without strip) and no
  // exception, assertion or sanitizer error occurs.
  std::mt19937 rng(20240601);
  const std::vector<std::pair<Dialect, std::string>> streams = {
      {Dialect::kChatCompletions, kChatStream},
      {Dialect::kResponses, kResponsesStream},
      {Dialect::kAnthropicMessages, kAnthropicStream}};
  constexpr std::string_view kAlphabet = "{}[]\":,\\\n\r 0123456789e.-nulltruefalse";
  for (const auto& [dialect, original] : streams) {
    for (int round = 0; round < 400; ++round) {
      std::string s = original;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t at = rng() % s.size();
        switch (rng() % 3) {
          case 0:
            s[at] = kAlphabet[rng() % kAlphabet.size()];
            break;
          case 1:
            s.insert(at, 1, kAlphabet[rng() % kAlphabet.size()]);
            break;
          default:
            s.erase(at, 1 + rng() % 8);
            break;
        }
        if (s.empty()) s = "x";
      }
      SseTap tap;
      StreamObserver observer(dialect, /*strip_usage_only_chunk=*/false);
      std::string out;
      const size_t cut = rng() % (s.size() + 1);
      auto on_event = [&](const SseEvent& ev) { return observer.OnEvent(ev).forward; };
      tap.Feed(std::string_view(s).substr(0, cut), out, on_event);
      tap.Feed(std::string_view(s).substr(cut), out, on_event);
      (void)tap.Finish(out);
      ASSERT_EQ(out, s);
      (void)ParseResponseBody(dialect,
                              s.substr(s.find('{') == std::string::npos ? 0 : s.find('{')));
      (void)ParseRequest(dialect, s);
    }
  }
}

// ----------------------------------------------------------------------------------------
// Non-streamed bodies.

TEST(ParseResponseBodyTest, ChatCompletion) {
  const ResponseFacts f = ParseResponseBody(Dialect::kChatCompletions, R"({
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
    "choices": [
      {"index": 0, "message": {"role": "assistant", "content": "Hi there", "refusal": null},
       "logprobs": null, "finish_reason": "stop"},
      {"index": 1, "message": {"role": "assistant", "content": null, "tool_calls": [
         {"id": "call_1", "type": "function",
          "function": {"name": "f", "arguments": "{\"x\":1}"}}]},
       "finish_reason": "tool_calls"}],
    "usage": {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
              "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 128, "audio_tokens": 0}},
    "system_fingerprint": "fp_1"})");
  EXPECT_FALSE(f.malformed);
  EXPECT_EQ(f.response_model, "gpt-4o-2024-08-06");
  EXPECT_EQ(f.finish_reasons, (std::vector<std::string>{"stop", "tool_calls"}));
  ExpectUsage(f.usage, {.input = 2006, .output = 300, .cache_read = 1920, .reasoning = 128});
  EXPECT_TRUE(f.saw_content);
  EXPECT_EQ(f.content_chars, 8u + 1u + 7u);
  EXPECT_TRUE(f.terminated);
  EXPECT_FALSE(f.content_filtered);
}

TEST(ParseResponseBodyTest, ChatContentFilter) {
  const ResponseFacts f = ParseResponseBody(
      Dialect::kChatCompletions,
      R"({"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null},)"
      R"("finish_reason":"content_filter"}],"usage":{"prompt_tokens":10,"completion_tokens":0}})");
  EXPECT_TRUE(f.content_filtered);
  EXPECT_FALSE(f.saw_content);
}

TEST(ParseResponseBodyTest, LegacyCompletionAndEmbeddings) {
  const ResponseFacts c = ParseResponseBody(
      Dialect::kCompletions,
      R"({"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[)"
      R"({"text":"\n\nThis is","index":0,"logprobs":null,"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})");
  EXPECT_EQ(c.content_chars, 9u);
  EXPECT_EQ(c.finish_reasons, std::vector<std::string>{"length"});
  ExpectUsage(c.usage, {.input = 5, .output = 7});

  const ResponseFacts e = ParseResponseBody(
      Dialect::kEmbeddings,
      R"({"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-0.2]}],)"
      R"("model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}})");
  EXPECT_EQ(e.response_model, "text-embedding-3-small");
  ExpectUsage(e.usage, {.input = 8, .output = 0});
  EXPECT_FALSE(e.saw_content);
  EXPECT_TRUE(e.terminated);
}

TEST(ParseResponseBodyTest, Responses) {
  const ResponseFacts f = ParseResponseBody(Dialect::kResponses, R"({
    "id": "resp_1", "object": "response", "status": "completed", "model": "gpt-5-mini",
    "error": null, "incomplete_details": null,
    "output": [
      {"type": "reasoning", "id": "rs_1", "summary": []},
      {"type": "function_call", "id": "fc_1", "call_id": "c", "name": "f", "arguments": "{}"},
      {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
       "content": [{"type": "output_text", "text": "Done.", "annotations": []}]}],
    "usage": {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens": 400, "output_tokens_details": {"reasoning_tokens": 384},
              "total_tokens": 450}})");
  EXPECT_EQ(f.response_model, "gpt-5-mini");
  EXPECT_EQ(f.finish_reasons, std::vector<std::string>{"completed"});
  ExpectUsage(f.usage, {.input = 50, .output = 400, .reasoning = 384});
  EXPECT_EQ(f.content_chars, 1u + 2u + 5u);
  EXPECT_TRUE(f.error_type.empty());

  const ResponseFacts inc = ParseResponseBody(
      Dialect::kResponses,
      R"({"status":"incomplete","model":"m","incomplete_details":{"reason":"max_output_tokens"},)"
      R"("output":[],"usage":{"input_tokens":1,"output_tokens":16}})");
  EXPECT_EQ(inc.finish_reasons, std::vector<std::string>{"max_output_tokens"});
  EXPECT_FALSE(inc.content_filtered);
}

TEST(ParseResponseBodyTest, AnthropicMessage) {
  const ResponseFacts f = ParseResponseBody(Dialect::kAnthropicMessages, R"({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
    "content": [{"type": "thinking", "thinking": "Hm", "signature": "x"},
                {"type": "text", "text": "Hello!"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
    "stop_reason": "end_turn", "stop_sequence": null,
    "usage": {"input_tokens": 20, "cache_creation_input_tokens": 1000,
              "cache_read_input_tokens": 500, "output_tokens": 42}})");
  EXPECT_EQ(f.response_model, "claude-haiku-4-5");
  EXPECT_EQ(f.finish_reasons, std::vector<std::string>{"end_turn"});
  ExpectUsage(f.usage, {.input = 1520, .output = 42, .cache_read = 500, .cache_write = 1000});
  EXPECT_EQ(f.content_chars, 2u + 6u + 1u + std::string(R"({"a":1})").size());
  EXPECT_FALSE(f.content_filtered);

  const ResponseFacts refusal =
      ParseResponseBody(Dialect::kAnthropicMessages,
                        R"({"type":"message","model":"m","content":[],"stop_reason":"refusal",)"
                        R"("usage":{"input_tokens":3,"output_tokens":0}})");
  EXPECT_TRUE(refusal.content_filtered);
  ExpectUsage(refusal.usage, {.input = 3, .output = 0});
}

TEST(ParseResponseBodyTest, ErrorBodiesAndGarbage) {
  const ResponseFacts openai = ParseResponseBody(
      Dialect::kChatCompletions,
      R"({"error":{"message":"Rate limit reached","type":"requests","param":null,)"
      R"("code":"rate_limit_exceeded"}})");
  EXPECT_EQ(openai.error_type, "requests");
  EXPECT_EQ(openai.error_message, "Rate limit reached");
  EXPECT_FALSE(openai.usage.has_value());

  const ResponseFacts typeless =
      ParseResponseBody(Dialect::kChatCompletions,
                        R"({"error":{"message":"m","type":null,"code":"content_filter"}})");
  EXPECT_EQ(typeless.error_type, "content_filter");

  const ResponseFacts anthropic = ParseResponseBody(
      Dialect::kAnthropicMessages,
      R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}})");
  EXPECT_EQ(anthropic.error_type, "invalid_request_error");
  EXPECT_EQ(anthropic.error_message, "max_tokens: required");

  EXPECT_TRUE(ParseResponseBody(Dialect::kChatCompletions, "<html>502</html>").malformed);
  EXPECT_TRUE(ParseResponseBody(Dialect::kChatCompletions, "[]").malformed);
  EXPECT_TRUE(ParseResponseBody(Dialect::kChatCompletions, "").malformed);
  EXPECT_FALSE(ParseResponseBody(Dialect::kChatCompletions, "").terminated);
}

// ----------------------------------------------------------------------------------------
// Requests.

TEST(ParseRequestTest, ChatCompletionFields) {
  const std::string body = R"({
    "model": "gpt-4o-mini",
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": [
        {"type": "text", "text": "What is in \"this\" image?\n"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAAAAAAAAAA"}}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "look", "arguments": "{\"x\":1}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "a cat"}],
    "stream": true,
    "stream_options": {"include_usage": true},
    "max_tokens": 100,
    "max_completion_tokens": 256,
    "temperature": 0.2,
    "top_p": 1,
    "user": "user-123",
    "tools": [{"type": "function", "function": {"name": "look", "parameters": {
      "type": "object", "properties": {"content": {"type": "string"}}}}}]
  })";
  const core::Result<RequestFacts> r = ParseRequest(Dialect::kChatCompletions, body);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model, "gpt-4o-mini");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_EQ(r->max_tokens, 256);  // max_completion_tokens wins
  EXPECT_EQ(r->temperature, 0.2);
  EXPECT_EQ(r->top_p, 1.0);
  EXPECT_EQ(r->user, "user-123");
  // "Be brief." + the unescaped text part + tool arguments + tool result; not the image URL,
  // roles, ids, names or the tool schema.
  EXPECT_EQ(r->prompt_chars, std::string("Be brief.").size() +
                                 std::string("What is in \"this\" image?\n").size() +
                                 std::string("{\"x\":1}").size() + std::string("a cat").size());
}

TEST(ParseRequestTest, MaxTokensOrderDoesNotMatter) {
  const auto r = ParseRequest(Dialect::kChatCompletions,
                              R"({"max_completion_tokens":7,"max_tokens":9,"model":"m"})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->max_tokens, 7);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->temperature.has_value());
}

TEST(ParseRequestTest, AnthropicFields) {
  const auto r = ParseRequest(Dialect::kAnthropicMessages, R"({
    "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm",
                  "signature": "sig"}, {"type": "tool_use", "id": "t", "name": "f",
                  "input": {"q": "ignored"}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                  "content": "42"}]}],
    "metadata": {"user_id": "u-9"}, "temperature": 1, "user": "not-anthropic"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model, "claude-sonnet-4-5");
  EXPECT_EQ(r->max_tokens, 1024);
  EXPECT_TRUE(r->stream);
  EXPECT_EQ(r->user, "u-9");
  EXPECT_EQ(r->temperature, 1.0);
  EXPECT_EQ(r->prompt_chars, std::string("You are terse.Hihmm42").size());
}

TEST(ParseRequestTest, ResponsesCompletionsAndEmbeddings) {
  const auto resp = ParseRequest(
      Dialect::kResponses,
      R"({"model":"gpt-5","instructions":"Be kind.","input":[{"role":"user","content":[)"
      R"({"type":"input_text","text":"Hello"}]},{"type":"function_call_output","call_id":"c",)"
      R"("output":"sunny"}],"max_output_tokens":500,"stream":true,"user":"u"})");
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->max_tokens, 500);
  EXPECT_EQ(resp->prompt_chars, std::string("Be kind.Hellosunny").size());
  EXPECT_EQ(resp->user, "u");

  const auto text = ParseRequest(Dialect::kResponses, R"({"model":"gpt-5","input":"Hi there"})");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->prompt_chars, 8u);

  const auto cmpl = ParseRequest(
      Dialect::kCompletions,
      R"({"model":"gpt-3.5-turbo-instruct","prompt":[[1,2,3],"abc"],"max_tokens":16})");
  ASSERT_TRUE(cmpl.ok());
  EXPECT_EQ(cmpl->prompt_chars, 3u * 4u + 3u);
  EXPECT_EQ(cmpl->max_tokens, 16);

  const auto emb = ParseRequest(Dialect::kEmbeddings,
                                R"({"model":"text-embedding-3-small","input":["ab","cde"]})");
  ASSERT_TRUE(emb.ok());
  EXPECT_EQ(emb->prompt_chars, 5u);
}

TEST(ParseRequestTest, NullMeansAbsent) {
  const auto r = ParseRequest(
      Dialect::kChatCompletions,
      R"({"model":"m","stream":null,"stream_options":null,"max_tokens":null,"temperature":null,)"
      R"("top_p":null,"user":null,"messages":[{"role":"user","content":"x"}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_FALSE(r->temperature.has_value());
  EXPECT_EQ(r->user, "");
}

TEST(ParseRequestTest, LongAndEscapedKeysAreHandled) {
  const auto r = ParseRequest(
      Dialect::kChatCompletions,
      R"({"a_very_long_key_name_that_is_longer_than_any_field_we_know":1,)"
      R"("mod\u0065l":"escaped-key-model","messages":[{"role":"user","cont\u0065nt":"abc"}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model, "escaped-key-model");
  EXPECT_EQ(r->prompt_chars, 3u);
}

struct BadRequest {
  Dialect dialect;
  std::string body;
  std::string message;
};

TEST(ParseRequestTest, ErrorsNameTheProblem) {
  const std::vector<BadRequest> cases = {
      {Dialect::kChatCompletions, "", "request body is empty"},
      {Dialect::kChatCompletions, "  \n", "request body is empty"},
      {Dialect::kChatCompletions, R"({"model": "m",)",
       "request body is not valid JSON: incomplete JSON at offset 14"},
      {Dialect::kChatCompletions, R"({"model": x})",
       "request body is not valid JSON: syntax error at offset 10"},
      {Dialect::kChatCompletions, R"({"model":"m"} {})",
       "request body is not valid JSON: extra data at offset 14"},
      {Dialect::kChatCompletions, R"([{"model":"m"}])", "request body must be a JSON object"},
      {Dialect::kChatCompletions, R"("model")", "request body must be a JSON object"},
      {Dialect::kChatCompletions, R"({"messages":[]})", "missing required field 'model'"},
      {Dialect::kChatCompletions, R"({"model":null})", "missing required field 'model'"},
      {Dialect::kChatCompletions, R"({"model":4})", "field 'model' must be a string"},
      {Dialect::kChatCompletions, R"({"model":["m"]})", "field 'model' must be a string"},
      {Dialect::kChatCompletions, R"({"model":""})", "field 'model' must not be empty"},
      {Dialect::kChatCompletions, R"({"model":"m","stream":"yes"})",
       "field 'stream' must be a boolean"},
      {Dialect::kAnthropicMessages, R"({"model":"m","stream":1})",
       "field 'stream' must be a boolean"},
      {Dialect::kChatCompletions, R"({"model":"m","stream_options":true})",
       "field 'stream_options' must be an object"},
      {Dialect::kChatCompletions, R"({"model":"m","stream_options":{"include_usage":"true"}})",
       "field 'stream_options.include_usage' must be a boolean"},
      {Dialect::kChatCompletions, R"({"model":"m","max_tokens":1.5})",
       "field 'max_tokens' must be an integer"},
      {Dialect::kChatCompletions, R"({"model":"m","max_completion_tokens":"9"})",
       "field 'max_completion_tokens' must be an integer"},
      {Dialect::kResponses, R"({"model":"m","max_output_tokens":[1]})",
       "field 'max_output_tokens' must be an integer"},
      {Dialect::kChatCompletions, R"({"model":"m","max_tokens":18446744073709551615})",
       "field 'max_tokens' must be an integer"},
      {Dialect::kChatCompletions, R"({"model":"m","temperature":"hot"})",
       "field 'temperature' must be a number"},
      {Dialect::kAnthropicMessages, R"({"model":"m","top_p":{}})",
       "field 'top_p' must be a number"},
      {Dialect::kChatCompletions, R"({"model":"m","user":5})", "field 'user' must be a string"},
      {Dialect::kAnthropicMessages, R"({"model":"m","metadata":{"user_id":5}})",
       "field 'metadata.user_id' must be a string"},
  };
  for (const BadRequest& c : cases) {
    const core::Result<RequestFacts> r = ParseRequest(c.dialect, c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(r.status().message(), c.message) << c.body;
  }
}

TEST(ParseRequestTest, FieldsOfOtherDialectsAreNotValidated) {
  // `stream_options` is not part of the Anthropic API, nor `user`; leave them to upstream.
  const auto r = ParseRequest(Dialect::kAnthropicMessages,
                              R"({"model":"m","stream_options":5,"user":7,"max_tokens":3})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->max_tokens, 3);
}

TEST(ParseRequestTest, DeepButBoundedNesting) {
  std::string deep = R"({"model":"m","tools":)";
  for (int i = 0; i < 127; ++i) deep += "[";
  for (int i = 0; i < 127; ++i) deep += "]";
  deep += "}";
  EXPECT_TRUE(ParseRequest(Dialect::kChatCompletions, deep).ok());
  std::string too_deep = R"({"model":"m","tools":)";
  for (int i = 0; i < 1000; ++i) too_deep += "[";
  for (int i = 0; i < 1000; ++i) too_deep += "]";
  too_deep += "}";
  const auto r = ParseRequest(Dialect::kChatCompletions, too_deep);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "request body nests deeper than 128 levels");
}

// ----------------------------------------------------------------------------------------
// Upstream body preparation.

// The members of `a` other than stream_options equal those of `b`, in the same order.
void ExpectSameMembersExceptStreamOptions(const json::object& a, const json::object& b) {
  std::vector<std::string> ka, kb;
  for (const auto& kv : a) {
    if (kv.key() != "stream_options") ka.emplace_back(kv.key());
  }
  for (const auto& kv : b) {
    if (kv.key() != "stream_options") kb.emplace_back(kv.key());
  }
  EXPECT_EQ(ka, kb);
  for (const std::string& k : ka) EXPECT_EQ(a.at(k), b.at(k)) << k;
}

TEST(PrepareUpstreamBodyTest, InsertsIncludeUsageWhenAbsent) {
  const std::string body =
      "  \n{\"model\":\"gpt-4o\",\"stream\":true,\"temperature\":0.7,\"messages\":[{\"role\":"
      "\"user\",\"content\":\"hi\"}],\"n\":1}";
  const auto facts = ParseRequest(Dialect::kChatCompletions, body);
  ASSERT_TRUE(facts.ok());
  bool injected = false;
  const std::string out = PrepareUpstreamBody(Dialect::kChatCompletions, body, *facts, &injected);
  EXPECT_TRUE(injected);
  const json::value v = ParseOrDie(out);
  EXPECT_EQ(v.at("stream_options").at("include_usage"), true);
  ExpectSameMembersExceptStreamOptions(v.as_object(), ParseOrDie(body).as_object());
  // The textual insertion leaves the client's bytes untouched.
  EXPECT_NE(out.find("\"temperature\":0.7"), std::string::npos);
  const auto again = ParseRequest(Dialect::kChatCompletions, out);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->include_usage);
  EXPECT_EQ(again->model, facts->model);
  EXPECT_EQ(again->prompt_chars, facts->prompt_chars);
}

TEST(PrepareUpstreamBodyTest, RewritesExistingStreamOptions) {
  for (std::string options : {std::string(R"({"include_usage":false,"include_obfuscation":false})"),
                              std::string("{}"), std::string("null")}) {
    const std::string body = R"({"model":"gpt-4o","stream_options":)" + options +
                             R"(,"stream":true,"prompt":"p","max_tokens":5})";
    const auto facts = ParseRequest(Dialect::kCompletions, body);
    ASSERT_TRUE(facts.ok()) << body;
    EXPECT_FALSE(facts->include_usage);
    bool injected = false;
    const std::string out = PrepareUpstreamBody(Dialect::kCompletions, body, *facts, &injected);
    EXPECT_TRUE(injected) << body;
    const json::value v = ParseOrDie(out);
    EXPECT_EQ(v.at("stream_options").at("include_usage"), true) << out;
    ExpectSameMembersExceptStreamOptions(v.as_object(), ParseOrDie(body).as_object());
    if (options.find("obfuscation") != std::string::npos) {
      EXPECT_EQ(v.at("stream_options").at("include_obfuscation"), false);
    }
  }
}

TEST(PrepareUpstreamBodyTest, StreamOptionsNamedOnlyInsideText) {
  const std::string body =
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"\"stream_options\""}]})";
  const auto facts = ParseRequest(Dialect::kChatCompletions, body);
  ASSERT_TRUE(facts.ok());
  bool injected = false;
  const json::value v =
      ParseOrDie(PrepareUpstreamBody(Dialect::kChatCompletions, body, *facts, &injected));
  EXPECT_TRUE(injected);
  EXPECT_EQ(v.at("stream_options").at("include_usage"), true);
  EXPECT_EQ(v.at("messages").at(0).at("content"), "\"stream_options\"");
}

TEST(PrepareUpstreamBodyTest, LeavesOtherBodiesUnchanged) {
  struct Case {
    Dialect dialect;
    std::string body;
  };
  const std::vector<Case> cases = {
      {Dialect::kChatCompletions, R"({"model":"m","stream":false})"},
      {Dialect::kChatCompletions, R"({"model":"m"})"},
      {Dialect::kChatCompletions,
       R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})"},
      {Dialect::kAnthropicMessages, R"({"model":"m","stream":true,"max_tokens":1})"},
      {Dialect::kResponses, R"({"model":"m","stream":true,"input":"x"})"},
      {Dialect::kEmbeddings, R"({"model":"m","input":"x"})"},
  };
  for (const Case& c : cases) {
    const auto facts = ParseRequest(c.dialect, c.body);
    ASSERT_TRUE(facts.ok()) << c.body;
    bool injected = true;
    EXPECT_EQ(PrepareUpstreamBody(c.dialect, c.body, *facts, &injected), c.body);
    EXPECT_FALSE(injected) << c.body;
  }
}

TEST(PrepareUpstreamBodyTest, MutatedRequestsStayValidWhenAccepted) {
  // Whatever ParseRequest accepts, the prepared body is valid JSON that asks for usage.
  const std::string original =
      R"({"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false},)"
      R"("messages":[{"role":"user","content":"hi \"there\""}],"temperature":0.5,"n":1})";
  std::mt19937 rng(7);
  constexpr std::string_view kAlphabet = "{}[]\":, 0123456789.-nulltruefalse";
  int accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string s = original;
    const size_t at = rng() % s.size();
    switch (rng() % 3) {
      case 0:
        s[at] = kAlphabet[rng() % kAlphabet.size()];
        break;
      case 1:
        s.insert(at, 1, kAlphabet[rng() % kAlphabet.size()]);
        break;
      default:
        s.erase(at, 1 + rng() % 12);
        break;
    }
    const auto facts = ParseRequest(Dialect::kChatCompletions, s);
    if (!facts.ok()) continue;
    ++accepted;
    bool injected = false;
    const std::string out = PrepareUpstreamBody(Dialect::kChatCompletions, s, *facts, &injected);
    if (!injected) {
      EXPECT_EQ(out, s);
      continue;
    }
    const auto again = ParseRequest(Dialect::kChatCompletions, out);
    ASSERT_TRUE(again.ok()) << s << " -> " << out;
    EXPECT_TRUE(again->include_usage) << out;
    EXPECT_EQ(again->model, facts->model);
  }
  EXPECT_GT(accepted, 100);
}

// ----------------------------------------------------------------------------------------
// Classification, error bodies, estimation.

TEST(ClassifyUpstreamStatusTest, Table) {
  EXPECT_EQ(ClassifyUpstreamStatus(200, ""), ErrorClass::kNone);
  for (int s : {400, 404, 409, 413, 422, 402, 405}) {
    EXPECT_EQ(ClassifyUpstreamStatus(s, "{}"), ErrorClass::kInvalidRequest) << s;
  }
  EXPECT_EQ(ClassifyUpstreamStatus(401, ""), ErrorClass::kAuth);
  EXPECT_EQ(ClassifyUpstreamStatus(403, ""), ErrorClass::kAuth);
  EXPECT_EQ(ClassifyUpstreamStatus(429, ""), ErrorClass::kRateLimit);
  EXPECT_EQ(ClassifyUpstreamStatus(529, ""), ErrorClass::kRateLimit);
  EXPECT_EQ(ClassifyUpstreamStatus(408, ""), ErrorClass::kTimeout);
  EXPECT_EQ(ClassifyUpstreamStatus(504, ""), ErrorClass::kTimeout);
  for (int s : {500, 502, 503, 599, 302, 100}) {
    EXPECT_EQ(ClassifyUpstreamStatus(s, ""), ErrorClass::kServerError) << s;
  }
}

TEST(ClassifyUpstreamStatusTest, ContentPolicy400) {
  EXPECT_EQ(
      ClassifyUpstreamStatus(
          400,
          R"({"error":{"message":"The response was filtered due to the prompt triggering Azure )"
          R"(OpenAI's content management policy.","type":null,"param":"prompt",)"
          R"("code":"content_filter","status":400}})"),
      ErrorClass::kContentFilter);
  EXPECT_EQ(ClassifyUpstreamStatus(
                400, R"({"error":{"code":"content_policy_violation","message":"Rejected"}})"),
            ErrorClass::kContentFilter);
  EXPECT_EQ(ClassifyUpstreamStatus(400, "Your request violates our Content Policy"),
            ErrorClass::kContentFilter);
  EXPECT_EQ(
      ClassifyUpstreamStatus(
          400, R"({"error":{"message":"'messages' is required","type":"invalid_request_error"}})"),
      ErrorClass::kInvalidRequest);
  // Only a 400 is read for content policy.
  EXPECT_EQ(ClassifyUpstreamStatus(500, "content_filter"), ErrorClass::kServerError);
}

TEST(ErrorBodyTest, OpenAiShape) {
  const std::string tricky = "bad \"model\" \\ path\n\ttab \x01 caf\xC3\xA9";
  const json::value v = ParseOrDie(OpenAiErrorBody(tricky, "invalid_request_error", "model"));
  EXPECT_EQ(v.at("error").at("message").as_string(), tricky);
  EXPECT_EQ(v.at("error").at("type"), "invalid_request_error");
  EXPECT_EQ(v.at("error").at("param"), "model");
  EXPECT_TRUE(v.at("error").at("code").is_null());
  EXPECT_EQ(v.as_object().size(), 1u);
  EXPECT_EQ(v.at("error").as_object().size(), 4u);

  const json::value w = ParseOrDie(OpenAiErrorBody("m", "t", "", "rate_limit_exceeded"));
  EXPECT_TRUE(w.at("error").at("param").is_null());
  EXPECT_EQ(w.at("error").at("code"), "rate_limit_exceeded");
  EXPECT_EQ(OpenAiErrorBody("m", "t"),
            R"({"error":{"message":"m","type":"t","param":null,"code":null}})");
}

TEST(ErrorBodyTest, AnthropicShape) {
  const std::string tricky = "quote\" backslash\\ newline\n nul\x1f";
  const std::string body = AnthropicErrorBody("overloaded_error", tricky);
  const json::value v = ParseOrDie(body);
  EXPECT_EQ(v.at("type"), "error");
  EXPECT_EQ(v.at("error").at("type"), "overloaded_error");
  EXPECT_EQ(v.at("error").at("message").as_string(), tricky);
  EXPECT_NE(body.find("\\u001f"), std::string::npos);
}

TEST(EstimateTokensTest, CeilOfQuarter) {
  EXPECT_EQ(EstimateTokens(0), 0);
  EXPECT_EQ(EstimateTokens(1), 1);
  EXPECT_EQ(EstimateTokens(4), 1);
  EXPECT_EQ(EstimateTokens(5), 2);
  EXPECT_EQ(EstimateTokens(4000), 1000);
}

TEST(DialectTest, ForEndpoint) {
  EXPECT_EQ(DialectFor(core::Endpoint::kChatCompletions), Dialect::kChatCompletions);
  EXPECT_EQ(DialectFor(core::Endpoint::kCompletions), Dialect::kCompletions);
  EXPECT_EQ(DialectFor(core::Endpoint::kEmbeddings), Dialect::kEmbeddings);
  EXPECT_EQ(DialectFor(core::Endpoint::kResponses), Dialect::kResponses);
  EXPECT_EQ(DialectFor(core::Endpoint::kMessages), Dialect::kAnthropicMessages);
  EXPECT_EQ(DialectName(Dialect::kAnthropicMessages), "anthropic_messages");
}

}  // namespace
}  // namespace llmscope::gateway

namespace llmscope::gateway {
namespace {

TEST(NullUsageTest, RemovesTheTopLevelNullUsageMemberOnly) {
  std::string out;
  std::string_view trailing =
      "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],"
      "\"usage\":null}\n\n";
  ASSERT_TRUE(AppendWithoutNullUsage(trailing, out));
  EXPECT_EQ(out,
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n");
  out.clear();
  ASSERT_TRUE(AppendWithoutNullUsage("data: {\"usage\":null,\"id\":\"c\"}\n\n", out));
  EXPECT_EQ(out, "data: {\"id\":\"c\"}\n\n");
  out.clear();
  EXPECT_FALSE(
      AppendWithoutNullUsage("data: {\"id\":\"c\",\"usage\":{\"prompt_tokens\":1}}\n\n", out));
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace llmscope::gateway

namespace llmscope::gateway {
namespace {

std::string ChunkEvent(std::string_view delta, std::string_view finish = "null") {
  return std::string("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,") +
         "\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":" +
         std::string(delta) + ",\"finish_reason\":" + std::string(finish) + "}]}\n\n";
}

// A long stream: every content chunk counts (escaped text by its decoded length), and the
// finish reason, usage and terminator at the end are all recorded.
TEST(StreamObserverLongStreamTest, RecordsEveryFact) {
  std::string stream = ChunkEvent(R"({"role":"assistant","content":""})");
  std::string text;
  for (int i = 0; i < 30; ++i) {
    std::string word = " w" + std::to_string(i);
    text += word;
    stream += ChunkEvent("{\"content\":\"" + word + "\"}");
  }
  text += " caf\xC3\xA9\n";  // escaped on the wire: counted decoded, like a full parse
  stream += ChunkEvent(R"({"content":" caf\u00e9\n"})");
  stream += ChunkEvent("{}", "\"stop\"");
  stream +=
      "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":"
      "{\"prompt_tokens\":9,\"completion_tokens\":30,\"total_tokens\":39}}\n\ndata: [DONE]\n\n";
  SseTap tap;
  StreamObserver obs(Dialect::kChatCompletions, /*strip_usage_only_chunk=*/true);
  std::string out;
  int content_events = 0;
  tap.Feed(stream, out, [&](const SseEvent& e) {
    auto v = obs.OnEvent(e);
    content_events += v.content;
    return v.forward;
  });
  const ResponseFacts& f = obs.facts();
  EXPECT_EQ(content_events, 31);
  EXPECT_EQ(f.content_chars, text.size());
  EXPECT_EQ(f.response_model, "gpt-4o-mini-2024-07-18");
  ASSERT_EQ(f.finish_reasons.size(), 1u);
  EXPECT_EQ(f.finish_reasons[0], "stop");
  ASSERT_TRUE(f.usage.has_value());
  EXPECT_EQ(f.usage->input, 9);
  EXPECT_EQ(f.usage->output, 30);
  EXPECT_TRUE(f.terminated);
  EXPECT_EQ(out.find("\"choices\":[]"), std::string::npos) << "usage-only chunk stripped";
}

}  // namespace
}  // namespace llmscope::gateway
