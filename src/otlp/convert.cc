#include "otlp/convert.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "core/json_string.h"

namespace llmscope::otlp::internal {
namespace {

constexpr std::string_view kTooDeep = "[nested too deep]";

// Length of the longest prefix of `s` of at most `max` bytes that does not end inside a
// UTF-8 sequence (a cut never splits a character that was whole).
size_t Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s.size();
  size_t n = max;
  // Back off over continuation bytes (10xxxxxx) to the lead byte, at most 3.
  size_t back = 0;
  while (n > 0 && back < 3 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
    --n;
    ++back;
  }
  return n;
}

void AppendDouble(std::string& out, double d) {
  // JSON has no NaN or infinities; protobuf's JSON mapping writes them as strings.
  if (std::isnan(d)) {
    out += "\"NaN\"";
  } else if (std::isinf(d)) {
    out += d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    out.append(buf, r.ptr);
  }
}

// Converts values and attribute lists under the limits, counting what it trims.
class Converter {
 public:
  Converter(const DecodeLimits& limits, DecodeStats& stats) : limits_(limits), stats_(stats) {}

  void Attributes(google::protobuf::RepeatedPtrField<pb_common::KeyValue>& in,
                  core::Attributes& out) {
    size_t keep = std::min<size_t>(in.size(), limits_.max_attributes);
    stats_.attributes_dropped += in.size() - static_cast<int64_t>(keep);
    out.reserve(out.size() + keep);
    for (size_t i = 0; i < keep; ++i) {
      pb_common::KeyValue& kv = in[static_cast<int>(i)];
      std::string key = std::move(*kv.mutable_key());
      Truncate(key);
      out.push_back(core::Attribute{std::move(key), Value(*kv.mutable_value())});
    }
  }

  core::AttributeValue Value(pb_common::AnyValue& v) {
    switch (v.value_case()) {
      case pb_common::AnyValue::kStringValue: {
        std::string s = std::move(*v.mutable_string_value());
        Truncate(s);
        return s;
      }
      case pb_common::AnyValue::kBoolValue:
        return v.bool_value();
      case pb_common::AnyValue::kIntValue:
        return static_cast<int64_t>(v.int_value());
      case pb_common::AnyValue::kDoubleValue:
        return v.double_value();
      case pb_common::AnyValue::kBytesValue: {
        std::string s = Base64Encode(v.bytes_value());
        Truncate(s);
        return s;
      }
      case pb_common::AnyValue::kArrayValue:
      case pb_common::AnyValue::kKvlistValue: {
        std::string text;
        AppendJson(v, 1, text);
        if (text.size() > limits_.max_value_bytes) {
          // Cut JSON is no longer JSON: keep the prefix as a string instead.
          Truncate(text);
          return text;
        }
        return core::JsonText{std::move(text)};
      }
      case pb_common::AnyValue::VALUE_NOT_SET:
        break;
    }
    return std::string();  // an empty AnyValue: OTLP's "null"
  }

  // The JSON text of any value (a log body that is not a string).
  std::string Text(pb_common::AnyValue& v) {
    std::string text;
    AppendJson(v, 0, text);
    Truncate(text);
    return text;
  }

  void Truncate(std::string& s) {
    if (s.size() <= limits_.max_value_bytes) return;
    s.resize(Utf8Prefix(s, limits_.max_value_bytes));
    ++stats_.values_truncated;
  }

 private:
  // `depth` is the nesting level of `v` if it is a composite (1 for a top-level one).
  void AppendJson(const pb_common::AnyValue& v, int depth, std::string& out) {
    switch (v.value_case()) {
      case pb_common::AnyValue::kStringValue: {
        const std::string& s = v.string_value();
        core::AppendJsonString(
            out, std::string_view(s).substr(0, Utf8Prefix(s, limits_.max_value_bytes)));
        if (s.size() > limits_.max_value_bytes) ++stats_.values_truncated;
        return;
      }
      case pb_common::AnyValue::kBoolValue:
        out += v.bool_value() ? "true" : "false";
        return;
      case pb_common::AnyValue::kIntValue:
        out += std::to_string(v.int_value());
        return;
      case pb_common::AnyValue::kDoubleValue:
        AppendDouble(out, v.double_value());
        return;
      case pb_common::AnyValue::kBytesValue:
        core::AppendJsonString(out, Base64Encode(v.bytes_value()));
        return;
      case pb_common::AnyValue::kArrayValue:
      case pb_common::AnyValue::kKvlistValue:
        break;
      case pb_common::AnyValue::VALUE_NOT_SET:
        out += "null";
        return;
    }
    if (depth > limits_.max_value_depth) {
      ++stats_.values_too_deep;
      core::AppendJsonString(out, kTooDeep);
      return;
    }
    if (v.has_array_value()) {
      out += '[';
      bool first = true;
      for (const auto& e : v.array_value().values()) {
        if (!first) out += ',';
        first = false;
        AppendJson(e, depth + 1, out);
      }
      out += ']';
    } else {
      out += '{';
      bool first = true;
      for (const auto& kv : v.kvlist_value().values()) {
        if (!first) out += ',';
        first = false;
        core::AppendJsonString(out, kv.key());
        out += ':';
        AppendJson(kv.value(), depth + 1, out);
      }
      out += '}';
    }
  }

  const DecodeLimits& limits_;
  DecodeStats& stats_;
};

// Reads an id of N bytes. Empty is "absent" (allowed only when !required); all zero is
// absent too. Returns "" or the reason for rejecting the item.
template <size_t N>
std::string ReadId(const std::string& bytes, std::array<uint8_t, N>& out, std::string_view field,
                   bool required) {
  if (bytes.empty()) return required ? std::string(field) + " is missing" : std::string();
  if (bytes.size() != N) {
    return std::string(field) + " is " + std::to_string(bytes.size()) + " bytes, want " +
           std::to_string(N);
  }
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
  if (required && std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; })) {
    return std::string(field) + " is all zero";
  }
  return {};
}

// Reads a fixed64 timestamp. Returns "" or the reason for rejecting the item.
std::string ReadTime(uint64_t t, int64_t& out, std::string_view field) {
  if (t > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return std::string(field) + " is out of range";
  }
  out = static_cast<int64_t>(t);
  return {};
}

std::string CheckFuture(int64_t t, const DecodeLimits& limits, std::string_view field) {
  if (limits.now_unix_nanos > 0 && t > limits.now_unix_nanos &&
      t - limits.now_unix_nanos > limits.max_future_nanos) {
    return std::string(field) + " is " +
           std::to_string((t - limits.now_unix_nanos) / 1'000'000'000) +
           " s in the future (limit: DecodeLimits.max_future_nanos = " +
           std::to_string(limits.max_future_nanos / 1'000'000'000) + " s)";
  }
  return {};
}

std::string ServiceName(const core::Attributes& resource) {
  for (const auto& a : resource) {
    if (a.key == "service.name") {
      if (const auto* s = std::get_if<std::string>(&a.value)) return *s;
    }
  }
  return {};
}

// The item's field path as OTLP/JSON names it, e.g. resourceSpans[0].scopeSpans[1].spans[2].
std::string Where(std::string_view kind, int r, int s, int i) {
  const std::string_view scope = kind == "resourceSpans"     ? "scopeSpans"
                                 : kind == "resourceMetrics" ? "scopeMetrics"
                                                             : "scopeLogs";
  const std::string_view items = kind == "resourceSpans"     ? "spans"
                                 : kind == "resourceMetrics" ? "metrics"
                                                             : "logRecords";
  return std::string(kind) + "[" + std::to_string(r) + "]." + std::string(scope) + "[" +
         std::to_string(s) + "]." + std::string(items) + "[" + std::to_string(i) + "]";
}

core::Status TooMany(int64_t n, std::string_view what, const DecodeLimits& limits) {
  return {core::StatusCode::kResourceExhausted,
          "request has " + std::to_string(n) + " " + std::string(what) +
              ", more than the limit of " + std::to_string(limits.max_items) +
              " (DecodeLimits.max_items); send smaller batches"};
}

// Returns "" or why the span is rejected.
std::string ConvertSpan(pb_trace::Span& in, Converter& conv, const DecodeLimits& limits,
                        DecodeStats& stats, core::Span& out) {
  std::string err = ReadId(in.trace_id(), out.trace_id, "trace_id", true);
  if (err.empty()) err = ReadId(in.span_id(), out.span_id, "span_id", true);
  if (err.empty()) err = ReadId(in.parent_span_id(), out.parent_span_id, "parent_span_id", false);
  if (err.empty())
    err = ReadTime(in.start_time_unix_nano(), out.start_unix_nanos, "start_time_unix_nano");
  if (err.empty())
    err = ReadTime(in.end_time_unix_nano(), out.end_unix_nanos, "end_time_unix_nano");
  if (!err.empty()) return err;
  if (out.start_unix_nanos == 0) return "start_time_unix_nano is 0";
  if (out.end_unix_nanos == 0) return "end_time_unix_nano is 0";
  if (out.end_unix_nanos < out.start_unix_nanos) {
    return "end_time_unix_nano is before start_time_unix_nano";
  }
  err = CheckFuture(out.start_unix_nanos, limits, "start_time_unix_nano");
  if (!err.empty()) return err;

  out.name = std::move(*in.mutable_name());
  conv.Truncate(out.name);
  int kind = in.kind();
  out.kind =
      kind >= 0 && kind <= 5 ? static_cast<core::SpanKind>(kind) : core::SpanKind::kUnspecified;
  int code = in.status().code();
  out.status =
      code >= 0 && code <= 2 ? static_cast<core::SpanStatus>(code) : core::SpanStatus::kUnset;
  if (in.has_status()) {
    out.status_message = std::move(*in.mutable_status()->mutable_message());
    conv.Truncate(out.status_message);
  }
  conv.Attributes(*in.mutable_attributes(), out.attributes);

  size_t events = std::min<size_t>(in.events_size(), limits.max_events);
  stats.events_dropped += in.events_size() - static_cast<int64_t>(events);
  out.events.reserve(events);
  for (size_t i = 0; i < events; ++i) {
    auto& e = *in.mutable_events(static_cast<int>(i));
    core::SpanEvent& ev = out.events.emplace_back();
    if (!ReadTime(e.time_unix_nano(), ev.time_unix_nanos, "time").empty()) ev.time_unix_nanos = 0;
    ev.name = std::move(*e.mutable_name());
    conv.Truncate(ev.name);
    conv.Attributes(*e.mutable_attributes(), ev.attributes);
  }

  size_t links = std::min<size_t>(in.links_size(), limits.max_links);
  stats.links_dropped += in.links_size() - static_cast<int64_t>(links);
  for (size_t i = 0; i < links; ++i) {
    auto& l = *in.mutable_links(static_cast<int>(i));
    core::SpanLink link;
    if (!ReadId(l.trace_id(), link.trace_id, "trace_id", true).empty() ||
        !ReadId(l.span_id(), link.span_id, "span_id", true).empty()) {
      ++stats.links_dropped;  // a link to nothing: drop it, keep the span
      continue;
    }
    conv.Attributes(*l.mutable_attributes(), link.attributes);
    out.links.push_back(std::move(link));
  }
  return {};
}

// Returns "" or why the point is rejected. Fills the per-point fields of `out`.
std::string ConvertPointTimes(uint64_t start, uint64_t time, const DecodeLimits& limits,
                              MetricPoint& out) {
  std::string err = ReadTime(start, out.start_unix_nanos, "start_time_unix_nano");
  if (err.empty()) err = ReadTime(time, out.time_unix_nanos, "time_unix_nano");
  if (!err.empty()) return err;
  if (out.time_unix_nanos == 0) return "time_unix_nano is 0";
  return CheckFuture(out.time_unix_nanos, limits, "time_unix_nano");
}

std::string CheckHistogram(const MetricPoint& p) {
  if (p.bucket_counts.empty() && p.bounds.empty()) return {};
  if (p.bucket_counts.size() != p.bounds.size() + 1) {
    return "histogram has " + std::to_string(p.bucket_counts.size()) + " bucket_counts for " +
           std::to_string(p.bounds.size()) + " explicit_bounds, want bounds + 1";
  }
  for (size_t i = 0; i < p.bounds.size(); ++i) {
    if (std::isnan(p.bounds[i]) || (i > 0 && !(p.bounds[i - 1] < p.bounds[i]))) {
      return "histogram explicit_bounds do not increase";
    }
  }
  uint64_t total = 0;
  for (uint64_t c : p.bucket_counts) {
    if (total + c < total) return "histogram bucket_counts overflow";
    total += c;
  }
  if (total != p.count) {
    return "histogram count " + std::to_string(p.count) + " is not the sum of bucket_counts " +
           std::to_string(total);
  }
  return {};
}

}  // namespace

void Rejections::Add(int64_t items, std::string reason) {
  count_ += items;
  if (reasons_++ == 0) first_ = std::move(reason);
}

std::string Rejections::Message() const {
  if (reasons_ == 0) return {};
  if (reasons_ == 1) return first_;
  return first_ + " (and " + std::to_string(reasons_ - 1) + " more rejected)";
}

core::Result<TracesBatch> ConvertTraces(pb_collector_trace::ExportTraceServiceRequest& request,
                                        const DecodeLimits& limits, Rejections rejections,
                                        int64_t already_received) {
  int64_t n = 0;
  for (const auto& rs : request.resource_spans()) {
    for (const auto& ss : rs.scope_spans()) n += ss.spans_size();
  }
  if (static_cast<uint64_t>(n + already_received) > limits.max_items) {
    return TooMany(n + already_received, "spans", limits);
  }
  TracesBatch batch;
  batch.stats.items_received = n + already_received;
  batch.spans.reserve(n);
  Converter conv(limits, batch.stats);
  for (int r = 0; r < request.resource_spans_size(); ++r) {
    auto& rs = *request.mutable_resource_spans(r);
    core::Attributes resource;
    conv.Attributes(*rs.mutable_resource()->mutable_attributes(), resource);
    std::string service = ServiceName(resource);
    for (int s = 0; s < rs.scope_spans_size(); ++s) {
      auto& ss = *rs.mutable_scope_spans(s);
      std::string scope = std::move(*ss.mutable_scope()->mutable_name());
      conv.Truncate(scope);
      for (int i = 0; i < ss.spans_size(); ++i) {
        core::Span span;
        std::string err = ConvertSpan(*ss.mutable_spans(i), conv, limits, batch.stats, span);
        if (!err.empty()) {
          rejections.Add(1, Where("resourceSpans", r, s, i) + ": " + err);
          continue;
        }
        span.service = service;
        span.scope = scope;
        span.resource_attributes = resource;
        batch.spans.push_back(std::move(span));
      }
    }
  }
  batch.rejected_spans = rejections.count();
  batch.stats.items_rejected = rejections.count();
  batch.error_message = rejections.Message();
  return batch;
}

core::Result<MetricsBatch> ConvertMetrics(
    pb_collector_metrics::ExportMetricsServiceRequest& request, const DecodeLimits& limits,
    Rejections rejections, int64_t already_received) {
  auto points_of = [](const pb_metrics::Metric& m) -> int64_t {
    switch (m.data_case()) {
      case pb_metrics::Metric::kGauge:
        return m.gauge().data_points_size();
      case pb_metrics::Metric::kSum:
        return m.sum().data_points_size();
      case pb_metrics::Metric::kHistogram:
        return m.histogram().data_points_size();
      case pb_metrics::Metric::kExponentialHistogram:
        return m.exponential_histogram().data_points_size();
      case pb_metrics::Metric::kSummary:
        return m.summary().data_points_size();
      case pb_metrics::Metric::DATA_NOT_SET:
        break;
    }
    return 0;
  };
  int64_t n = 0;
  for (const auto& rm : request.resource_metrics()) {
    for (const auto& sm : rm.scope_metrics()) {
      for (const auto& m : sm.metrics()) n += points_of(m);
    }
  }
  if (static_cast<uint64_t>(n + already_received) > limits.max_items) {
    return TooMany(n + already_received, "data points", limits);
  }
  MetricsBatch batch;
  batch.stats.items_received = n + already_received;
  batch.points.reserve(n);
  Converter conv(limits, batch.stats);
  for (int r = 0; r < request.resource_metrics_size(); ++r) {
    auto& rm = *request.mutable_resource_metrics(r);
    core::Attributes resource;
    conv.Attributes(*rm.mutable_resource()->mutable_attributes(), resource);
    std::string service = ServiceName(resource);
    for (int s = 0; s < rm.scope_metrics_size(); ++s) {
      auto& sm = *rm.mutable_scope_metrics(s);
      std::string scope = std::move(*sm.mutable_scope()->mutable_name());
      conv.Truncate(scope);
      for (int i = 0; i < sm.metrics_size(); ++i) {
        auto& m = *sm.mutable_metrics(i);
        const std::string where = Where("resourceMetrics", r, s, i);
        int64_t points = points_of(m);
        if (points == 0) continue;
        if (m.name().empty()) {
          rejections.Add(points, where + ": metric has no name");
          continue;
        }
        if (m.has_exponential_histogram() || m.has_summary()) {
          rejections.Add(points, where + ": metric " + m.name() + ": " +
                                     (m.has_summary() ? "summaries" : "exponential histograms") +
                                     " are not supported");
          continue;
        }
        MetricPoint base;
        base.name = std::move(*m.mutable_name());
        conv.Truncate(base.name);
        base.description = std::move(*m.mutable_description());
        conv.Truncate(base.description);
        base.unit = std::move(*m.mutable_unit());
        conv.Truncate(base.unit);
        base.service = service;
        base.scope = scope;
        base.resource_attributes = resource;
        auto reject = [&](int p, const std::string& err) {
          rejections.Add(1, where + ".dataPoints[" + std::to_string(p) + "]: metric " + base.name +
                                ": " + err);
        };
        auto number_points =
            [&](google::protobuf::RepeatedPtrField<pb_metrics::NumberDataPoint>& dps) {
              for (int p = 0; p < dps.size(); ++p) {
                auto& dp = dps[p];
                MetricPoint point = base;
                std::string err = ConvertPointTimes(dp.start_time_unix_nano(), dp.time_unix_nano(),
                                                    limits, point);
                if (err.empty() && dp.value_case() == pb_metrics::NumberDataPoint::VALUE_NOT_SET) {
                  err = "data point has no value (as_double or as_int)";
                }
                if (!err.empty()) {
                  reject(p, err);
                  continue;
                }
                point.is_int = dp.value_case() == pb_metrics::NumberDataPoint::kAsInt;
                point.value = point.is_int ? static_cast<double>(dp.as_int()) : dp.as_double();
                conv.Attributes(*dp.mutable_attributes(), point.attributes);
                batch.points.push_back(std::move(point));
              }
            };
        if (m.has_gauge()) {
          base.kind = MetricKind::kGauge;
          number_points(*m.mutable_gauge()->mutable_data_points());
        } else if (m.has_sum()) {
          base.kind = MetricKind::kSum;
          int t = m.sum().aggregation_temporality();
          base.temporality =
              t >= 0 && t <= 2 ? static_cast<Temporality>(t) : Temporality::kUnspecified;
          base.monotonic = m.sum().is_monotonic();
          number_points(*m.mutable_sum()->mutable_data_points());
        } else {
          base.kind = MetricKind::kHistogram;
          int t = m.histogram().aggregation_temporality();
          base.temporality =
              t >= 0 && t <= 2 ? static_cast<Temporality>(t) : Temporality::kUnspecified;
          auto& dps = *m.mutable_histogram()->mutable_data_points();
          for (int p = 0; p < dps.size(); ++p) {
            auto& dp = dps[p];
            MetricPoint point = base;
            point.count = dp.count();
            if (dp.has_sum()) point.sum = dp.sum();
            if (dp.has_min()) point.min = dp.min();
            if (dp.has_max()) point.max = dp.max();
            point.bounds.assign(dp.explicit_bounds().begin(), dp.explicit_bounds().end());
            point.bucket_counts.assign(dp.bucket_counts().begin(), dp.bucket_counts().end());
            std::string err =
                ConvertPointTimes(dp.start_time_unix_nano(), dp.time_unix_nano(), limits, point);
            if (err.empty()) err = CheckHistogram(point);
            if (!err.empty()) {
              reject(p, err);
              continue;
            }
            conv.Attributes(*dp.mutable_attributes(), point.attributes);
            batch.points.push_back(std::move(point));
          }
        }
      }
    }
  }
  batch.rejected_data_points = rejections.count();
  batch.stats.items_rejected = rejections.count();
  batch.error_message = rejections.Message();
  return batch;
}

core::Result<LogsBatch> ConvertLogs(pb_collector_logs::ExportLogsServiceRequest& request,
                                    const DecodeLimits& limits, Rejections rejections,
                                    int64_t already_received) {
  int64_t n = 0;
  for (const auto& rl : request.resource_logs()) {
    for (const auto& sl : rl.scope_logs()) n += sl.log_records_size();
  }
  if (static_cast<uint64_t>(n + already_received) > limits.max_items) {
    return TooMany(n + already_received, "log records", limits);
  }
  LogsBatch batch;
  batch.stats.items_received = n + already_received;
  batch.records.reserve(n);
  Converter conv(limits, batch.stats);
  for (int r = 0; r < request.resource_logs_size(); ++r) {
    auto& rl = *request.mutable_resource_logs(r);
    core::Attributes resource;
    conv.Attributes(*rl.mutable_resource()->mutable_attributes(), resource);
    std::string service = ServiceName(resource);
    for (int s = 0; s < rl.scope_logs_size(); ++s) {
      auto& sl = *rl.mutable_scope_logs(s);
      std::string scope = std::move(*sl.mutable_scope()->mutable_name());
      conv.Truncate(scope);
      for (int i = 0; i < sl.log_records_size(); ++i) {
        auto& in = *sl.mutable_log_records(i);
        LogRecord rec;
        std::string err = ReadTime(in.time_unix_nano(), rec.time_unix_nanos, "time_unix_nano");
        if (err.empty()) {
          err = ReadTime(in.observed_time_unix_nano(), rec.observed_unix_nanos,
                         "observed_time_unix_nano");
        }
        if (err.empty() && rec.time_unix_nanos == 0) rec.time_unix_nanos = rec.observed_unix_nanos;
        if (err.empty() && rec.time_unix_nanos == 0) {
          err = "time_unix_nano and observed_time_unix_nano are both 0";
        }
        if (err.empty()) err = CheckFuture(rec.time_unix_nanos, limits, "time_unix_nano");
        if (err.empty()) err = ReadId(in.trace_id(), rec.trace_id, "trace_id", false);
        if (err.empty()) err = ReadId(in.span_id(), rec.span_id, "span_id", false);
        if (!err.empty()) {
          rejections.Add(1, Where("resourceLogs", r, s, i) + ": " + err);
          continue;
        }
        rec.severity_number = in.severity_number();
        rec.severity_text = std::move(*in.mutable_severity_text());
        conv.Truncate(rec.severity_text);
        rec.event_name = std::move(*in.mutable_event_name());
        conv.Truncate(rec.event_name);
        if (in.body().value_case() == pb_common::AnyValue::kStringValue) {
          rec.body = std::move(*in.mutable_body()->mutable_string_value());
          conv.Truncate(rec.body);
        } else if (in.has_body()) {
          rec.body = conv.Text(*in.mutable_body());
        }
        conv.Attributes(*in.mutable_attributes(), rec.attributes);
        rec.service = service;
        rec.scope = scope;
        rec.resource_attributes = resource;
        batch.records.push_back(std::move(rec));
      }
    }
  }
  batch.rejected_log_records = rejections.count();
  batch.stats.items_rejected = rejections.count();
  batch.error_message = rejections.Message();
  return batch;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) |
                 (static_cast<uint8_t>(bytes[i + 1]) << 8) | static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string& out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out.clear();
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '-') {
      v = 62;
    } else if (c == '/' || c == '_') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return true;
}

}  // namespace llmscope::otlp::internal
