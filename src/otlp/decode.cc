#include "otlp/decode.h"

#include <google/protobuf/arena.h>

#include <limits>

#include "core/json_string.h"
#include "otlp/convert.h"
#include "otlp/json_reader.h"

namespace llmscope::otlp {
namespace {

core::Status CheckBody(std::string_view body, const DecodeLimits& limits) {
  // protobuf parses at most INT_MAX bytes at once, whatever the configured limit.
  if (body.size() > limits.max_body_bytes ||
      body.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return {core::StatusCode::kResourceExhausted,
            "body is " + std::to_string(body.size()) + " bytes, more than the limit of " +
                std::to_string(limits.max_body_bytes) + " (DecodeLimits.max_body_bytes)"};
  }
  return core::Status::Ok();
}

// Parses `body` into a request allocated on `arena` (one allocation block for the many
// small messages of a request, freed at once), then converts it.
template <typename Request, typename Batch, typename ConvertFn>
core::Result<Batch> Decode(std::string_view body, Encoding encoding, const DecodeLimits& limits,
                           std::string_view what, ConvertFn convert) {
  if (auto st = CheckBody(body, limits); !st.ok()) return st;
  google::protobuf::ArenaOptions options;
  options.start_block_size = 64 << 10;
  options.max_block_size = 4 << 20;
  google::protobuf::Arena arena(options);
  Request* request = google::protobuf::Arena::CreateMessage<Request>(&arena);
  internal::Rejections rejections;
  if (encoding == Encoding::kProtobuf) {
    if (!request->ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return core::InvalidArgument("body is not a valid protobuf " + std::string(what));
    }
  } else {
    if (auto st = internal::ReadOtlpJson(body, *request, rejections); !st.ok()) return st;
  }
  int64_t rejected_early = rejections.count();
  return convert(*request, limits, std::move(rejections), rejected_early);
}

}  // namespace

DecodeStats& DecodeStats::operator+=(const DecodeStats& o) {
  items_received += o.items_received;
  items_rejected += o.items_rejected;
  attributes_dropped += o.attributes_dropped;
  values_truncated += o.values_truncated;
  values_too_deep += o.values_too_deep;
  events_dropped += o.events_dropped;
  links_dropped += o.links_dropped;
  return *this;
}

std::string_view MetricKindName(MetricKind k) {
  switch (k) {
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kSum:
      return "sum";
    case MetricKind::kHistogram:
      return "histogram";
  }
  return "unknown";
}

std::string_view TemporalityName(Temporality t) {
  switch (t) {
    case Temporality::kUnspecified:
      return "unspecified";
    case Temporality::kDelta:
      return "delta";
    case Temporality::kCumulative:
      return "cumulative";
  }
  return "unknown";
}

core::Result<TracesBatch> DecodeTraces(std::string_view body, Encoding encoding,
                                       const DecodeLimits& limits) {
  return Decode<internal::pb_collector_trace::ExportTraceServiceRequest, TracesBatch>(
      body, encoding, limits, "ExportTraceServiceRequest", internal::ConvertTraces);
}

core::Result<MetricsBatch> DecodeMetrics(std::string_view body, Encoding encoding,
                                         const DecodeLimits& limits) {
  return Decode<internal::pb_collector_metrics::ExportMetricsServiceRequest, MetricsBatch>(
      body, encoding, limits, "ExportMetricsServiceRequest", internal::ConvertMetrics);
}

core::Result<LogsBatch> DecodeLogs(std::string_view body, Encoding encoding,
                                   const DecodeLimits& limits) {
  return Decode<internal::pb_collector_logs::ExportLogsServiceRequest, LogsBatch>(
      body, encoding, limits, "ExportLogsServiceRequest", internal::ConvertLogs);
}

std::string EncodeExportResponse(Signal signal, Encoding encoding, int64_t rejected,
                                 std::string_view message) {
  const bool partial = rejected > 0 || !message.empty();
  if (encoding == Encoding::kJson) {
    if (!partial) return "{}";
    std::string_view field = signal == Signal::kTraces    ? "rejectedSpans"
                             : signal == Signal::kMetrics ? "rejectedDataPoints"
                                                          : "rejectedLogRecords";
    // int64 as a JSON number: OTLP/JSON receivers accept numbers and strings, and a number
    // is what a JavaScript client reads without conversion.
    std::string out = "{\"partialSuccess\":{\"";
    out += field;
    out += "\":" + std::to_string(rejected) + ",\"errorMessage\":";
    core::AppendJsonString(out, message);
    out += "}}";
    return out;
  }
  if (!partial) return {};
  std::string out;
  switch (signal) {
    case Signal::kTraces: {
      internal::pb_collector_trace::ExportTraceServiceResponse r;
      r.mutable_partial_success()->set_rejected_spans(rejected);
      r.mutable_partial_success()->set_error_message(std::string(message));
      r.SerializeToString(&out);
      break;
    }
    case Signal::kMetrics: {
      internal::pb_collector_metrics::ExportMetricsServiceResponse r;
      r.mutable_partial_success()->set_rejected_data_points(rejected);
      r.mutable_partial_success()->set_error_message(std::string(message));
      r.SerializeToString(&out);
      break;
    }
    case Signal::kLogs: {
      internal::pb_collector_logs::ExportLogsServiceResponse r;
      r.mutable_partial_success()->set_rejected_log_records(rejected);
      r.mutable_partial_success()->set_error_message(std::string(message));
      r.SerializeToString(&out);
      break;
    }
  }
  return out;
}

std::string EncodeErrorStatus(Encoding encoding, int code, std::string_view message) {
  std::string out;
  if (encoding == Encoding::kJson) {
    out = "{\"code\":" + std::to_string(code) + ",\"message\":";
    core::AppendJsonString(out, message);
    out += "}";
    return out;
  }
  // google.rpc.Status: field 1 (int32 code, varint), field 2 (string message). Written by
  // hand: the message is two scalar fields and our .proto subset does not carry it.
  auto varint = [&out](uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  };
  if (code != 0) {
    out.push_back(0x08);
    varint(static_cast<uint64_t>(static_cast<int64_t>(code)));
  }
  if (!message.empty()) {
    out.push_back(0x12);
    varint(message.size());
    out.append(message);
  }
  return out;
}

}  // namespace llmscope::otlp
