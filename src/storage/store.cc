#include "storage/store.h"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "core/enum_name.h"
#include "core/json_string.h"

namespace llmscope::storage {
namespace {

// Cursor text is URL-safe by construction: fields joined by '.', the request id hex-encoded
// (ids may hold any byte), numbers in decimal ('-', digits, '.', 'e', '+').
std::string HexBytes(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::optional<std::string> UnhexBytes(std::string_view h) {
  if (h.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(h.size() / 2);
  for (size_t i = 0; i < h.size(); i += 2) {
    int hi = nibble(h[i]);
    int lo = nibble(h[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

template <typename T>
bool ParseNumber(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::string FormatDouble(double v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string out(buf, static_cast<size_t>(n));
  // '+' means a space in a query string: "1e+20" is written "1e20" (from_chars reads both).
  if (auto plus = out.find('+'); plus != std::string::npos) out.erase(plus, 1);
  return out;
}

core::Status CheckLimit(size_t limit) {
  if (limit < 1 || limit > kMaxPageSize) {
    return core::InvalidArgument("limit: must be between 1 and " + std::to_string(kMaxPageSize) +
                                 ", got " + std::to_string(limit));
  }
  return core::Status::Ok();
}

core::Status CheckRange(int64_t from, int64_t to) {
  if (from >= to) return core::InvalidArgument("from: must be before to");
  return core::Status::Ok();
}

core::Status CheckFilter(const CallFilter& f) {
  if (auto s = CheckRange(f.from_unix_nanos, f.to_unix_nanos); !s.ok()) return s;
  if (f.min_duration_nanos && *f.min_duration_nanos < 0) {
    return core::InvalidArgument("min_duration: must not be negative");
  }
  if (f.min_cost_usd && !(std::isfinite(*f.min_cost_usd) && *f.min_cost_usd >= 0)) {
    return core::InvalidArgument("min_cost: must be a non-negative number");
  }
  if (f.tag && f.tag->first.empty()) return core::InvalidArgument("tag: key must not be empty");
  return core::Status::Ok();
}

core::Status CheckGroup(GroupBy g, const std::string& tag_key, const char* field) {
  if (g == GroupBy::kTag && tag_key.empty()) {
    return core::InvalidArgument(std::string(field) + ": grouping by tag needs a tag key");
  }
  return core::Status::Ok();
}

// JSON (boost) <-> attributes.
boost::json::value AttributeToJson(const core::AttributeValue& v) {
  struct Visitor {
    boost::json::value operator()(const std::string& s) const { return boost::json::value(s); }
    boost::json::value operator()(bool b) const { return boost::json::value(b); }
    boost::json::value operator()(int64_t i) const { return boost::json::value(i); }
    boost::json::value operator()(double d) const {
      // JSON has no NaN or infinity: those are kept as strings, as OTLP/JSON does.
      if (std::isnan(d)) return boost::json::value("NaN");
      if (std::isinf(d)) return boost::json::value(d > 0 ? "Infinity" : "-Infinity");
      return boost::json::value(d);
    }
    boost::json::value operator()(const core::JsonText& j) const {
      boost::system::error_code ec;
      boost::json::value parsed = boost::json::parse(j.text, ec);
      if (ec) return boost::json::value(j.text);  // not JSON after all: keep it as a string
      return parsed;
    }
  };
  return std::visit(Visitor{}, v);
}

core::AttributeValue AttributeFromJson(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return std::string(v.get_string());
    case boost::json::kind::bool_:
      return v.get_bool();
    case boost::json::kind::int64:
      return v.get_int64();
    case boost::json::kind::uint64:
      return static_cast<double>(v.get_uint64());
    case boost::json::kind::double_:
      return v.get_double();
    case boost::json::kind::null:
      return std::string();
    case boost::json::kind::array:
    case boost::json::kind::object:
      return core::JsonText{boost::json::serialize(v)};
  }
  return std::string();
}

boost::json::object AttributesObject(const core::Attributes& attributes) {
  boost::json::object o;
  for (const auto& a : attributes) o[a.key] = AttributeToJson(a.value);
  return o;
}

core::Result<core::Attributes> AttributesFromValue(const boost::json::value& v) {
  if (!v.is_object()) return core::InvalidArgument("attributes: not a JSON object");
  core::Attributes out;
  for (const auto& kv : v.get_object()) {
    out.push_back({std::string(kv.key()), AttributeFromJson(kv.value())});
  }
  return out;
}

core::Result<boost::json::value> ParseJson(std::string_view json, const char* what) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec) return core::InvalidArgument(std::string(what) + ": invalid JSON: " + ec.message());
  return v;
}

}  // namespace

std::string_view CallSortName(CallSort s) {
  switch (s) {
    case CallSort::kStartTime:
      return "start_time";
    case CallSort::kDuration:
      return "duration";
    case CallSort::kCost:
      return "cost";
    case CallSort::kTotalTokens:
      return "total_tokens";
  }
  return "unknown";
}
std::optional<CallSort> ParseCallSortName(std::string_view name) {
  return core::ParseEnumName(name, CallSort::kTotalTokens, CallSortName);
}

std::string_view TimeBucketName(TimeBucket b) {
  switch (b) {
    case TimeBucket::kNone:
      return "none";
    case TimeBucket::kMinute:
      return "minute";
    case TimeBucket::kHour:
      return "hour";
    case TimeBucket::kDay:
      return "day";
  }
  return "unknown";
}
std::optional<TimeBucket> ParseTimeBucketName(std::string_view name) {
  return core::ParseEnumName(name, TimeBucket::kDay, TimeBucketName);
}
int64_t BucketWidthNanos(TimeBucket b) {
  switch (b) {
    case TimeBucket::kNone:
      return 0;
    case TimeBucket::kMinute:
      return 60 * kNanosPerSecond;
    case TimeBucket::kHour:
      return 3600 * kNanosPerSecond;
    case TimeBucket::kDay:
      return kNanosPerDay;
  }
  return 0;
}

std::string_view GroupByName(GroupBy g) {
  switch (g) {
    case GroupBy::kNone:
      return "none";
    case GroupBy::kModel:
      return "model";
    case GroupBy::kProvider:
      return "provider";
    case GroupBy::kUser:
      return "user";
    case GroupBy::kTag:
      return "tag";
    case GroupBy::kEndpoint:
      return "endpoint";
  }
  return "unknown";
}
std::optional<GroupBy> ParseGroupByName(std::string_view name) {
  return core::ParseEnumName(name, GroupBy::kEndpoint, GroupByName);
}

std::string_view TopMetricName(TopMetric m) {
  switch (m) {
    case TopMetric::kCost:
      return "cost";
    case TopMetric::kTokens:
      return "tokens";
  }
  return "unknown";
}
std::optional<TopMetric> ParseTopMetricName(std::string_view name) {
  return core::ParseEnumName(name, TopMetric::kTokens, TopMetricName);
}

std::variant<int64_t, double> SortValue(const core::LlmCall& call, CallSort sort) {
  switch (sort) {
    case CallSort::kStartTime:
      return call.start_unix_nanos;
    case CallSort::kDuration:
      return call.end_nanos < 0 ? int64_t{-1} : call.end_nanos;
    case CallSort::kCost:
      return call.cost_usd ? *call.cost_usd : -1.0;
    case CallSort::kTotalTokens:
      return call.usage.input + call.usage.output;
  }
  return int64_t{0};
}

CallCursor CursorAfter(const core::LlmCall& call, CallSort sort, bool descending) {
  return CallCursor{sort, descending, SortValue(call, sort), call.request_id};
}

std::string EncodeCallCursor(const CallCursor& c) {
  std::string out = "c1.";
  out += CallSortName(c.sort);
  out += c.descending ? ".desc." : ".asc.";
  if (const auto* d = std::get_if<double>(&c.value)) {
    out += FormatDouble(*d);
  } else {
    out += std::to_string(std::get<int64_t>(c.value));
  }
  out += '.';
  out += HexBytes(c.request_id);
  return out;
}

core::Result<CallCursor> DecodeCallCursor(std::string_view text, CallSort sort, bool descending) {
  auto bad = [](std::string why) { return core::InvalidArgument("cursor: " + why); };
  // The double's text may itself hold a '.', so split from both ends.
  auto parts = Split(text, '.');
  if (parts.size() < 5 || parts[0] != "c1") return bad("malformed");
  auto parsed_sort = ParseCallSortName(parts[1]);
  if (!parsed_sort || (parts[2] != "asc" && parts[2] != "desc")) return bad("malformed");
  if (*parsed_sort != sort || (parts[2] == "desc") != descending) {
    return bad("made for sort=" + std::string(parts[1]) + " order=" + std::string(parts[2]) +
               ", not for this query's sort and order");
  }
  size_t value_begin = parts[0].size() + parts[1].size() + parts[2].size() + 3;
  size_t value_end = text.rfind('.');
  std::string_view value_text = text.substr(value_begin, value_end - value_begin);
  auto id = UnhexBytes(text.substr(value_end + 1));
  if (!id) return bad("malformed request id");
  CallCursor c{sort, descending, int64_t{0}, *id};
  if (sort == CallSort::kCost) {
    double d = 0;
    if (!ParseNumber(value_text, d)) return bad("malformed value");
    c.value = d;
  } else {
    int64_t i = 0;
    if (!ParseNumber(value_text, i)) return bad("malformed value");
    c.value = i;
  }
  return c;
}

int64_t ExactQuantile(std::vector<int64_t>& values, double q) {
  size_t n = values.size();
  size_t k = static_cast<size_t>(std::floor(q * static_cast<double>(n)));
  if (k > n - 1) k = n - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

int64_t RetentionCutoffNanos(int64_t now_unix_nanos, int days) {
  int64_t t = now_unix_nanos - static_cast<int64_t>(days) * kNanosPerDay;
  int64_t r = t % kNanosPerDay;
  if (r < 0) r += kNanosPerDay;
  return t - r;
}

core::Status Validate(const CallQuery& q) {
  if (auto s = CheckLimit(q.limit); !s.ok()) return s;
  if (auto s = CheckFilter(q.filter); !s.ok()) return s;
  if (!q.cursor.empty()) {
    if (auto c = DecodeCallCursor(q.cursor, q.sort, q.descending); !c.ok()) return c.status();
  }
  return core::Status::Ok();
}

core::Status Validate(const AggregateQuery& q) {
  if (auto s = CheckFilter(q.filter); !s.ok()) return s;
  if (auto s = CheckGroup(q.group_by, q.group_tag_key, "group_by"); !s.ok()) return s;
  int64_t width = BucketWidthNanos(q.bucket);
  if (width > 0) {
    const CallFilter& f = q.filter;
    if (f.from_unix_nanos == INT64_MIN || f.to_unix_nanos == INT64_MAX) {
      return core::InvalidArgument("from: a bucketed aggregate needs both from and to");
    }
    // Buckets touched by [from, to): at least one row each if every bucket has a call.
    auto floor_div = [](int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); };
    int64_t first = floor_div(f.from_unix_nanos, width);
    int64_t last = floor_div(f.to_unix_nanos - 1, width);
    uint64_t buckets = static_cast<uint64_t>(last - first) + 1;
    if (buckets > kMaxAggregateRows) {
      return core::Status(core::StatusCode::kResourceExhausted,
                          "bucket: the range spans " + std::to_string(buckets) + " " +
                              std::string(TimeBucketName(q.bucket)) + " buckets, over the " +
                              std::to_string(kMaxAggregateRows) +
                              " limit: narrow the range or use a coarser bucket");
    }
  }
  return core::Status::Ok();
}

core::Status Validate(const TopQuery& q) {
  if (auto s = CheckLimit(q.limit); !s.ok()) return s;
  if (auto s = CheckFilter(q.filter); !s.ok()) return s;
  if (q.dimension == GroupBy::kNone) return core::InvalidArgument("by: a dimension is required");
  return CheckGroup(q.dimension, q.group_tag_key, "by");
}

core::Status Validate(const TraceQuery& q) {
  if (auto s = CheckLimit(q.limit); !s.ok()) return s;
  if (auto s = CheckRange(q.from_unix_nanos, q.to_unix_nanos); !s.ok()) return s;
  if (!q.cursor.empty()) {
    if (auto c = DecodeTraceCursor(q.cursor); !c.ok()) return c.status();
  }
  return core::Status::Ok();
}

std::string EncodeTraceCursor(int64_t start_unix_nanos, const core::TraceId& trace_id) {
  return "t1." + std::to_string(start_unix_nanos) + "." + core::ToHex(trace_id);
}

core::Result<std::pair<int64_t, core::TraceId>> DecodeTraceCursor(std::string_view text) {
  auto parts = Split(text, '.');
  int64_t start = 0;
  if (parts.size() != 3 || parts[0] != "t1" || !ParseNumber(parts[1], start)) {
    return core::InvalidArgument("cursor: malformed");
  }
  auto id = core::ParseTraceIdHex(parts[2]);
  if (!id) return core::InvalidArgument("cursor: malformed trace id");
  return std::make_pair(start, *id);
}

std::string AttributesToJson(const core::Attributes& attributes) {
  return boost::json::serialize(AttributesObject(attributes));
}

core::Result<core::Attributes> ParseAttributesJson(std::string_view json) {
  auto v = ParseJson(json, "attributes");
  if (!v.ok()) return v.status();
  return AttributesFromValue(*v);
}

std::string EventsToJson(const std::vector<core::SpanEvent>& events) {
  boost::json::array a;
  for (const auto& e : events) {
    a.push_back(boost::json::object{{"time_unix_nanos", e.time_unix_nanos},
                                    {"name", e.name},
                                    {"attributes", AttributesObject(e.attributes)}});
  }
  return boost::json::serialize(a);
}

core::Result<std::vector<core::SpanEvent>> ParseEventsJson(std::string_view json) {
  auto v = ParseJson(json, "events");
  if (!v.ok()) return v.status();
  if (!v->is_array()) return core::InvalidArgument("events: not a JSON array");
  std::vector<core::SpanEvent> out;
  for (const auto& item : v->get_array()) {
    const auto* o = item.if_object();
    if (!o) return core::InvalidArgument("events: an event is not an object");
    core::SpanEvent e;
    if (const auto* t = o->if_contains("time_unix_nanos"); t && t->is_int64()) {
      e.time_unix_nanos = t->get_int64();
    }
    if (const auto* n = o->if_contains("name"); n && n->is_string()) e.name = n->get_string();
    if (const auto* a = o->if_contains("attributes")) {
      auto attrs = AttributesFromValue(*a);
      if (!attrs.ok()) return attrs.status();
      e.attributes = std::move(*attrs);
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string LinksToJson(const std::vector<core::SpanLink>& links) {
  boost::json::array a;
  for (const auto& l : links) {
    a.push_back(boost::json::object{{"trace_id", core::ToHex(l.trace_id)},
                                    {"span_id", core::ToHex(l.span_id)},
                                    {"attributes", AttributesObject(l.attributes)}});
  }
  return boost::json::serialize(a);
}

core::Result<std::vector<core::SpanLink>> ParseLinksJson(std::string_view json) {
  auto v = ParseJson(json, "links");
  if (!v.ok()) return v.status();
  if (!v->is_array()) return core::InvalidArgument("links: not a JSON array");
  std::vector<core::SpanLink> out;
  for (const auto& item : v->get_array()) {
    const auto* o = item.if_object();
    if (!o) return core::InvalidArgument("links: a link is not an object");
    core::SpanLink l;
    if (const auto* t = o->if_contains("trace_id"); t && t->is_string()) {
      if (auto id = core::ParseTraceIdHex(t->get_string())) l.trace_id = *id;
    }
    if (const auto* s = o->if_contains("span_id"); s && s->is_string()) {
      if (auto id = core::ParseSpanIdHex(s->get_string())) l.span_id = *id;
    }
    if (const auto* a = o->if_contains("attributes")) {
      auto attrs = AttributesFromValue(*a);
      if (!attrs.ok()) return attrs.status();
      l.attributes = std::move(*attrs);
    }
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace llmscope::storage
