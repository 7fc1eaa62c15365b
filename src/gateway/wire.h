#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/status.h"
#include "gateway/sse.h"

// The provider wire formats (OpenAI Chat Completions, legacy Completions, Embeddings,
// Responses; Anthropic Messages) reduced to the facts llmscope records. Pure functions: no
// I/O, no clocks. Nothing here throws; JSON library types stay in wire.cc.
namespace llmscope::gateway {

// The request/response shape a call speaks.
enum class Dialect : uint8_t {
  kChatCompletions,    // POST /v1/chat/completions
  kCompletions,        // POST /v1/completions (legacy)
  kEmbeddings,         // POST /v1/embeddings
  kResponses,          // POST /v1/responses
  kAnthropicMessages,  // POST /v1/messages
};

// The dialect of an endpoint. Endpoint::kModels carries no body; it maps to
// kChatCompletions so that error bodies for it take the OpenAI shape.
Dialect DialectFor(core::Endpoint endpoint);
std::string_view DialectName(Dialect dialect);  // "chat_completions", ..., "anthropic_messages"

// What llmscope needs from a client request.
struct RequestFacts {
  std::string model;
  bool stream = false;
  bool include_usage = false;  // the client itself asked for stream_options.include_usage: true
  // max_tokens; for chat also max_completion_tokens (which wins when both are set); for
  // Responses max_output_tokens.
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::string user;  // OpenAI `user`; Anthropic `metadata.user_id`
  // Characters of prompt text (message contents, prompt, input, system, instructions,
  // tool-call arguments) for estimating input tokens when the provider reports none. Token
  // ids sent instead of text (completions `prompt`, embeddings `input`) count 4 each.
  size_t prompt_chars = 0;
};

// Validates the fields above and extracts them in one pass over `body` (no DOM is built).
// Errors are InvalidArgument with a message fit for the client, naming the problem:
//   "request body is empty", "request body is not valid JSON: <detail> at offset N",
//   "request body must be a JSON object", "missing required field 'model'",
//   "field 'model' must be a string", "field 'model' must not be empty",
//   "field 'stream' must be a boolean", "field 'stream_options' must be an object",
//   "field 'stream_options.include_usage' must be a boolean",
//   "field 'max_tokens' must be an integer" (likewise the other limits),
//   "field 'temperature' must be a number", "field 'top_p' must be a number",
//   "field 'user' must be a string", "field 'metadata.user_id' must be a string".
// A JSON null counts as absent. Unknown fields are left to the provider.
core::Result<RequestFacts> ParseRequest(Dialect dialect, std::string_view body);

// The body to send upstream. For kChatCompletions and kCompletions when facts.stream and
// not facts.include_usage, returns the body with stream_options.include_usage: true (an
// insertion after the opening brace when the body has no "stream_options"; otherwise a
// re-serialization that keeps every other field) and sets *injected_usage = true; the
// caller must then strip the usage-only chunk (StreamObserver's strip_usage_only_chunk).
// Otherwise returns the body unchanged and sets *injected_usage = false.
// REQUIRES: facts came from ParseRequest(dialect, body). injected_usage may be null.
std::string PrepareUpstreamBody(Dialect dialect, std::string_view body, const RequestFacts& facts,
                                bool* injected_usage);

// What llmscope needs from a provider's response, streamed or not.
struct ResponseFacts {
  std::string response_model;
  // Provider values as-is ("stop", "length", "tool_calls", "end_turn", "max_tokens", ...),
  // one per choice for OpenAI. Responses API: the final status ("completed", "failed") or,
  // for an incomplete response, incomplete_details.reason ("max_output_tokens", ...).
  std::vector<std::string> finish_reasons;
  // Normalized to the OpenTelemetry GenAI conventions (see core::TokenUsage); absent when
  // the provider reported none.
  std::optional<core::TokenUsage> usage;
  bool saw_content = false;  // any generated text, tool call, refusal or reasoning
  size_t content_chars = 0;  // characters of it, for estimating output tokens
  bool terminated = false;   // the dialect's end marker was seen (a complete body counts)
  // An error reported inside a 200 stream or body (or an error body): the provider's error
  // type (or code when it has no type) and message.
  std::string error_type;
  std::string error_message;
  // finish_reason "content_filter", Anthropic stop_reason "refusal", or a Responses
  // response incomplete for reason "content_filter".
  bool content_filtered = false;
  bool malformed = false;  // the body (ParseResponseBody) was not a JSON object
};

// Facts of a complete, non-streamed response body (an error body works too: it fills
// error_type and error_message).
ResponseFacts ParseResponseBody(Dialect dialect, std::string_view body);

// Thread-safety: not thread-safe; one instance per stream, used by one thread at a time.
//
// Watches the SSE events of one streamed response (fed by an SseTap) and accumulates its
// facts. Per event it says whether to forward the event and whether it carried generated
// content (the first such event's arrival is the time to first token).
//
// Malformed event data (not JSON) is tolerated: counted in malformed_events(), forwarded,
// and otherwise ignored. An OpenAI-compatible server that puts `usage` on its last content
// chunk instead of a separate chunk is understood (that chunk is forwarded).
//
// Allocation: the event JSON is parsed into a reused arena; steady state allocates only
// when facts grow (finish reasons, model and error strings).
class StreamObserver {
 public:
  // strip_usage_only_chunk: drop the chunk that carries only usage ("choices": [] or
  // absent, with a `usage` object), because llmscope injected include_usage on the
  // client's behalf (PrepareUpstreamBody). Meaningful for kChatCompletions/kCompletions.
  StreamObserver(Dialect dialect, bool strip_usage_only_chunk);
  ~StreamObserver();
  StreamObserver(StreamObserver&&) noexcept;
  StreamObserver& operator=(StreamObserver&&) noexcept;
  StreamObserver(const StreamObserver&) = delete;
  StreamObserver& operator=(const StreamObserver&) = delete;

  struct Verdict {
    bool forward = true;  // false only for a usage-only chunk being stripped
    // The event carried generated content: non-empty text, refusal or reasoning/thinking,
    // or a tool call's name or arguments (OpenAI delta.content, delta.tool_calls[].function,
    // choices[].text; Responses *.delta events; Anthropic text_delta, input_json_delta,
    // thinking_delta and non-empty content_block_start). A role-only chunk is not content.
    bool content = false;
  };
  Verdict OnEvent(const SseEvent& event);

  const ResponseFacts& facts() const;
  uint64_t malformed_events() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The error class of an upstream HTTP status (body: the response body, used only to tell a
// content-policy 400 from other 400s). 2xx is kNone; 400/404/409/413/422 and other 4xx
// invalid_request; 401/403 auth; 429 and 529 rate_limit; 408/504 timeout; other statuses
// (5xx, 1xx, 3xx) server_error; a 400 whose body mentions content_filter, content_policy
// or a content (management) policy is content_filter.
core::ErrorClass ClassifyUpstreamStatus(int http_status, std::string_view body);

// {"error":{"message":...,"type":...,"param":null|"...","code":null|"..."}}; an empty
// param or code is written as null.
std::string OpenAiErrorBody(std::string_view message, std::string_view type,
                            std::string_view param = {}, std::string_view code = {});
// {"type":"error","error":{"type":...,"message":...}}
std::string AnthropicErrorBody(std::string_view type, std::string_view message);

// Rough token count of text: ceil(chars / 4); 0 for 0.
// When `raw` (one SSE event of a chat or text completion stream) carries a top-level
// `"usage":null`, appends the event without it to `out` and returns true; otherwise appends
// nothing and returns false. Used when llmscope asked the provider for usage on the
// client's behalf: providers then add `"usage":null` to every chunk.
bool AppendWithoutNullUsage(std::string_view raw, std::string& out);

int64_t EstimateTokens(size_t chars);

}  // namespace llmscope::gateway
