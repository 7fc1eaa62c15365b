#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llmscope::core {

// W3C trace context identifiers (https://www.w3.org/TR/trace-context/). All-zero is invalid.
using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

std::string ToHex(const TraceId& id);
std::string ToHex(const SpanId& id);
// Appends the lowercase hex of `id` to `out` (no allocation beyond `out`'s growth).
void AppendHex(std::string& out, const TraceId& id);
void AppendHex(std::string& out, const SpanId& id);
bool IsValid(const TraceId& id);
bool IsValid(const SpanId& id);
// Parses 32 (trace) or 16 (span) lowercase or uppercase hex digits; nullopt otherwise.
std::optional<TraceId> ParseTraceIdHex(std::string_view hex);
std::optional<SpanId> ParseSpanIdHex(std::string_view hex);

// The API a call was made against. Bounded: used as a metric label.
enum class Endpoint : uint8_t {
  kChatCompletions,  // POST /v1/chat/completions
  kCompletions,      // POST /v1/completions
  kEmbeddings,       // POST /v1/embeddings
  kResponses,        // POST /v1/responses
  kMessages,         // POST /v1/messages (Anthropic)
  kModels,           // GET /v1/models
};
std::string_view EndpointName(Endpoint e);                         // "chat_completions", ...
std::optional<Endpoint> ParseEndpointName(std::string_view name);  // inverse of EndpointName
// The GenAI semantic-convention operation name: "chat", "text_completion", "embeddings", ...
std::string_view GenAiOperationName(Endpoint e);
// The gen_ai.provider.name value for an llmscope provider kind: the conventions'
// well-known value where one applies ("openai", "anthropic", "azure.ai.openai",
// "aws.bedrock", "gcp.gemini", ...), the kind itself otherwise ("openai_compatible",
// "simulator"), "unknown" when empty. Thread-safety: pure.
std::string_view GenAiProviderName(std::string_view provider_kind);

// Why a call failed. Bounded: used as the error_type metric label.
enum class ErrorClass : uint8_t {
  kNone,
  kInvalidRequest,       // 400/404/409/413/422: the request itself is wrong
  kAuth,                 // 401/403
  kRateLimit,            // 429, Anthropic 529 overloaded
  kTimeout,              // upstream did not answer in time (or 408/504)
  kUpstreamUnreachable,  // connect/TLS/DNS failure, connection reset before a response
  kServerError,          // 5xx, or a stream that ended without its terminator
  kContentFilter,        // the provider refused on content policy
  kCancelled,            // the client went away before the response finished
};
std::string_view ErrorClassName(ErrorClass e);  // "none", "invalid_request", ...
std::optional<ErrorClass> ParseErrorClassName(std::string_view name);  // inverse

// Where the token counts of a call came from.
enum class UsageSource : uint8_t {
  kProvider,   // reported by the provider in the response
  kEstimated,  // estimated from text length because the provider reported nothing
  kMissing,    // neither: counts are zero and must not be trusted
};
std::string_view UsageSourceName(UsageSource s);
std::optional<UsageSource> ParseUsageSourceName(std::string_view name);  // inverse

// Token counts as the OpenTelemetry GenAI conventions define them: input_tokens includes
// cached reads and cache writes; output_tokens includes reasoning tokens.
struct TokenUsage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t cache_read = 0;   // subset of input served from the provider's prompt cache
  int64_t cache_write = 0;  // subset of input written to the prompt cache
  int64_t reasoning = 0;    // subset of output spent on hidden reasoning
  bool operator==(const TokenUsage&) const = default;
};

// One LLM call as seen by llmscope: the unit that metrics, logs, cost and storage work on.
// Times are monotonic offsets from `start` (so durations are exact) plus one wall-clock
// timestamp for ordering. An offset of -1 means "did not happen".
struct LlmCall {
  std::string request_id;
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // the client's span when it sent a traceparent; zero otherwise

  int64_t start_unix_nanos = 0;
  int64_t first_byte_nanos = -1;     // first response byte from upstream, after start
  int64_t first_content_nanos = -1;  // first chunk carrying generated content, after start
  int64_t end_nanos = -1;            // last byte sent to the client (or failure), after start
  int64_t overhead_nanos = 0;        // time spent in llmscope itself, not waiting on upstream

  Endpoint endpoint = Endpoint::kChatCompletions;
  bool stream = false;
  std::string requested_model;
  std::string response_model;  // the model the provider says answered (often dated)
  std::string provider;        // configured upstream name: bounded by configuration
  std::string provider_kind;   // "openai", "anthropic", "openai_compatible", "simulator"

  int http_status = 0;
  ErrorClass error = ErrorClass::kNone;
  std::string error_message;
  bool client_cancelled = false;

  std::optional<int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> finish_reasons;

  TokenUsage usage;
  UsageSource usage_source = UsageSource::kMissing;
  // Filled by the pipeline's pricing step. Unpriced calls have no cost, never a silent $0.
  std::optional<double> cost_usd;
  bool unpriced = false;

  std::string user;
  std::string session;
  std::vector<std::pair<std::string, std::string>> tags;

  // Only when content capture is switched on for the route.
  std::string request_body;
  std::string response_text;

  // Derived timings in seconds; nullopt when the call did not produce what they measure.
  std::optional<double> DurationSeconds() const;
  std::optional<double> TimeToFirstTokenSeconds() const;
  // (end - first content) / (output tokens - 1): the mean gap between generated tokens.
  std::optional<double> TimePerOutputTokenSeconds() const;

  bool operator==(const LlmCall&) const = default;
};

}  // namespace llmscope::core
