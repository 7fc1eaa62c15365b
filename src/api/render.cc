#include "api/render.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/call_json.h"
#include "core/json_string.h"

namespace llmscope::api {
namespace {

using core::AppendJsonDouble;
using core::AppendJsonInt;
using core::AppendJsonString;
using core::AppendJsonTimestamp;

void AppendSeconds(std::string& out, std::optional<int64_t> nanos) {
  if (!nanos) {
    out.append("null");
    return;
  }
  AppendJsonDouble(out, static_cast<double>(*nanos) / 1e9);
}

void AppendCursor(std::string& out, const std::string& cursor) {
  if (cursor.empty()) {
    out.append("null");
  } else {
    AppendJsonString(out, cursor);
  }
}

std::string Success(const std::string& data) {
  std::string out = "{\"status\":\"success\",\"data\":";
  out += data;
  out += '}';
  return out;
}

void AppendAttributeValue(std::string& out, const core::AttributeValue& v) {
  struct Visitor {
    std::string& out;
    void operator()(const std::string& s) const { AppendJsonString(out, s); }
    void operator()(bool b) const { out.append(b ? "true" : "false"); }
    void operator()(int64_t i) const { AppendJsonInt(out, i); }
    void operator()(double d) const { AppendJsonDouble(out, d); }
    void operator()(const core::JsonText& j) const { out.append(j.text.empty() ? "null" : j.text); }
  };
  std::visit(Visitor{out}, v);
}

void AppendAttributes(std::string& out, const core::Attributes& attrs) {
  out.push_back('{');
  for (size_t i = 0; i < attrs.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(out, attrs[i].key);
    out.push_back(':');
    AppendAttributeValue(out, attrs[i].value);
  }
  out.push_back('}');
}

// The span's own fields, without the closing brace (children and calls follow).
void AppendSpanOpen(std::string& out, const core::Span& s) {
  out.append("{\"trace_id\":");
  AppendJsonString(out, core::ToHex(s.trace_id));
  out.append(",\"span_id\":");
  AppendJsonString(out, core::ToHex(s.span_id));
  out.append(",\"parent_span_id\":");
  if (core::IsValid(s.parent_span_id)) {
    AppendJsonString(out, core::ToHex(s.parent_span_id));
  } else {
    out.append("null");
  }
  out.append(",\"name\":");
  AppendJsonString(out, s.name);
  out.append(",\"kind\":");
  AppendJsonString(out, core::SpanKindName(s.kind));
  out.append(",\"service\":");
  AppendJsonString(out, s.service);
  out.append(",\"scope\":");
  AppendJsonString(out, s.scope);
  out.append(",\"start\":");
  AppendJsonTimestamp(out, s.start_unix_nanos);
  out.append(",\"start_unix_nanos\":");
  AppendJsonInt(out, s.start_unix_nanos);
  out.append(",\"end_unix_nanos\":");
  AppendJsonInt(out, s.end_unix_nanos);
  out.append(",\"duration_s\":");
  AppendJsonDouble(out, static_cast<double>(s.end_unix_nanos - s.start_unix_nanos) / 1e9);
  out.append(",\"status\":");
  AppendJsonString(out, core::SpanStatusName(s.status));
  out.append(",\"status_message\":");
  AppendJsonString(out, s.status_message);
  out.append(",\"attributes\":");
  AppendAttributes(out, s.attributes);
  out.append(",\"resource_attributes\":");
  AppendAttributes(out, s.resource_attributes);
  out.append(",\"events\":[");
  for (size_t i = 0; i < s.events.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append("{\"time_unix_nanos\":");
    AppendJsonInt(out, s.events[i].time_unix_nanos);
    out.append(",\"name\":");
    AppendJsonString(out, s.events[i].name);
    out.append(",\"attributes\":");
    AppendAttributes(out, s.events[i].attributes);
    out.push_back('}');
  }
  out.append("],\"links\":[");
  for (size_t i = 0; i < s.links.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append("{\"trace_id\":");
    AppendJsonString(out, core::ToHex(s.links[i].trace_id));
    out.append(",\"span_id\":");
    AppendJsonString(out, core::ToHex(s.links[i].span_id));
    out.append(",\"attributes\":");
    AppendAttributes(out, s.links[i].attributes);
    out.push_back('}');
  }
  out.push_back(']');
}

struct SpanIdHash {
  size_t operator()(const core::SpanId& id) const {
    uint64_t v = 0;
    for (uint8_t b : id) v = v << 8 | b;
    return std::hash<uint64_t>()(v);
  }
};

void AppendCsvField(std::string& out, std::string_view s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    out.append(s);
    return;
  }
  out.push_back('"');
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void AppendCsvNumber(std::string& out, std::optional<double> v) {
  if (v) AppendJsonDouble(out, *v);
}

}  // namespace

int HttpStatusFor(const core::Status& s) {
  switch (s.code()) {
    case core::StatusCode::kInvalidArgument:
      return 400;
    case core::StatusCode::kNotFound:
      return 404;
    case core::StatusCode::kResourceExhausted:
      return 422;
    case core::StatusCode::kDeadlineExceeded:
    case core::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::string RenderError(const core::Status& s) {
  std::string_view type = "internal";
  switch (s.code()) {
    case core::StatusCode::kInvalidArgument:
      type = "bad_data";
      break;
    case core::StatusCode::kNotFound:
      type = "not_found";
      break;
    case core::StatusCode::kResourceExhausted:
      type = "too_large";
      break;
    case core::StatusCode::kDeadlineExceeded:
      type = "timeout";
      break;
    case core::StatusCode::kUnavailable:
      type = "unavailable";
      break;
    default:
      break;
  }
  std::string out = "{\"status\":\"error\",\"errorType\":";
  AppendJsonString(out, type);
  out.append(",\"error\":");
  AppendJsonString(out, s.message());
  out.push_back('}');
  return out;
}

std::string RenderCallPage(const storage::CallPage& page) {
  std::string data = "{\"calls\":[";
  for (size_t i = 0; i < page.calls.size(); ++i) {
    if (i > 0) data.push_back(',');
    core::AppendCallJson(data, page.calls[i], false);
  }
  data.append("],\"next_cursor\":");
  AppendCursor(data, page.next_cursor);
  data.push_back('}');
  return Success(data);
}

std::string RenderCall(const core::LlmCall& call) {
  return Success(core::FormatCallJson(call, true));
}

std::string RenderAggregate(const storage::AggregateQuery& q, const storage::AggregateResult& r) {
  std::string data = "{\"bucket\":";
  AppendJsonString(data, storage::TimeBucketName(q.bucket));
  data.append(",\"group_by\":");
  std::string group = std::string(storage::GroupByName(q.group_by));
  if (q.group_by == storage::GroupBy::kTag) group += ":" + q.group_tag_key;
  AppendJsonString(data, group);
  data.append(",\"rows\":[");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    if (i > 0) data.push_back(',');
    data.append("{\"bucket_start\":");
    if (q.bucket == storage::TimeBucket::kNone) {
      data.append("null");
    } else {
      AppendJsonTimestamp(data, row.bucket_start_unix_nanos);
    }
    data.append(",\"bucket_start_unix_nanos\":");
    AppendJsonInt(data, row.bucket_start_unix_nanos);
    data.append(",\"group\":");
    AppendJsonString(data, row.group);
    data.append(",\"requests\":");
    AppendJsonInt(data, row.requests);
    data.append(",\"errors\":");
    AppendJsonInt(data, row.errors);
    data.append(",\"error_rate\":");
    AppendJsonDouble(data, row.requests > 0
                               ? static_cast<double>(row.errors) / static_cast<double>(row.requests)
                               : 0.0);
    data.append(",\"latency_seconds\":{\"p50\":");
    AppendSeconds(data, row.latency_p50_nanos);
    data.append(",\"p95\":");
    AppendSeconds(data, row.latency_p95_nanos);
    data.append(",\"p99\":");
    AppendSeconds(data, row.latency_p99_nanos);
    data.append("},\"ttft_seconds\":{\"p50\":");
    AppendSeconds(data, row.ttft_p50_nanos);
    data.append(",\"p95\":");
    AppendSeconds(data, row.ttft_p95_nanos);
    data.append("},\"tokens\":{\"input\":");
    AppendJsonInt(data, row.tokens.input);
    data.append(",\"output\":");
    AppendJsonInt(data, row.tokens.output);
    data.append(",\"cache_read\":");
    AppendJsonInt(data, row.tokens.cache_read);
    data.append(",\"cache_write\":");
    AppendJsonInt(data, row.tokens.cache_write);
    data.append(",\"reasoning\":");
    AppendJsonInt(data, row.tokens.reasoning);
    data.append("},\"cost_usd\":");
    AppendJsonDouble(data, row.cost_usd);
    data.append(",\"unpriced\":");
    AppendJsonInt(data, row.unpriced);
    data.push_back('}');
  }
  data.append("]}");
  return Success(data);
}

std::string RenderTop(const storage::TopQuery& q, const storage::TopResult& r) {
  std::string data = "{\"by\":";
  AppendJsonString(data, storage::TopMetricName(q.by));
  data.append(",\"dimension\":");
  std::string dim = std::string(storage::GroupByName(q.dimension));
  if (q.dimension == storage::GroupBy::kTag) dim += ":" + q.group_tag_key;
  AppendJsonString(data, dim);
  data.append(",\"rows\":[");
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const auto& row = r.rows[i];
    if (i > 0) data.push_back(',');
    data.append("{\"group\":");
    AppendJsonString(data, row.group);
    data.append(",\"requests\":");
    AppendJsonInt(data, row.requests);
    data.append(",\"input_tokens\":");
    AppendJsonInt(data, row.input_tokens);
    data.append(",\"output_tokens\":");
    AppendJsonInt(data, row.output_tokens);
    data.append(",\"total_tokens\":");
    AppendJsonInt(data, row.input_tokens + row.output_tokens);
    data.append(",\"cost_usd\":");
    AppendJsonDouble(data, row.cost_usd);
    data.push_back('}');
  }
  data.append("]}");
  return Success(data);
}

std::string RenderTracePage(const storage::TracePage& page) {
  std::string data = "{\"traces\":[";
  for (size_t i = 0; i < page.traces.size(); ++i) {
    const auto& t = page.traces[i];
    if (i > 0) data.push_back(',');
    data.append("{\"trace_id\":");
    AppendJsonString(data, core::ToHex(t.trace_id));
    data.append(",\"start\":");
    AppendJsonTimestamp(data, t.start_unix_nanos);
    data.append(",\"start_unix_nanos\":");
    AppendJsonInt(data, t.start_unix_nanos);
    data.append(",\"duration_s\":");
    AppendJsonDouble(data, static_cast<double>(t.end_unix_nanos - t.start_unix_nanos) / 1e9);
    data.append(",\"root_name\":");
    AppendJsonString(data, t.root_name);
    data.append(",\"service\":");
    AppendJsonString(data, t.service);
    data.append(",\"span_count\":");
    AppendJsonInt(data, t.span_count);
    data.append(",\"call_count\":");
    AppendJsonInt(data, t.call_count);
    data.append(",\"has_error\":");
    data.append(t.has_error ? "true" : "false");
    data.append(",\"cost_usd\":");
    AppendJsonDouble(data, t.cost_usd);
    data.push_back('}');
  }
  data.append("],\"next_cursor\":");
  AppendCursor(data, page.next_cursor);
  data.push_back('}');
  return Success(data);
}

std::string RenderTrace(const core::TraceId& id, const storage::TraceDetail& trace) {
  const auto& spans = trace.spans;
  std::unordered_map<core::SpanId, size_t, SpanIdHash> index;
  for (size_t i = 0; i < spans.size(); ++i) index.emplace(spans[i].span_id, i);
  // children[i]: indexes of spans whose parent is span i, in stored (start) order.
  std::vector<std::vector<size_t>> children(spans.size());
  std::vector<size_t> roots;
  for (size_t i = 0; i < spans.size(); ++i) {
    auto it =
        core::IsValid(spans[i].parent_span_id) ? index.find(spans[i].parent_span_id) : index.end();
    // A span that names itself as its parent would loop: it is a root.
    if (it == index.end() || it->second == i) {
      roots.push_back(i);
    } else {
      children[it->second].push_back(i);
    }
  }
  std::vector<std::vector<size_t>> span_calls(spans.size());
  std::vector<size_t> loose_calls;
  for (size_t c = 0; c < trace.calls.size(); ++c) {
    const auto& call = trace.calls[c];
    auto it = index.find(call.parent_span_id);
    if (!core::IsValid(call.parent_span_id) || it == index.end()) it = index.find(call.span_id);
    if (it != index.end()) {
      span_calls[it->second].push_back(c);
    } else {
      loose_calls.push_back(c);
    }
  }

  int64_t start = INT64_MAX;
  int64_t end = INT64_MIN;
  for (const auto& s : spans) {
    start = std::min(start, s.start_unix_nanos);
    end = std::max(end, s.end_unix_nanos);
  }
  for (const auto& c : trace.calls) {
    start = std::min(start, c.start_unix_nanos);
    end = std::max(end, c.start_unix_nanos + std::max<int64_t>(c.end_nanos, 0));
  }
  if (start == INT64_MAX) start = end = 0;

  std::string data = "{\"trace_id\":";
  AppendJsonString(data, core::ToHex(id));
  data.append(",\"start\":");
  AppendJsonTimestamp(data, start);
  data.append(",\"start_unix_nanos\":");
  AppendJsonInt(data, start);
  data.append(",\"duration_s\":");
  AppendJsonDouble(data, static_cast<double>(end - start) / 1e9);
  data.append(",\"span_count\":");
  AppendJsonInt(data, static_cast<int64_t>(spans.size()));
  data.append(",\"call_count\":");
  AppendJsonInt(data, static_cast<int64_t>(trace.calls.size()));

  // Depth-first with an explicit stack: a hostile trace of a million nested spans must not
  // overflow the thread's stack. Each frame is (span, next child to visit).
  auto append_calls = [&](const std::vector<size_t>& calls) {
    data.push_back('[');
    for (size_t k = 0; k < calls.size(); ++k) {
      if (k > 0) data.push_back(',');
      core::AppendCallJson(data, trace.calls[calls[k]], false);
    }
    data.push_back(']');
  };
  // Spans caught in a parent cycle (A under B under A) are reached from no root: each
  // unvisited one becomes a root once the real roots are done, and a child already written
  // is skipped, so every span appears exactly once and the walk ends.
  std::vector<bool> visited(spans.size(), false);
  data.append(",\"roots\":[");
  bool first_root = true;
  for (size_t r = 0; r < roots.size() + spans.size(); ++r) {
    size_t root = r < roots.size() ? roots[r] : r - roots.size();
    if (visited[root]) continue;
    visited[root] = true;
    if (!first_root) data.push_back(',');
    first_root = false;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
    AppendSpanOpen(data, spans[root]);
    data.append(",\"calls\":");
    append_calls(span_calls[root]);
    data.append(",\"children\":[");
    while (!stack.empty()) {
      auto& [span, next] = stack.back();
      if (next < children[span].size()) {
        size_t child = children[span][next++];
        if (visited[child]) continue;
        visited[child] = true;
        if (data.back() != '[') data.push_back(',');
        AppendSpanOpen(data, spans[child]);
        data.append(",\"calls\":");
        append_calls(span_calls[child]);
        data.append(",\"children\":[");
        stack.emplace_back(child, 0);
      } else {
        data.append("]}");
        stack.pop_back();
      }
    }
  }
  data.append("],\"calls\":");
  append_calls(loose_calls);
  data.push_back('}');
  return Success(data);
}

std::string RenderStats(std::string_view backend, const storage::StoreStats& s) {
  std::string data = "{\"backend\":";
  AppendJsonString(data, backend);
  data.append(",\"calls\":");
  AppendJsonInt(data, s.calls);
  data.append(",\"content\":");
  AppendJsonInt(data, s.content);
  data.append(",\"spans\":");
  AppendJsonInt(data, s.spans);
  data.append(",\"bytes_on_disk\":");
  AppendJsonInt(data, s.bytes_on_disk);
  data.push_back('}');
  return Success(data);
}

void AppendCsvHeader(std::string& out) {
  out.append(
      "ts,request_id,trace_id,span_id,endpoint,provider,model,response_model,stream,status,"
      "error_type,duration_s,ttft_s,tpot_s,input_tokens,output_tokens,cache_read_tokens,"
      "cache_write_tokens,reasoning_tokens,usage_source,cost_usd,unpriced,user,session,tags,"
      "finish_reasons\r\n");
}

void AppendCallCsv(std::string& out, const core::LlmCall& c) {
  std::string ts;
  AppendJsonTimestamp(ts, c.start_unix_nanos);
  out.append(ts, 1, ts.size() - 2);  // without the JSON quotes
  out.push_back(',');
  AppendCsvField(out, c.request_id);
  out.push_back(',');
  out.append(core::ToHex(c.trace_id));
  out.push_back(',');
  out.append(core::ToHex(c.span_id));
  out.push_back(',');
  out.append(core::EndpointName(c.endpoint));
  out.push_back(',');
  AppendCsvField(out, c.provider);
  out.push_back(',');
  AppendCsvField(out, c.requested_model);
  out.push_back(',');
  AppendCsvField(out, c.response_model);
  out.push_back(',');
  out.append(c.stream ? "true" : "false");
  out.push_back(',');
  AppendJsonInt(out, c.http_status);
  out.push_back(',');
  out.append(core::ErrorClassName(c.error));
  out.push_back(',');
  AppendCsvNumber(out, c.DurationSeconds());
  out.push_back(',');
  AppendCsvNumber(out, c.TimeToFirstTokenSeconds());
  out.push_back(',');
  AppendCsvNumber(out, c.TimePerOutputTokenSeconds());
  for (int64_t n : {c.usage.input, c.usage.output, c.usage.cache_read, c.usage.cache_write,
                    c.usage.reasoning}) {
    out.push_back(',');
    AppendJsonInt(out, n);
  }
  out.push_back(',');
  out.append(core::UsageSourceName(c.usage_source));
  out.push_back(',');
  AppendCsvNumber(out, c.cost_usd);
  out.push_back(',');
  out.append(c.unpriced ? "true" : "false");
  out.push_back(',');
  AppendCsvField(out, c.user);
  out.push_back(',');
  AppendCsvField(out, c.session);
  out.push_back(',');
  std::string tags;
  for (const auto& [k, v] : c.tags) {
    if (!tags.empty()) tags.push_back(';');
    tags += k + "=" + v;
  }
  AppendCsvField(out, tags);
  out.push_back(',');
  std::string reasons;
  for (const auto& r : c.finish_reasons) {
    if (!reasons.empty()) reasons.push_back(';');
    reasons += r;
  }
  AppendCsvField(out, reasons);
  out.append("\r\n");
}

}  // namespace llmscope::api
