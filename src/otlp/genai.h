#pragma once

// The Rosetta stone: reading LLM calls out of spans, whichever attribute convention the
// instrumentation follows, and reporting how well each service follows the current one.
//
// Dialects understood:
//  - "otel-genai": OpenTelemetry GenAI semantic conventions as of v1.37 to v1.41
//    (gen_ai.operation.name, gen_ai.provider.name, gen_ai.usage.input_tokens, ...).
//  - "otel-genai-legacy": the same conventions before v1.37 (gen_ai.system, and before
//    v1.27 gen_ai.usage.prompt_tokens / completion_tokens, gen_ai.prompt / completion).
//  - "openinference": Arize OpenInference (openinference.span.kind, llm.model_name,
//    llm.provider, llm.system, llm.token_count.*, llm.invocation_parameters).
//  - "openllmetry": Traceloop OpenLLMetry (llm.request.type, llm.usage.*, traceloop.*,
//    gen_ai.prompt.N.* / gen_ai.completion.N.*).
// All functions are pure and safe from any thread, except ConformanceReport (see there).

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/span.h"

namespace llmscope::otlp {

enum class Dialect : uint8_t { kNone, kOtelGenAi, kOtelGenAiLegacy, kOpenInference, kOpenLlmetry };
// "none", "otel-genai", "otel-genai-legacy", "openinference", "openllmetry"
std::string_view DialectName(Dialect d);

// Recognises the spans llmscope's own gateway already recorded as calls, so that a call is
// never counted twice when an application both routes through the gateway and exports its
// own spans to llmscope (the double-counting rule):
//  - a span carrying the attribute `llmscope.gateway` = true (or "true") was made by the
//    gateway itself;
//  - a span whose (trace id, span id) `seen_by_gateway` reports is either the gateway's own
//    span or the client span whose traceparent the gateway continued (the gateway records
//    that span as the call's parent_span_id): the same LLM call, already recorded.
// `seen_by_gateway` may be empty (only the attribute is checked). It is called at most
// once per span, on the caller's thread. The gateway records a call when its response
// ends, which can be after the client's span arrives: a lookup that misses for that
// reason counts the call twice; callers that care delay mapping by a few seconds.
using GatewayCallLookup = std::function<bool(const core::TraceId&, const core::SpanId&)>;
bool IsGatewaySpan(const core::Span& span, const GatewayCallLookup& seen_by_gateway = {});

struct MapOptions {
  // Copy prompt and completion content (gen_ai.input.messages, gen_ai.prompt.N.*,
  // input.value, content events, ...) into LlmCall::request_body / response_text.
  bool capture_content = false;
};

// The LLM call a span describes, or nullopt when the span is not an LLM call (a tool call,
// an agent step, an HTTP span, a span of llmscope's own gateway: IsGatewaySpan without a
// lookup). Filled: ids, start, end_nanos (duration), first_content_nanos (from
// gen_ai.response.time_to_first_chunk, else the misused gen_ai.server.time_to_first_token),
// endpoint (from the operation: chat, text_completion, embeddings, generate_content, ...;
// chat with provider anthropic is kMessages), stream, models, provider (a bounded name:
// the conventions' well-known values, aliases normalised, anything else "other"),
// provider_kind (the provider, or "otlp" when the span names none), request parameters,
// finish reasons, usage (usage_source kProvider when any token count is present, else
// kMissing; input tokens include cache reads and writes as the conventions define),
// error (span status / error.type / http status), request_id (gen_ai.response.id, else
// the span id in hex), user (user.id, enduser.id), session (session.id,
// gen_ai.conversation.id), tags ("source" = "otlp", "service" = service.name).
std::optional<core::LlmCall> MapGenAiSpan(const core::Span& span, const MapOptions& options = {});

// An attribute value as text: a string as it is, anything else as its JSON text.
std::string AttributeText(const core::AttributeValue& v);

// Whether `call` was made by MapGenAiSpan (it carries the tag source=otlp): the call of a
// span received over OTLP rather than one the gateway recorded.
bool IsMappedFromSpan(const core::LlmCall& call);

// Removes prompt and completion content from a span: content attributes (on the span and
// on its events) and content events. Returns how many attributes and events were removed.
// Call it before storing a span unless content capture is on (and after MapGenAiSpan when
// it should see the content).
int StripContent(core::Span& span);

// Applies `redact` (which rewrites a string in place and returns how many values it
// replaced) to every content value StripContent would remove: string and composite (JSON
// text) values of content attributes, and every attribute of content events. For spans kept
// with content capture on. Returns the total the calls reported.
int RedactContent(core::Span& span, const std::function<int(std::string&)>& redact);

// How a span follows the GenAI conventions.
struct Conformance {
  Dialect dialect = Dialect::kNone;
  // A guess at the semantic-conventions version the instrumentation follows: ">=1.37",
  // "1.27-1.36", "<=1.26", or "" for the non-OpenTelemetry dialects and kNone.
  std::string semconv_version;
  // Attributes present that the current conventions deprecate (gen_ai.system, ...).
  std::vector<std::string> deprecated;
  // Attributes used against the conventions' meaning (gen_ai.server.time_to_first_token, a
  // model-server metric, set as a client span attribute).
  std::vector<std::string> misused;
  // Attributes the current conventions require on an inference span that are absent
  // (gen_ai.operation.name, gen_ai.provider.name, gen_ai.request.model; error.type on a
  // failed span). Empty for kNone.
  std::vector<std::string> missing;
  bool operator==(const Conformance&) const = default;
};
Conformance DescribeDialect(const core::Span& span);

// Conformance counts per service, for a /api/v1/conformance page.
// Thread-safety: Add and ToJson may be called from any threads (one mutex). Bounded: at
// most `max_services` services are kept apart; later ones are counted under "_other".
// Attribute names counted come from the fixed lists of DescribeDialect.
class ConformanceReport {
 public:
  explicit ConformanceReport(size_t max_services = 1000) : max_services_(max_services) {}

  void Add(std::string_view service, const Conformance& c);
  // {"services":[{"service":"svc","spans":N,"dialects":{"otel-genai":N,...},
  //   "semconv_versions":{">=1.37":N},"deprecated":{"gen_ai.system":N},
  //   "misused":{...},"missing":{"gen_ai.provider.name":N}}, ...]} sorted by service.
  std::string ToJson() const;
  // Whether `service` has sent a GenAI span (then its calls are counted from the spans).
  bool HasService(std::string_view service) const;

 private:
  struct Counts {
    int64_t spans = 0;
    std::map<std::string, int64_t, std::less<>> dialects, versions, deprecated, misused, missing;
  };
  const size_t max_services_;
  mutable std::mutex mu_;
  std::map<std::string, Counts, std::less<>> services_;  // GUARDED_BY(mu_)
};

}  // namespace llmscope::otlp
