#include "core/call_json.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "core/json_string.h"

namespace llmscope::core {

// Shortest text that parses back to exactly v; JSON has no NaN or infinities: null.
void AppendJsonDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendJsonInt(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

namespace {

void AppendOptionalDouble(std::string& out, const std::optional<double>& v) {
  if (v) {
    AppendJsonDouble(out, *v);
  } else {
    out.append("null");
  }
}

}  // namespace

// "2023-11-14T22:13:20.123456Z": RFC 3339, UTC, microseconds (truncated toward the past).
void AppendJsonTimestamp(std::string& out, int64_t unix_nanos) {
  using namespace std::chrono;
  const sys_time<microseconds> t{floor<microseconds>(nanoseconds(unix_nanos))};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<microseconds> hms{t - day};
  char buf[40];
  const int n = std::snprintf(
      buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  out.push_back('"');
  out.append(buf, static_cast<size_t>(n));
  out.push_back('"');
}

namespace {

// Appends `"name":` to the object being written, with a comma before all but its first key.
class KeyWriter {
 public:
  explicit KeyWriter(std::string& out) : out_(out) {}
  void operator()(std::string_view name) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(name);
    out_.append("\":");
  }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace

void AppendCallJson(std::string& line, const LlmCall& c, bool include_content) {
  line.reserve(line.size() + 768 +
               (include_content ? c.request_body.size() + c.response_text.size() : 0));
  KeyWriter key(line);
  line.push_back('{');
  key("ts");
  AppendJsonTimestamp(line, c.start_unix_nanos);
  key("request_id");
  AppendJsonString(line, c.request_id);
  key("trace_id");
  AppendJsonString(line, ToHex(c.trace_id));
  key("span_id");
  AppendJsonString(line, ToHex(c.span_id));
  if (IsValid(c.parent_span_id)) {
    key("parent_span_id");
    AppendJsonString(line, ToHex(c.parent_span_id));
  }
  key("endpoint");
  AppendJsonString(line, EndpointName(c.endpoint));
  key("provider");
  AppendJsonString(line, c.provider);
  key("provider_kind");
  AppendJsonString(line, c.provider_kind);
  key("model");
  AppendJsonString(line, c.requested_model);
  key("response_model");
  AppendJsonString(line, c.response_model);
  key("stream");
  line.append(c.stream ? "true" : "false");
  key("status");
  AppendJsonInt(line, c.http_status);
  if (c.error != ErrorClass::kNone) {
    key("error_type");
    AppendJsonString(line, ErrorClassName(c.error));
  }
  if (!c.error_message.empty()) {
    key("error_message");
    AppendJsonString(line, c.error_message);
  }
  key("client_cancelled");
  line.append(c.client_cancelled ? "true" : "false");
  key("duration_s");
  AppendOptionalDouble(line, c.DurationSeconds());
  key("ttft_s");
  AppendOptionalDouble(line, c.TimeToFirstTokenSeconds());
  key("tpot_s");
  AppendOptionalDouble(line, c.TimePerOutputTokenSeconds());
  key("first_byte_s");
  AppendOptionalDouble(line,
                       c.first_byte_nanos >= 0
                           ? std::optional<double>(static_cast<double>(c.first_byte_nanos) / 1e9)
                           : std::nullopt);
  key("overhead_us");
  AppendJsonDouble(line, static_cast<double>(c.overhead_nanos) / 1e3);
  if (c.max_tokens) {
    key("max_tokens");
    AppendJsonInt(line, *c.max_tokens);
  }
  if (c.temperature) {
    key("temperature");
    AppendJsonDouble(line, *c.temperature);
  }
  if (c.top_p) {
    key("top_p");
    AppendJsonDouble(line, *c.top_p);
  }
  key("finish_reasons");
  line.push_back('[');
  for (size_t i = 0; i < c.finish_reasons.size(); ++i) {
    if (i > 0) line.push_back(',');
    AppendJsonString(line, c.finish_reasons[i]);
  }
  line.push_back(']');
  key("usage");
  line.append("{\"input\":");
  AppendJsonInt(line, c.usage.input);
  line.append(",\"output\":");
  AppendJsonInt(line, c.usage.output);
  line.append(",\"cache_read\":");
  AppendJsonInt(line, c.usage.cache_read);
  line.append(",\"cache_write\":");
  AppendJsonInt(line, c.usage.cache_write);
  line.append(",\"reasoning\":");
  AppendJsonInt(line, c.usage.reasoning);
  line.push_back('}');
  key("usage_source");
  AppendJsonString(line, UsageSourceName(c.usage_source));
  key("cost_usd");
  AppendOptionalDouble(line, c.cost_usd);
  key("unpriced");
  line.append(c.unpriced ? "true" : "false");
  if (!c.user.empty()) {
    key("user");
    AppendJsonString(line, c.user);
  }
  if (!c.session.empty()) {
    key("session");
    AppendJsonString(line, c.session);
  }
  key("tags");
  line.push_back('{');
  bool first_tag = true;
  for (size_t i = 0; i < c.tags.size(); ++i) {
    // JSON objects should have unique keys (RFC 8259 4); the first occurrence wins.
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = c.tags[j].first == c.tags[i].first;
    if (seen) continue;
    if (!first_tag) line.push_back(',');
    first_tag = false;
    AppendJsonString(line, c.tags[i].first);
    line.push_back(':');
    AppendJsonString(line, c.tags[i].second);
  }
  line.push_back('}');
  if (include_content) {
    key("request_body");
    AppendJsonString(line, c.request_body);
    key("response_text");
    AppendJsonString(line, c.response_text);
  }
  line.push_back('}');
}

std::string FormatCallJson(const LlmCall& call, bool include_content) {
  std::string out;
  AppendCallJson(out, call, include_content);
  return out;
}

}  // namespace llmscope::core
