#include "storage_clickhouse/records.h"

#include <utility>
#include <vector>

#include "storage/store.h"
#include "storage_clickhouse/schema.h"

namespace llmscope::storage_clickhouse {

namespace {

core::Status Corrupt(std::string what) {
  return core::Internal("clickhouse: unreadable row: " + std::move(what));
}

}  // namespace

std::string CallsInColumns() {
  return "day, ver, " + ColumnList(CallColumns()) + ", request_body, response_text";
}

void AppendCallRow(RowBinaryWriter& w, uint64_t ver, const core::LlmCall& c) {
  w.Date(DayOf(c.start_unix_nanos));
  w.UInt64(ver);
  // CallColumns() order.
  w.String(c.request_id);
  w.FixedString(c.trace_id);
  w.FixedString(c.span_id);
  w.FixedString(c.parent_span_id);
  w.Int64(c.start_unix_nanos);
  w.Int64(c.first_byte_nanos);
  w.Int64(c.first_content_nanos);
  w.Int64(c.end_nanos);
  w.Int64(c.overhead_nanos);
  w.String(core::EndpointName(c.endpoint));
  w.Bool(c.stream);
  w.String(c.requested_model);
  w.String(c.response_model);
  w.String(c.provider);
  w.String(c.provider_kind);
  w.Int32(c.http_status);
  w.String(core::ErrorClassName(c.error));
  w.String(c.error_message);
  w.Bool(c.client_cancelled);
  w.NullableInt64(c.max_tokens);
  w.NullableFloat64(c.temperature);
  w.NullableFloat64(c.top_p);
  w.StringArray(c.finish_reasons);
  w.Int64(c.usage.input);
  w.Int64(c.usage.output);
  w.Int64(c.usage.cache_read);
  w.Int64(c.usage.cache_write);
  w.Int64(c.usage.reasoning);
  w.String(core::UsageSourceName(c.usage_source));
  w.NullableFloat64(c.cost_usd);
  w.Bool(c.unpriced);
  w.String(c.user);
  w.String(c.session);
  w.VarUInt(c.tags.size());
  for (const auto& [k, v] : c.tags) w.String(k);
  w.VarUInt(c.tags.size());
  for (const auto& [k, v] : c.tags) w.String(v);
  // Content, for the call_content view.
  w.String(c.request_body);
  w.String(c.response_text);
}

std::string StoredCallSelect() { return "ver, " + ColumnList(CallColumns()); }

core::Result<StoredCall> ReadStoredCall(RowBinaryReader& r) {
  StoredCall out;
  out.ver = r.UInt64();
  core::LlmCall& c = out.call;
  c.request_id = r.String();
  c.trace_id = r.FixedString<16>();
  c.span_id = r.FixedString<8>();
  c.parent_span_id = r.FixedString<8>();
  c.start_unix_nanos = r.Int64();
  c.first_byte_nanos = r.Int64();
  c.first_content_nanos = r.Int64();
  c.end_nanos = r.Int64();
  c.overhead_nanos = r.Int64();
  std::string endpoint = r.String();
  c.stream = r.Bool();
  c.requested_model = r.String();
  c.response_model = r.String();
  c.provider = r.String();
  c.provider_kind = r.String();
  c.http_status = r.Int32();
  std::string error = r.String();
  c.error_message = r.String();
  c.client_cancelled = r.Bool();
  c.max_tokens = r.NullableInt64();
  c.temperature = r.NullableFloat64();
  c.top_p = r.NullableFloat64();
  c.finish_reasons = r.StringArray();
  c.usage.input = r.Int64();
  c.usage.output = r.Int64();
  c.usage.cache_read = r.Int64();
  c.usage.cache_write = r.Int64();
  c.usage.reasoning = r.Int64();
  std::string usage_source = r.String();
  c.cost_usd = r.NullableFloat64();
  c.unpriced = r.Bool();
  c.user = r.String();
  c.session = r.String();
  std::vector<std::string> keys = r.StringArray();
  std::vector<std::string> values = r.StringArray();
  if (r.failed()) return Corrupt("a calls row is cut short");
  auto e = core::ParseEndpointName(endpoint);
  auto err = core::ParseErrorClassName(error);
  auto us = core::ParseUsageSourceName(usage_source);
  if (!e || !err || !us) {
    return Corrupt("call '" + c.request_id + "' has an unknown endpoint, error or usage source");
  }
  if (keys.size() != values.size()) {
    return Corrupt("call '" + c.request_id + "' has tag keys and values of different lengths");
  }
  c.endpoint = *e;
  c.error = *err;
  c.usage_source = *us;
  c.tags.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    c.tags.emplace_back(std::move(keys[i]), std::move(values[i]));
  }
  return out;
}

std::string SpansInColumns() { return "row_kind, day, ver, " + ColumnList(SpanColumns()); }

void AppendSpanRow(RowBinaryWriter& w, RowKind kind, uint64_t ver, const core::Span& s) {
  w.UInt8(static_cast<uint8_t>(kind));
  w.Date(DayOf(s.start_unix_nanos));
  w.UInt64(ver);
  // SpanColumns() order.
  w.FixedString(s.trace_id);
  w.FixedString(s.span_id);
  w.FixedString(s.parent_span_id);
  w.String(s.name);
  w.UInt8(static_cast<uint8_t>(s.kind));
  w.String(s.service);
  w.String(s.scope);
  w.Int64(s.start_unix_nanos);
  w.Int64(s.end_unix_nanos);
  w.UInt8(static_cast<uint8_t>(s.status));
  w.String(s.status_message);
  if (kind == RowKind::kLive) {
    w.String(storage::AttributesToJson(s.resource_attributes));
    w.String(storage::AttributesToJson(s.attributes));
    w.String(storage::EventsToJson(s.events));
    w.String(storage::LinksToJson(s.links));
  } else {
    for (int i = 0; i < 4; ++i) w.String("");
  }
}

std::string StoredSpanSelect() { return "ver, deleted, " + ColumnList(SpanColumns()); }

core::Result<StoredSpan> ReadStoredSpan(RowBinaryReader& r) {
  StoredSpan out;
  out.ver = r.UInt64();
  out.deleted = r.Bool();
  core::Span& s = out.span;
  s.trace_id = r.FixedString<16>();
  s.span_id = r.FixedString<8>();
  s.parent_span_id = r.FixedString<8>();
  s.name = r.String();
  uint8_t kind = r.UInt8();
  s.service = r.String();
  s.scope = r.String();
  s.start_unix_nanos = r.Int64();
  s.end_unix_nanos = r.Int64();
  uint8_t status = r.UInt8();
  s.status_message = r.String();
  std::string resource = r.String();
  std::string attributes = r.String();
  std::string events = r.String();
  std::string links = r.String();
  if (r.failed()) return Corrupt("a spans row is cut short");
  if (out.deleted) return out;
  const std::string which = "span " + core::ToHex(s.trace_id) + "/" + core::ToHex(s.span_id);
  if (kind > static_cast<uint8_t>(core::SpanKind::kConsumer) ||
      status > static_cast<uint8_t>(core::SpanStatus::kError)) {
    return Corrupt(which + " has an unknown kind or status");
  }
  s.kind = static_cast<core::SpanKind>(kind);
  s.status = static_cast<core::SpanStatus>(status);
  auto ra = storage::ParseAttributesJson(resource);
  auto a = storage::ParseAttributesJson(attributes);
  auto ev = storage::ParseEventsJson(events);
  auto li = storage::ParseLinksJson(links);
  if (!ra.ok() || !a.ok() || !ev.ok() || !li.ok()) {
    return Corrupt(which + " has attributes, events or links that are not valid JSON");
  }
  s.resource_attributes = std::move(ra).value();
  s.attributes = std::move(a).value();
  s.events = std::move(ev).value();
  s.links = std::move(li).value();
  return out;
}

}  // namespace llmscope::storage_clickhouse
