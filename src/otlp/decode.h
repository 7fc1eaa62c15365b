#pragma once

// Decoding of OTLP export requests (traces, metrics, logs; protobuf or JSON) into llmscope's
// own types, and encoding of the export response. Pure functions: no I/O, no clock (the
// caller passes "now" in DecodeLimits), no protobuf or JSON library type in this header.
//
// The OTLP/HTTP handler's shape (a later server module owns it):
//   body = content-encoding gzip ? Gunzip(raw, limits.max_body_bytes) : raw   (gzip.h)
//   auto batch = DecodeTraces(body, encoding, limits);
//   !batch.ok()  -> 400 (INVALID_ARGUMENT) or 413 (RESOURCE_EXHAUSTED) with status message
//   batch.ok()   -> hand batch->spans on, count batch->stats, answer 200 with
//                   EncodeExportResponse(Signal::kTraces, encoding, batch->rejected_spans,
//                                        batch->error_message)
//
// Contract on bad input: nothing crashes and nothing is silently lost. A request that cannot
// be read at all (not protobuf, not JSON, wrong shape outside the items, over a limit) is an
// error naming the problem. An item (span, data point, log record) that is wrong is rejected
// and counted (OTLP partial success) while the rest is kept; a value over a limit is trimmed
// and counted in DecodeStats.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/span.h"
#include "core/status.h"

namespace llmscope::otlp {

// The body's encoding, from Content-Type: application/x-protobuf or application/json.
enum class Encoding : uint8_t { kProtobuf, kJson };

// The OTLP signal of a request (its path: /v1/traces, /v1/metrics, /v1/logs).
enum class Signal : uint8_t { kTraces, kMetrics, kLogs };

// Bounds on what one request may cost. Every field has a safe default; errors and counters
// name the field that was hit.
struct DecodeLimits {
  // Largest (decompressed) body accepted. Larger: RESOURCE_EXHAUSTED.
  size_t max_body_bytes = 16u << 20;
  // Most items (spans, data points or log records) in one request. More: RESOURCE_EXHAUSTED
  // (the sender's batch processor should send smaller batches).
  size_t max_items = 10'000;
  // Most attributes kept per span, event, link, resource, data point or log record; the
  // rest are dropped and counted (DecodeStats::attributes_dropped).
  size_t max_attributes = 128;
  // Longest string value (and JSON text of a composite value) kept, in bytes; longer ones
  // are cut at a UTF-8 boundary and counted (DecodeStats::values_truncated).
  size_t max_value_bytes = 64u << 10;
  // Deepest nesting of array/kvlist values kept; a deeper composite is replaced by the
  // string "[nested too deep]" and counted (DecodeStats::values_too_deep).
  int max_value_depth = 8;
  // Most events and links kept per span; the rest are dropped and counted.
  size_t max_events = 128;
  size_t max_links = 128;
  // The receiver's wall clock in Unix nanoseconds (core::Clock::UnixNanos), or 0 to skip
  // the future check. Rule: an item that starts more than max_future_nanos after `now` is
  // rejected: a sender clock that far ahead would make its data sort after everything that
  // arrives later. Timestamps in the past are accepted (late data is normal).
  int64_t now_unix_nanos = 0;
  int64_t max_future_nanos = 3600LL * 1'000'000'000;  // one hour
};

// What trimming and rejection happened while decoding, for the caller to export as counters.
struct DecodeStats {
  int64_t items_received = 0;      // items in the request, rejected ones included
  int64_t items_rejected = 0;      // equals the batch's rejected count
  int64_t attributes_dropped = 0;  // over max_attributes
  int64_t values_truncated = 0;    // strings and composites cut to max_value_bytes
  int64_t values_too_deep = 0;     // composites nested deeper than max_value_depth
  int64_t events_dropped = 0;      // over max_events
  int64_t links_dropped = 0;       // over max_links, or with invalid ids
  DecodeStats& operator+=(const DecodeStats& o);
  bool operator==(const DecodeStats&) const = default;
};

// The spans of one ExportTraceServiceRequest. rejected_spans and error_message are what
// the export response's partial_success carries.
struct TracesBatch {
  std::vector<core::Span> spans;
  int64_t rejected_spans = 0;
  std::string error_message;  // empty when nothing was rejected
  DecodeStats stats;
};

enum class MetricKind : uint8_t { kGauge, kSum, kHistogram };
std::string_view MetricKindName(MetricKind k);  // "gauge", "sum", "histogram"

// OTLP AggregationTemporality. Gauges have kUnspecified.
enum class Temporality : uint8_t { kUnspecified = 0, kDelta = 1, kCumulative = 2 };
std::string_view TemporalityName(Temporality t);  // "unspecified", "delta", "cumulative"

// One data point of a gauge, sum or explicit-bucket histogram, with its metric's identity.
struct MetricPoint {
  std::string name;
  std::string description;
  std::string unit;
  MetricKind kind = MetricKind::kGauge;
  Temporality temporality = Temporality::kUnspecified;
  bool monotonic = false;  // sums only
  std::string service;     // resource attribute service.name
  std::string scope;       // instrumentation scope name
  core::Attributes resource_attributes;
  core::Attributes attributes;
  int64_t start_unix_nanos = 0;  // 0 when the sender did not set it (gauges)
  int64_t time_unix_nanos = 0;
  // Gauge and sum: the value (an as_int value converted to double; is_int tells).
  double value = 0;
  bool is_int = false;
  // Histogram: count, optional sum/min/max, explicit bounds and one count per bucket
  // (bucket_counts.size() == bounds.size() + 1, or both empty).
  uint64_t count = 0;
  std::optional<double> sum;
  std::optional<double> min;
  std::optional<double> max;
  std::vector<double> bounds;
  std::vector<uint64_t> bucket_counts;
  bool operator==(const MetricPoint&) const = default;
};

// The data points of one ExportMetricsServiceRequest. Exponential histograms and summaries
// are not decoded: their points are rejected and counted.
struct MetricsBatch {
  std::vector<MetricPoint> points;
  int64_t rejected_data_points = 0;
  std::string error_message;
  DecodeStats stats;
};

// One OTLP log record.
struct LogRecord {
  int64_t time_unix_nanos = 0;  // the record's time, or its observed time when unset
  int64_t observed_unix_nanos = 0;
  int severity_number = 0;  // OTLP SeverityNumber: 1-4 trace ... 21-24 fatal, 0 unset
  std::string severity_text;
  std::string body;  // a string body as is; any other body as its JSON text
  std::string event_name;
  core::Attributes attributes;
  core::TraceId trace_id{};  // zero when the record is not in a trace
  core::SpanId span_id{};
  std::string service;
  std::string scope;
  core::Attributes resource_attributes;
  bool operator==(const LogRecord&) const = default;
};

struct LogsBatch {
  std::vector<LogRecord> records;
  int64_t rejected_log_records = 0;
  std::string error_message;
  DecodeStats stats;
};

// Decodes an ExportTraceServiceRequest. OTLP/JSON follows the OTLP specification: ids are
// hex strings, enums are numbers or names, 64-bit integers are numbers or decimal strings,
// field names are lowerCamelCase (snake_case accepted too), unknown fields are ignored.
// A span is rejected (and counted) when: its trace_id or span_id is missing, of the wrong
// length or all zero; its parent_span_id is neither empty nor 8 bytes; its start or end
// time is 0; it ends before it starts; it starts too far in the future (DecodeLimits).
// Errors: INVALID_ARGUMENT (unreadable body, wrong shape outside spans),
// RESOURCE_EXHAUSTED (body or span count over the limit).
core::Result<TracesBatch> DecodeTraces(std::string_view body, Encoding encoding,
                                       const DecodeLimits& limits = {});

// Decodes an ExportMetricsServiceRequest. A data point is rejected when its metric has no
// name, its time is 0 or too far in the future, a number point has no value, or a
// histogram's bucket counts do not match its bounds (or the bounds do not increase).
core::Result<MetricsBatch> DecodeMetrics(std::string_view body, Encoding encoding,
                                         const DecodeLimits& limits = {});

// Decodes an ExportLogsServiceRequest. A record is rejected when both its times are 0, it
// is too far in the future, or a trace_id/span_id it carries has the wrong length.
core::Result<LogsBatch> DecodeLogs(std::string_view body, Encoding encoding,
                                   const DecodeLimits& limits = {});

// The body of the Export<Signal>ServiceResponse: partial_success is present only when
// rejected > 0 or `message` is not empty (a full success is an empty message: zero bytes in
// protobuf, "{}" in JSON).
std::string EncodeExportResponse(Signal signal, Encoding encoding, int64_t rejected,
                                 std::string_view message);

// The body of an OTLP/HTTP error response: a google.rpc.Status with `code` (a gRPC status
// code, e.g. 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE) and `message`, in
// protobuf or as OTLP/JSON ({"code":3,"message":"..."}).
std::string EncodeErrorStatus(Encoding encoding, int code, std::string_view message);

}  // namespace llmscope::otlp
