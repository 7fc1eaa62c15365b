#include "core/llm_call.h"

#include <algorithm>

#include "core/enum_name.h"

namespace llmscope::core {
namespace {

template <size_t N>
void WriteHex(const std::array<uint8_t, N>& bytes, char* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < N; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
}

template <size_t N>
std::string HexOf(const std::array<uint8_t, N>& bytes) {
  std::string out(N * 2, '0');
  WriteHex(bytes, out.data());
  return out;
}

template <size_t N>
void AppendHexOf(std::string& out, const std::array<uint8_t, N>& bytes) {
  const size_t at = out.size();
  out.resize(at + N * 2);
  WriteHex(bytes, out.data() + at);
}

template <size_t N>
bool NonZero(const std::array<uint8_t, N>& bytes) {
  return std::any_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b != 0; });
}

template <size_t N>
std::optional<std::array<uint8_t, N>> ParseHex(std::string_view hex) {
  if (hex.size() != 2 * N) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::array<uint8_t, N> out{};
  for (size_t i = 0; i < N; ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

}  // namespace

std::optional<TraceId> ParseTraceIdHex(std::string_view hex) { return ParseHex<16>(hex); }
std::optional<SpanId> ParseSpanIdHex(std::string_view hex) { return ParseHex<8>(hex); }

std::optional<Endpoint> ParseEndpointName(std::string_view name) {
  return ParseEnumName(name, Endpoint::kModels, EndpointName);
}
std::optional<ErrorClass> ParseErrorClassName(std::string_view name) {
  return ParseEnumName(name, ErrorClass::kCancelled, ErrorClassName);
}
std::optional<UsageSource> ParseUsageSourceName(std::string_view name) {
  return ParseEnumName(name, UsageSource::kMissing, UsageSourceName);
}

std::string ToHex(const TraceId& id) { return HexOf(id); }
std::string ToHex(const SpanId& id) { return HexOf(id); }
void AppendHex(std::string& out, const TraceId& id) { AppendHexOf(out, id); }
void AppendHex(std::string& out, const SpanId& id) { AppendHexOf(out, id); }
bool IsValid(const TraceId& id) { return NonZero(id); }
bool IsValid(const SpanId& id) { return NonZero(id); }

std::string_view EndpointName(Endpoint e) {
  switch (e) {
    case Endpoint::kChatCompletions:
      return "chat_completions";
    case Endpoint::kCompletions:
      return "completions";
    case Endpoint::kEmbeddings:
      return "embeddings";
    case Endpoint::kResponses:
      return "responses";
    case Endpoint::kMessages:
      return "messages";
    case Endpoint::kModels:
      return "models";
  }
  return "unknown";
}

std::string_view GenAiOperationName(Endpoint e) {
  switch (e) {
    case Endpoint::kChatCompletions:
      return "chat";
    case Endpoint::kCompletions:
      return "text_completion";
    case Endpoint::kEmbeddings:
      return "embeddings";
    case Endpoint::kResponses:
      return "chat";
    case Endpoint::kMessages:
      return "chat";
    case Endpoint::kModels:
      return "list_models";
  }
  return "unknown";
}

std::string_view GenAiProviderName(std::string_view kind) {
  // Kinds that name a service the conventions list map to its well-known value (which the
  // conventions say MUST be used); anything else keeps the kind (a custom value MAY be).
  static constexpr std::pair<std::string_view, std::string_view> kWellKnown[] = {
      {"openai", "openai"},
      {"anthropic", "anthropic"},
      {"azure_openai", "azure.ai.openai"},
      {"azure_ai_inference", "azure.ai.inference"},
      {"bedrock", "aws.bedrock"},
      {"aws_bedrock", "aws.bedrock"},
      {"gemini", "gcp.gemini"},
      {"vertex_ai", "gcp.vertex_ai"},
      {"cohere", "cohere"},
      {"deepseek", "deepseek"},
      {"groq", "groq"},
      {"mistral", "mistral_ai"},
      {"mistral_ai", "mistral_ai"},
      {"perplexity", "perplexity"},
      {"xai", "x_ai"},
      {"x_ai", "x_ai"},
  };
  if (kind.empty()) return "unknown";
  for (const auto& [from, to] : kWellKnown) {
    if (kind == from) return to;
  }
  return kind;
}

std::string_view ErrorClassName(ErrorClass e) {
  switch (e) {
    case ErrorClass::kNone:
      return "none";
    case ErrorClass::kInvalidRequest:
      return "invalid_request";
    case ErrorClass::kAuth:
      return "auth";
    case ErrorClass::kRateLimit:
      return "rate_limit";
    case ErrorClass::kTimeout:
      return "timeout";
    case ErrorClass::kUpstreamUnreachable:
      return "upstream_unreachable";
    case ErrorClass::kServerError:
      return "server_error";
    case ErrorClass::kContentFilter:
      return "content_filter";
    case ErrorClass::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::string_view UsageSourceName(UsageSource s) {
  switch (s) {
    case UsageSource::kProvider:
      return "provider";
    case UsageSource::kEstimated:
      return "estimated";
    case UsageSource::kMissing:
      return "missing";
  }
  return "unknown";
}

std::optional<double> LlmCall::DurationSeconds() const {
  if (end_nanos < 0) return std::nullopt;
  return static_cast<double>(end_nanos) / 1e9;
}

std::optional<double> LlmCall::TimeToFirstTokenSeconds() const {
  if (first_content_nanos < 0) return std::nullopt;
  return static_cast<double>(first_content_nanos) / 1e9;
}

std::optional<double> LlmCall::TimePerOutputTokenSeconds() const {
  if (first_content_nanos < 0 || end_nanos < first_content_nanos || usage.output < 2) {
    return std::nullopt;
  }
  return static_cast<double>(end_nanos - first_content_nanos) / 1e9 /
         static_cast<double>(usage.output - 1);
}

}  // namespace llmscope::core
