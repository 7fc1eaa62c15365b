#pragma once

// INTERNAL to the otlp module: includes the generated protobuf classes, so only otlp's .cc
// files, its tests, fuzz targets and benchmarks include it (never a public header).
//
// The one conversion from OTLP protobuf messages to llmscope types, shared by both
// encodings: the JSON reader fills the same messages first. Every validation rule and limit
// of decode.h lives here, so protobuf and JSON requests are judged alike.

#include <cstdint>
#include <string>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "otlp/decode.h"

namespace llmscope::otlp::internal {

namespace pb_common = ::opentelemetry::proto::common::v1;
namespace pb_trace = ::opentelemetry::proto::trace::v1;
namespace pb_metrics = ::opentelemetry::proto::metrics::v1;
namespace pb_logs = ::opentelemetry::proto::logs::v1;
namespace pb_collector_trace = ::opentelemetry::proto::collector::trace::v1;
namespace pb_collector_metrics = ::opentelemetry::proto::collector::metrics::v1;
namespace pb_collector_logs = ::opentelemetry::proto::collector::logs::v1;

// Rejected items of one request: how many, and the first reason in full (later reasons are
// only counted, so a flood of bad items cannot make the response large).
// Thread-safety: a value used by one decoding call.
class Rejections {
 public:
  void Add(int64_t items, std::string reason);
  int64_t count() const { return count_; }
  // "" when nothing was rejected; else the first reason, plus "(and N more rejected)".
  std::string Message() const;

 private:
  int64_t count_ = 0;
  int64_t reasons_ = 0;
  std::string first_;
};

// Converts a parsed request. `rejections` and `already_received` carry what the JSON reader
// rejected before conversion (zero for protobuf). The request is consumed: strings are
// moved out of it. RESOURCE_EXHAUSTED when it holds more than limits.max_items items.
core::Result<TracesBatch> ConvertTraces(pb_collector_trace::ExportTraceServiceRequest& request,
                                        const DecodeLimits& limits, Rejections rejections,
                                        int64_t already_received);
core::Result<MetricsBatch> ConvertMetrics(
    pb_collector_metrics::ExportMetricsServiceRequest& request, const DecodeLimits& limits,
    Rejections rejections, int64_t already_received);
core::Result<LogsBatch> ConvertLogs(pb_collector_logs::ExportLogsServiceRequest& request,
                                    const DecodeLimits& limits, Rejections rejections,
                                    int64_t already_received);

// Standard base64 (RFC 4648, with padding), as OTLP/JSON carries bytes values and as
// core::AttributeValue keeps them.
std::string Base64Encode(std::string_view bytes);
// Accepts padded or unpadded standard or URL-safe base64; false on any other character.
bool Base64Decode(std::string_view text, std::string& out);

}  // namespace llmscope::otlp::internal
