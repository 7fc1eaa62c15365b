#include "otlp/decode.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "otlp/convert.h"

namespace llmscope::otlp {
namespace {

using internal::pb_collector_logs::ExportLogsServiceRequest;
using internal::pb_collector_metrics::ExportMetricsServiceRequest;
using internal::pb_collector_trace::ExportTraceServiceRequest;
namespace pb_common = internal::pb_common;
namespace pb_trace = internal::pb_trace;

constexpr int64_t kT0 = 1'718'000'000'000'000'000;

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(LLMSCOPE_OTLP_TESTDATA) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s += static_cast<char>(v);
  return s;
}
std::string TraceIdBytes(int last) {
  return Bytes({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, last});
}
std::string SpanIdBytes(int last) { return Bytes({1, 2, 3, 4, 5, 6, 7, last}); }

void AddStringAttr(google::protobuf::RepeatedPtrField<pb_common::KeyValue>* attrs,
                   const std::string& key, const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// A valid span with `n` as the last byte of its span id.
pb_trace::Span* AddSpan(ExportTraceServiceRequest& req, int n) {
  if (req.resource_spans_size() == 0) {
    auto* rs = req.add_resource_spans();
    AddStringAttr(rs->mutable_resource()->mutable_attributes(), "service.name", "svc");
    rs->add_scope_spans()->mutable_scope()->set_name("scope-a");
  }
  auto* span = req.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans();
  span->set_trace_id(TraceIdBytes(1));
  span->set_span_id(SpanIdBytes(n));
  span->set_name("span-" + std::to_string(n));
  span->set_start_time_unix_nano(kT0);
  span->set_end_time_unix_nano(kT0 + 1000);
  return span;
}

core::Result<TracesBatch> DecodePb(const ExportTraceServiceRequest& req,
                                   const DecodeLimits& limits = {}) {
  return DecodeTraces(req.SerializeAsString(), Encoding::kProtobuf, limits);
}

TEST(DecodeTracesProtobuf, RoundTripKeepsEveryField) {
  ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  AddStringAttr(rs->mutable_resource()->mutable_attributes(), "service.name", "checkout");
  AddStringAttr(rs->mutable_resource()->mutable_attributes(), "host.name", "h1");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("my.scope");
  auto* span = ss->add_spans();
  span->set_trace_id(TraceIdBytes(0xAB));
  span->set_span_id(SpanIdBytes(0xCD));
  span->set_parent_span_id(SpanIdBytes(0xEF));
  span->set_name("chat gpt-4o");
  span->set_kind(pb_trace::Span::SPAN_KIND_CLIENT);
  span->set_start_time_unix_nano(kT0);
  span->set_end_time_unix_nano(kT0 + 2'000'000);
  span->mutable_status()->set_code(pb_trace::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message("boom");
  auto* attrs = span->mutable_attributes();
  AddStringAttr(attrs, "s", "text");
  auto* b = attrs->Add();
  b->set_key("b");
  b->mutable_value()->set_bool_value(true);
  auto* i = attrs->Add();
  i->set_key("i");
  i->mutable_value()->set_int_value(-42);
  auto* d = attrs->Add();
  d->set_key("d");
  d->mutable_value()->set_double_value(1.5);
  auto* arr = attrs->Add();
  arr->set_key("arr");
  arr->mutable_value()->mutable_array_value()->add_values()->set_string_value("x\"y");
  arr->mutable_value()->mutable_array_value()->add_values()->set_int_value(7);
  auto* kvl = attrs->Add();
  kvl->set_key("kv");
  auto* inner = kvl->mutable_value()->mutable_kvlist_value()->add_values();
  inner->set_key("k");
  inner->mutable_value()->set_bool_value(false);
  auto* by = attrs->Add();
  by->set_key("bytes");
  by->mutable_value()->set_bytes_value("hi!");
  auto* ev = span->add_events();
  ev->set_time_unix_nano(kT0 + 5);
  ev->set_name("exception");
  AddStringAttr(ev->mutable_attributes(), "exception.message", "bad");
  auto* link = span->add_links();
  link->set_trace_id(TraceIdBytes(9));
  link->set_span_id(SpanIdBytes(9));

  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->rejected_spans, 0);
  EXPECT_EQ(batch->error_message, "");
  const core::Span& s = batch->spans[0];
  EXPECT_EQ(core::ToHex(s.trace_id), "0102030405060708090a0b0c0d0e0fab");
  EXPECT_EQ(core::ToHex(s.span_id), "01020304050607cd");
  EXPECT_EQ(core::ToHex(s.parent_span_id), "01020304050607ef");
  EXPECT_EQ(s.name, "chat gpt-4o");
  EXPECT_EQ(s.kind, core::SpanKind::kClient);
  EXPECT_EQ(s.service, "checkout");
  EXPECT_EQ(s.scope, "my.scope");
  EXPECT_EQ(s.start_unix_nanos, kT0);
  EXPECT_EQ(s.end_unix_nanos, kT0 + 2'000'000);
  EXPECT_EQ(s.status, core::SpanStatus::kError);
  EXPECT_EQ(s.status_message, "boom");
  ASSERT_EQ(s.resource_attributes.size(), 2u);
  EXPECT_EQ(s.resource_attributes[1], (core::Attribute{"host.name", std::string("h1")}));
  ASSERT_EQ(s.attributes.size(), 7u);
  EXPECT_EQ(s.attributes[0].value, core::AttributeValue(std::string("text")));
  EXPECT_EQ(s.attributes[1].value, core::AttributeValue(true));
  EXPECT_EQ(s.attributes[2].value, core::AttributeValue(int64_t{-42}));
  EXPECT_EQ(s.attributes[3].value, core::AttributeValue(1.5));
  EXPECT_EQ(s.attributes[4].value, core::AttributeValue(core::JsonText{R"(["x\"y",7])"}));
  EXPECT_EQ(s.attributes[5].value, core::AttributeValue(core::JsonText{R"({"k":false})"}));
  EXPECT_EQ(s.attributes[6].value, core::AttributeValue(std::string("aGkh")));  // base64
  ASSERT_EQ(s.events.size(), 1u);
  EXPECT_EQ(s.events[0].time_unix_nanos, kT0 + 5);
  EXPECT_EQ(s.events[0].name, "exception");
  ASSERT_EQ(s.links.size(), 1u);
  EXPECT_EQ(core::ToHex(s.links[0].span_id), "0102030405060709");
}

TEST(DecodeTracesProtobuf, EmptyBodyIsAnEmptyRequest) {
  auto batch = DecodeTraces("", Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->spans.empty());
}

TEST(DecodeTracesProtobuf, CorruptBodyIsAnError) {
  ExportTraceServiceRequest req;
  AddSpan(req, 1);
  std::string wire = req.SerializeAsString();
  for (std::string bad : {std::string("\xff\xff\xff\xff\xff", 5), wire.substr(0, wire.size() - 3),
                          std::string("\x0a\x80\x80\x80\x80\x10", 6)}) {
    auto batch = DecodeTraces(bad, Encoding::kProtobuf);
    ASSERT_FALSE(batch.ok());
    EXPECT_EQ(batch.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(batch.status().message().find("ExportTraceServiceRequest"), std::string::npos);
  }
}

TEST(DecodeTracesProtobuf, BadIdsRejectThatSpanOnly) {
  ExportTraceServiceRequest req;
  AddSpan(req, 1);
  AddSpan(req, 2)->set_trace_id(std::string(16, '\0'));       // all zero
  AddSpan(req, 3)->set_span_id(SpanIdBytes(3).substr(0, 7));  // 7 bytes
  AddSpan(req, 4)->clear_span_id();                           // missing
  AddSpan(req, 5)->set_parent_span_id("abc");                 // 3 bytes
  AddSpan(req, 6)->set_parent_span_id(std::string(8, '\0'));  // zero parent: root
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->spans.size(), 2u);
  EXPECT_EQ(batch->spans[0].name, "span-1");
  EXPECT_EQ(batch->spans[1].name, "span-6");
  EXPECT_FALSE(core::IsValid(batch->spans[1].parent_span_id));
  EXPECT_EQ(batch->rejected_spans, 4);
  EXPECT_EQ(batch->stats.items_received, 6);
  EXPECT_EQ(batch->stats.items_rejected, 4);
  EXPECT_EQ(batch->error_message,
            "resourceSpans[0].scopeSpans[0].spans[1]: trace_id is all zero (and 3 more rejected)");
}

TEST(DecodeTracesProtobuf, BadTimesRejectThatSpanOnly) {
  ExportTraceServiceRequest req;
  AddSpan(req, 1)->set_start_time_unix_nano(0);
  AddSpan(req, 2)->set_end_time_unix_nano(0);
  AddSpan(req, 3)->set_end_time_unix_nano(kT0 - 1);
  AddSpan(req, 4)->set_start_time_unix_nano(~uint64_t{0});
  AddSpan(req, 5);
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->spans[0].name, "span-5");
  EXPECT_EQ(batch->rejected_spans, 4);
  EXPECT_NE(batch->error_message.find("start_time_unix_nano is 0"), std::string::npos);
}

TEST(DecodeTracesProtobuf, SpansFarInTheFutureAreRejected) {
  ExportTraceServiceRequest req;
  const int64_t hour = 3600LL * 1'000'000'000;
  auto* late = AddSpan(req, 1);  // 2 h ahead of "now"
  late->set_start_time_unix_nano(kT0 + 2 * hour);
  late->set_end_time_unix_nano(kT0 + 2 * hour + 5);
  auto* skewed = AddSpan(req, 2);  // 30 min ahead: a clock skew within the limit
  skewed->set_start_time_unix_nano(kT0 + hour / 2);
  skewed->set_end_time_unix_nano(kT0 + hour / 2 + 5);
  DecodeLimits limits;
  limits.now_unix_nanos = kT0;
  auto batch = DecodePb(req, limits);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->spans[0].name, "span-2");
  EXPECT_EQ(batch->error_message,
            "resourceSpans[0].scopeSpans[0].spans[0]: start_time_unix_nano is 7200 s in the future "
            "(limit: "
            "DecodeLimits.max_future_nanos = 3600 s)");
  // Without a clock, no future check.
  auto unchecked = DecodePb(req);
  ASSERT_TRUE(unchecked.ok());
  EXPECT_EQ(unchecked->spans.size(), 2u);
}

TEST(DecodeTracesProtobuf, BodyAndSpanCountLimits) {
  ExportTraceServiceRequest req;
  for (int i = 1; i <= 11; ++i) AddSpan(req, i);
  DecodeLimits limits;
  limits.max_items = 10;
  auto batch = DecodePb(req, limits);
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(batch.status().message().find("11 spans"), std::string::npos);
  EXPECT_NE(batch.status().message().find("DecodeLimits.max_items"), std::string::npos);
  limits.max_items = 11;
  EXPECT_TRUE(DecodePb(req, limits).ok());

  limits.max_body_bytes = 10;
  auto big = DecodePb(req, limits);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(big.status().message().find("DecodeLimits.max_body_bytes"), std::string::npos);
  auto big_json = DecodeTraces(std::string(11, ' '), Encoding::kJson, limits);
  EXPECT_EQ(big_json.status().code(), core::StatusCode::kResourceExhausted);
}

TEST(DecodeTracesProtobuf, AttributeFloodIsTrimmedAndCounted) {
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 1);
  for (int i = 0; i < 200; ++i) {
    AddStringAttr(span->mutable_attributes(), "k" + std::to_string(i), "v");
  }
  for (int i = 0; i < 130; ++i) span->add_events()->set_name("e");
  for (int i = 0; i < 3; ++i) {
    auto* l = span->add_links();
    l->set_trace_id(TraceIdBytes(2));
    l->set_span_id(i == 1 ? std::string(8, '\0') : SpanIdBytes(2));  // one invalid
  }
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  const core::Span& s = batch->spans.at(0);
  EXPECT_EQ(s.attributes.size(), 128u);
  EXPECT_EQ(s.attributes.back().key, "k127");
  EXPECT_EQ(s.events.size(), 128u);
  EXPECT_EQ(s.links.size(), 2u);
  EXPECT_EQ(batch->stats.attributes_dropped, 72);
  EXPECT_EQ(batch->stats.events_dropped, 2);
  EXPECT_EQ(batch->stats.links_dropped, 1);
  EXPECT_EQ(batch->rejected_spans, 0);
}

TEST(DecodeTracesProtobuf, LongValuesAreCutAtACharacterBoundary) {
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 1);
  AddStringAttr(span->mutable_attributes(), "long", std::string(100 << 10, 'a'));
  // "é" is two bytes: a 5-byte limit must not split the third one.
  AddStringAttr(span->mutable_attributes(), "utf8", "\xc3\xa9\xc3\xa9\xc3\xa9");
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(std::get<std::string>(batch->spans[0].attributes[0].value).size(), 64u << 10);
  EXPECT_EQ(batch->stats.values_truncated, 1);

  DecodeLimits small;
  small.max_value_bytes = 5;
  auto cut = DecodePb(req, small);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(std::get<std::string>(cut->spans[0].attributes[1].value), "\xc3\xa9\xc3\xa9");
  EXPECT_EQ(cut->spans[0].name, "span-");  // names are bounded too
}

TEST(DecodeTracesProtobuf, DeepCompositesAreCappedAndStayValidJson) {
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 1);
  auto* kv = span->add_attributes();
  kv->set_key("deep");
  pb_common::AnyValue* v = kv->mutable_value();
  for (int depth = 0; depth < 20; ++depth) v = v->mutable_array_value()->add_values();
  v->set_string_value("bottom");
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  const auto& text = std::get<core::JsonText>(batch->spans[0].attributes[0].value).text;
  EXPECT_EQ(text, "[[[[[[[[\"[nested too deep]\"]]]]]]]]");
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  EXPECT_FALSE(ec);
  EXPECT_EQ(batch->stats.values_too_deep, 1);
}

TEST(DecodeTracesProtobuf, OversizedCompositeBecomesAString) {
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 1);
  auto* kv = span->add_attributes();
  kv->set_key("big");
  for (int i = 0; i < 100; ++i) {
    kv->mutable_value()->mutable_array_value()->add_values()->set_string_value("0123456789");
  }
  DecodeLimits limits;
  limits.max_value_bytes = 50;
  auto batch = DecodePb(req, limits);
  ASSERT_TRUE(batch.ok());
  const auto* s = std::get_if<std::string>(&batch->spans[0].attributes[0].value);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size(), 50u);
  EXPECT_EQ(s->substr(0, 14), "[\"0123456789\",");
}

TEST(DecodeTracesProtobuf, InvalidUtf8IsKeptNotFatal) {
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 1);
  span->set_name("bad \xff name");
  auto batch = DecodePb(req);
  ASSERT_TRUE(batch.ok());
  EXPECT_EQ(batch->spans.at(0).name, "bad \xff name");
}

// ---- JSON ----------------------------------------------------------------------------

TEST(DecodeTracesJson, JsSdkFixture) {
  auto batch = DecodeTraces(ReadTestdata("traces_js_sdk.json"), Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->spans.size(), 2u);
  EXPECT_EQ(batch->rejected_spans, 0);
  const core::Span& chat = batch->spans[0];
  EXPECT_EQ(core::ToHex(chat.trace_id), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(core::ToHex(chat.span_id), "eee19b7ec3c1b174");
  EXPECT_EQ(core::ToHex(chat.parent_span_id), "eee19b7ec3c1b173");
  EXPECT_EQ(chat.kind, core::SpanKind::kClient);
  EXPECT_EQ(chat.start_unix_nanos, 1718000000000000000);
  EXPECT_EQ(chat.end_unix_nanos, 1718000001500000000);
  EXPECT_EQ(chat.service, "chat-frontend");
  EXPECT_EQ(chat.scope, "@opentelemetry/instrumentation-openai");
  EXPECT_EQ(chat.attributes.size(), 12u);
  EXPECT_EQ(chat.attributes[3].value, core::AttributeValue(int64_t{256}));
  EXPECT_EQ(chat.attributes[7].value, core::AttributeValue(core::JsonText{R"(["stop"])"}));
  EXPECT_EQ(chat.attributes[8].value, core::AttributeValue(int64_t{120}));  // "120"
  EXPECT_EQ(chat.events.at(0).time_unix_nanos, 1718000000350000000);
  EXPECT_EQ(chat.resource_attributes.at(4).value, core::AttributeValue(int64_t{4242}));
  const core::Span& server = batch->spans[1];
  EXPECT_EQ(server.kind, core::SpanKind::kServer);
  EXPECT_EQ(server.status, core::SpanStatus::kOk);
  ASSERT_EQ(server.links.size(), 1u);
  EXPECT_EQ(core::ToHex(server.links[0].trace_id), "0af7651916cd43dd8448eb211c80319c");
}

TEST(DecodeTracesJson, ProtobufAndJsonDecodeAlike) {
  // The same request in both encodings gives the same spans.
  ExportTraceServiceRequest req;
  auto* span = AddSpan(req, 0x2a);
  span->set_kind(pb_trace::Span::SPAN_KIND_SERVER);
  AddStringAttr(span->mutable_attributes(), "k", "v");
  const std::string json = R"({"resourceSpans":[{"resource":{"attributes":[
      {"key":"service.name","value":{"stringValue":"svc"}}]},
    "scopeSpans":[{"scope":{"name":"scope-a"},"spans":[{
      "traceId":"0102030405060708090A0B0C0D0E0F01","spanId":"010203040506072a",
      "name":"span-42","kind":"SPAN_KIND_SERVER",
      "startTimeUnixNano":1718000000000000000,"endTimeUnixNano":"1718000000000001000",
      "attributes":[{"key":"k","value":{"stringValue":"v"}}]}]}]}]})";
  auto a = DecodePb(req);
  auto b = DecodeTraces(json, Encoding::kJson);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_EQ(b->spans.size(), 1u);
  EXPECT_EQ(a->spans, b->spans);
}

TEST(DecodeTracesJson, SnakeCaseNamesAndEnumNamesAreAccepted) {
  const std::string json = R"({"resource_spans":[{"scope_spans":[{"spans":[{
      "trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174",
      "parent_span_id":"","name":"x","kind":"SPAN_KIND_CLIENT",
      "start_time_unix_nano":"5","end_time_unix_nano":"6",
      "status":{"code":"STATUS_CODE_ERROR","message":"m"},
      "attributes":[{"key":"b","value":{"bytes_value":"aGkh"}},
                    {"key":"d","value":{"double_value":"NaN"}}],
      "unknownField":{"anything":[1,2,3]}}]}]}]})";
  auto batch = DecodeTraces(json, Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->spans.size(), 1u);
  const core::Span& s = batch->spans[0];
  EXPECT_EQ(s.kind, core::SpanKind::kClient);
  EXPECT_EQ(s.status, core::SpanStatus::kError);
  EXPECT_EQ(s.status_message, "m");
  EXPECT_FALSE(core::IsValid(s.parent_span_id));
  EXPECT_EQ(s.attributes[0].value, core::AttributeValue(std::string("aGkh")));
  EXPECT_TRUE(std::isnan(std::get<double>(s.attributes[1].value)));
}

TEST(DecodeTracesJson, BadSpansAreRejectedWithTheirJsonPath) {
  const std::string json = R"({"resourceSpans":[{"scopeSpans":[{"spans":[
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
     "startTimeUnixNano":"5","endTimeUnixNano":"6","name":"good"},
    {"traceId":"not-hex-not-hex-not-hex-not-hex!","spanId":"eee19b7ec3c1b174",
     "startTimeUnixNano":"5","endTimeUnixNano":"6"},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7e",
     "startTimeUnixNano":"5","endTimeUnixNano":"6"},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
     "startTimeUnixNano":"5","endTimeUnixNano":"6","attributes":{"key":"not an array"}},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
     "startTimeUnixNano":"five","endTimeUnixNano":"6"},
    {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
     "startTimeUnixNano":"5","endTimeUnixNano":"6","kind":"SPAN_KIND_NOPE"},
    "not an object"
  ]}]}]})";
  auto batch = DecodeTraces(json, Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->spans[0].name, "good");
  EXPECT_EQ(batch->rejected_spans, 6);
  EXPECT_EQ(batch->stats.items_received, 7);
  EXPECT_EQ(batch->error_message,
            "resourceSpans[0].scopeSpans[0].spans[1].traceId: expected a hex string (and 5 more "
            "rejected)");
}

TEST(DecodeTracesJson, WrongShapesOutsideSpansAreErrors) {
  struct Case {
    std::string body;
    std::string message;
  } cases[] = {
      {"not json", "body is not JSON"},
      {"[1,2]", "OTLP/JSON $: expected an object"},
      {R"({"resourceSpans":{}})", "OTLP/JSON resourceSpans: expected an array"},
      {R"({"resourceSpans":[{"scopeSpans":[{"spans":7}]}]})",
       "OTLP/JSON resourceSpans[0].scopeSpans[0].spans: expected an array"},
      {R"({"resourceSpans":[{"resource":{"attributes":[{"key":1}]}}]})",
       "OTLP/JSON resourceSpans[0].resource.attributes[0].key: expected a string"},
  };
  for (const auto& c : cases) {
    auto batch = DecodeTraces(c.body, Encoding::kJson);
    ASSERT_FALSE(batch.ok()) << c.body;
    EXPECT_EQ(batch.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_EQ(batch.status().message().substr(0, c.message.size()), c.message) << c.body;
  }
}

TEST(DecodeTracesJson, NestingBeyondTheParserLimitIsAnError) {
  std::string deep = R"({"resourceSpans":)" + std::string(500, '[') + std::string(500, ']') + "}";
  auto batch = DecodeTraces(deep, Encoding::kJson);
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().message().find("not JSON"), std::string::npos);
}

// ---- Metrics -------------------------------------------------------------------------

TEST(DecodeMetrics, JsSdkFixture) {
  auto batch = DecodeMetrics(ReadTestdata("metrics_js_sdk.json"), Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->points.size(), 3u);
  EXPECT_EQ(batch->rejected_data_points, 0);
  const MetricPoint& h = batch->points[0];
  EXPECT_EQ(h.name, "gen_ai.client.token.usage");
  EXPECT_EQ(h.unit, "{token}");
  EXPECT_EQ(h.kind, MetricKind::kHistogram);
  EXPECT_EQ(h.temporality, Temporality::kCumulative);
  EXPECT_EQ(h.service, "chat-frontend");
  EXPECT_EQ(h.count, 3u);
  EXPECT_EQ(h.sum, 360.0);
  EXPECT_EQ(h.min, 100.0);
  EXPECT_EQ(h.max, 140.0);
  EXPECT_EQ(h.bounds, (std::vector<double>{64, 256}));
  EXPECT_EQ(h.bucket_counts, (std::vector<uint64_t>{0, 3, 0}));
  EXPECT_EQ(h.attributes.at(0).key, "gen_ai.token.type");
  const MetricPoint& s = batch->points[1];
  EXPECT_EQ(s.kind, MetricKind::kSum);
  EXPECT_EQ(s.temporality, Temporality::kDelta);
  EXPECT_TRUE(s.monotonic);
  EXPECT_TRUE(s.is_int);
  EXPECT_EQ(s.value, 7.0);
  const MetricPoint& g = batch->points[2];
  EXPECT_EQ(g.kind, MetricKind::kGauge);
  EXPECT_EQ(g.value, 2.5);
  EXPECT_EQ(g.start_unix_nanos, 0);
  EXPECT_EQ(g.time_unix_nanos, 1718000060000000000);
}

TEST(DecodeMetrics, ProtobufRejectsBadPointsAndUnsupportedKinds) {
  ExportMetricsServiceRequest req;
  auto* sm = req.add_resource_metrics()->add_scope_metrics();
  auto* hist = sm->add_metrics();
  hist->set_name("latency");
  auto* good = hist->mutable_histogram()->add_data_points();
  good->set_time_unix_nano(kT0);
  good->set_count(3);
  good->add_explicit_bounds(1);
  good->add_bucket_counts(1);
  good->add_bucket_counts(2);
  auto* mismatch = hist->mutable_histogram()->add_data_points();
  mismatch->set_time_unix_nano(kT0);
  mismatch->add_explicit_bounds(1);
  mismatch->add_bucket_counts(1);
  auto* bad_count = hist->mutable_histogram()->add_data_points();
  bad_count->set_time_unix_nano(kT0);
  bad_count->set_count(9);
  bad_count->add_bucket_counts(1);
  bad_count->add_bucket_counts(1);
  bad_count->add_explicit_bounds(5);
  auto* gauge = sm->add_metrics();
  gauge->set_name("g");
  gauge->mutable_gauge()->add_data_points()->set_time_unix_nano(kT0);  // no value
  auto* ok_point = gauge->mutable_gauge()->add_data_points();
  ok_point->set_time_unix_nano(kT0);
  ok_point->set_as_int(-4);
  auto* summary = sm->add_metrics();
  summary->set_name("s");
  summary->mutable_summary()->add_data_points();
  summary->mutable_summary()->add_data_points();
  auto* unnamed = sm->add_metrics();
  unnamed->mutable_sum()->add_data_points()->set_time_unix_nano(kT0);

  auto batch = DecodeMetrics(req.SerializeAsString(), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->points.size(), 2u);
  EXPECT_EQ(batch->points[0].bucket_counts, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(batch->points[1].value, -4.0);
  EXPECT_EQ(batch->rejected_data_points, 6);
  EXPECT_EQ(batch->stats.items_received, 8);
  EXPECT_EQ(batch->error_message,
            "resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[1]: metric latency: "
            "histogram has 1 "
            "bucket_counts for 1 explicit_bounds, want bounds + 1 (and 4 more rejected)");
}

// ---- Logs ----------------------------------------------------------------------------

TEST(DecodeLogs, JsSdkFixture) {
  auto batch = DecodeLogs(ReadTestdata("logs_js_sdk.json"), Encoding::kJson);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->records.size(), 2u);
  const LogRecord& a = batch->records[0];
  EXPECT_EQ(a.time_unix_nanos, 1718000000100000000);
  EXPECT_EQ(a.observed_unix_nanos, 1718000000100000500);
  EXPECT_EQ(a.severity_number, 17);
  EXPECT_EQ(a.severity_text, "ERROR");
  EXPECT_EQ(a.body, "upstream returned 429");
  EXPECT_EQ(core::ToHex(a.trace_id), "5b8efff798038103d269b633813fc60c");
  EXPECT_EQ(core::ToHex(a.span_id), "eee19b7ec3c1b174");
  EXPECT_EQ(a.service, "chat-frontend");
  EXPECT_EQ(a.scope, "app-logger");
  EXPECT_EQ(a.attributes.at(0).value, core::AttributeValue(true));
  const LogRecord& b = batch->records[1];
  EXPECT_EQ(b.time_unix_nanos, 1718000000200000000);  // observed time stands in
  EXPECT_EQ(b.severity_number, 9);
  EXPECT_EQ(b.body, R"({"event":"cache_hit"})");
  EXPECT_EQ(b.event_name, "app.cache");
  EXPECT_FALSE(core::IsValid(b.trace_id));
}

TEST(DecodeLogs, ProtobufRejectsRecordsWithoutTimeOrWithBadIds) {
  ExportLogsServiceRequest req;
  auto* sl = req.add_resource_logs()->add_scope_logs();
  sl->add_log_records();  // no time at all
  auto* bad_id = sl->add_log_records();
  bad_id->set_time_unix_nano(kT0);
  bad_id->set_trace_id("short");
  auto* ok = sl->add_log_records();
  ok->set_time_unix_nano(kT0);
  ok->mutable_body()->set_int_value(5);
  auto batch = DecodeLogs(req.SerializeAsString(), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->records.size(), 1u);
  EXPECT_EQ(batch->records[0].body, "5");
  EXPECT_EQ(batch->rejected_log_records, 2);
  EXPECT_EQ(batch->error_message,
            "resourceLogs[0].scopeLogs[0].logRecords[0]: time_unix_nano and "
            "observed_time_unix_nano are both 0 (and "
            "1 more rejected)");
}

// ---- Export response -----------------------------------------------------------------

TEST(EncodeErrorStatus, ProtobufAndJson) {
  EXPECT_EQ(EncodeErrorStatus(Encoding::kJson, 3, "bad \"span\""),
            "{\"code\":3,\"message\":\"bad \\\"span\\\"\"}");
  // code 8 (varint 0x08 0x08), message "no" (0x12 0x02 'n' 'o').
  EXPECT_EQ(EncodeErrorStatus(Encoding::kProtobuf, 8, "no"), std::string("\x08\x08\x12\x02no", 6));
  const std::string long_message(200, 'x');
  const std::string pb = EncodeErrorStatus(Encoding::kProtobuf, 14, long_message);
  ASSERT_EQ(pb.size(), 2u + 3u + 200u);  // a two-byte length varint
  EXPECT_EQ(static_cast<unsigned char>(pb[3]), 0xC8);
  EXPECT_EQ(static_cast<unsigned char>(pb[4]), 0x01);
}

TEST(EncodeExportResponse, FullSuccessIsEmpty) {
  EXPECT_EQ(EncodeExportResponse(Signal::kTraces, Encoding::kProtobuf, 0, ""), "");
  EXPECT_EQ(EncodeExportResponse(Signal::kLogs, Encoding::kJson, 0, ""), "{}");
}

TEST(EncodeExportResponse, PartialSuccessInBothEncodings) {
  EXPECT_EQ(EncodeExportResponse(Signal::kTraces, Encoding::kJson, 2, "bad \"id\""),
            R"({"partialSuccess":{"rejectedSpans":2,"errorMessage":"bad \"id\""}})");
  EXPECT_EQ(EncodeExportResponse(Signal::kMetrics, Encoding::kJson, 1, "m"),
            R"({"partialSuccess":{"rejectedDataPoints":1,"errorMessage":"m"}})");
  internal::pb_collector_trace::ExportTraceServiceResponse traces;
  ASSERT_TRUE(
      traces.ParseFromString(EncodeExportResponse(Signal::kTraces, Encoding::kProtobuf, 3, "why")));
  EXPECT_EQ(traces.partial_success().rejected_spans(), 3);
  EXPECT_EQ(traces.partial_success().error_message(), "why");
  internal::pb_collector_logs::ExportLogsServiceResponse logs;
  ASSERT_TRUE(
      logs.ParseFromString(EncodeExportResponse(Signal::kLogs, Encoding::kProtobuf, 0, "warn")));
  EXPECT_TRUE(logs.has_partial_success());
  EXPECT_EQ(logs.partial_success().rejected_log_records(), 0);
  EXPECT_EQ(logs.partial_success().error_message(), "warn");
}

TEST(Base64, RoundTrips) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10"}) {
    std::string decoded;
    ASSERT_TRUE(internal::Base64Decode(internal::Base64Encode(s), decoded));
    EXPECT_EQ(decoded, s);
  }
  std::string out;
  EXPECT_FALSE(internal::Base64Decode("ab$d", out));
  EXPECT_FALSE(internal::Base64Decode("a", out));
}

}  // namespace
}  // namespace llmscope::otlp
