#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/llm_call.h"

namespace llmscope::core {

// An attribute value that is an array or a map, kept as its JSON text (OTLP's ArrayValue
// and KeyValueList). The text is valid JSON produced by the decoder that made it.
struct JsonText {
  std::string text;
  bool operator==(const JsonText&) const = default;
};

// One attribute value as OpenTelemetry defines it: string, bool, int, double, or a
// composite kept as JSON text. Bytes values are kept as base64 strings.
using AttributeValue = std::variant<std::string, bool, int64_t, double, JsonText>;

struct Attribute {
  std::string key;
  AttributeValue value;
  bool operator==(const Attribute&) const = default;
};
using Attributes = std::vector<Attribute>;

// A timestamped event on a span (OTLP Span.Event).
struct SpanEvent {
  int64_t time_unix_nanos = 0;
  std::string name;
  Attributes attributes;
  bool operator==(const SpanEvent&) const = default;
};

// A link from a span to another span (OTLP Span.Link).
struct SpanLink {
  TraceId trace_id{};
  SpanId span_id{};
  Attributes attributes;
  bool operator==(const SpanLink&) const = default;
};

// OTLP SpanKind values.
enum class SpanKind : uint8_t {
  kUnspecified = 0,
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};
std::string_view SpanKindName(SpanKind k);  // "unspecified", "internal", "server", ...

// OTLP Status.StatusCode values.
enum class SpanStatus : uint8_t { kUnset = 0, kOk = 1, kError = 2 };
std::string_view SpanStatusName(SpanStatus s);  // "unset", "ok", "error"

// One span as received over OTLP (or produced by llmscope itself), decoded into our own
// types. Times are wall-clock Unix nanoseconds, as OTLP carries them.
struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // zero for a root span
  std::string name;
  SpanKind kind = SpanKind::kUnspecified;
  std::string service;  // resource attribute service.name
  std::string scope;    // instrumentation scope name
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  SpanStatus status = SpanStatus::kUnset;
  std::string status_message;
  Attributes resource_attributes;
  Attributes attributes;
  std::vector<SpanEvent> events;
  std::vector<SpanLink> links;
  bool operator==(const Span&) const = default;
};

}  // namespace llmscope::core
