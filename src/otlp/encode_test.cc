#include "otlp/encode.h"

#include <gtest/gtest.h>

#include "otlp/convert.h"
#include "otlp/decode.h"

namespace llmscope::otlp {
namespace {

constexpr int64_t kT0 = 1'718'000'000'000'000'000;

core::TraceId Trace(uint8_t last) {
  core::TraceId id{};
  for (int i = 0; i < 16; ++i) id[i] = static_cast<uint8_t>(i + 1);
  id[15] = last;
  return id;
}
core::SpanId SpanIdOf(uint8_t last) { return {9, 8, 7, 6, 5, 4, 3, last}; }

core::Span MakeSpan(std::string service, std::string scope, uint8_t id) {
  core::Span s;
  s.trace_id = Trace(1);
  s.span_id = SpanIdOf(id);
  s.name = "span-" + std::to_string(id);
  s.kind = core::SpanKind::kInternal;
  s.service = service;
  s.scope = std::move(scope);
  s.resource_attributes = {{"service.name", std::move(service)}};
  s.start_unix_nanos = kT0 + id;
  s.end_unix_nanos = kT0 + 1000 + id;
  return s;
}

// Spans covering every field the decoder fills: three resources (two services, and one
// service twice with different resource attributes), two scopes, every attribute type
// including composites, events, links, kinds and statuses.
std::vector<core::Span> RichSpans() {
  std::vector<core::Span> spans;
  core::Span root = MakeSpan("rag-app", "app", 1);
  root.kind = core::SpanKind::kServer;
  root.resource_attributes.push_back({"deployment.environment.name", std::string("prod")});
  root.resource_attributes.push_back({"host.cpus", int64_t{8}});
  root.attributes = {
      {"s", std::string("text with \"quotes\" and ünïcode")},
      {"b", true},
      {"i", int64_t{-42}},
      {"d", 2.5},
      {"arr", core::JsonText{R"(["a",1,2.5,true,null,[1,2],{"k":"v"}])"}},
      {"map", core::JsonText{R"({"x":{"y":[3,"z"]},"empty":[],"n":-7})"}},
      {"empty_string", std::string()},
  };
  root.status = core::SpanStatus::kOk;
  root.events = {{kT0 + 10, "retrieved", {{"docs", int64_t{3}}}}, {kT0 + 20, "plain", {}}};
  spans.push_back(root);

  core::Span child = MakeSpan("rag-app", "app", 2);
  child.resource_attributes = root.resource_attributes;
  child.parent_span_id = root.span_id;
  child.kind = core::SpanKind::kClient;
  child.status = core::SpanStatus::kError;
  child.status_message = "upstream said no";
  child.links = {{Trace(7), SpanIdOf(70), {{"link.kind", std::string("follows")}}}};
  spans.push_back(child);

  core::Span other_scope = MakeSpan("rag-app", "db", 3);
  other_scope.resource_attributes = root.resource_attributes;
  other_scope.parent_span_id = root.span_id;
  other_scope.kind = core::SpanKind::kProducer;
  spans.push_back(other_scope);

  // Same service, different resource attributes: a resource of its own.
  core::Span other_resource = MakeSpan("rag-app", "app", 4);
  other_resource.kind = core::SpanKind::kConsumer;
  spans.push_back(other_resource);

  core::Span other_service = MakeSpan("llmscope", "llmscope.gateway", 5);
  other_service.trace_id = Trace(2);
  other_service.kind = core::SpanKind::kUnspecified;
  spans.push_back(other_service);

  // Back to the first resource and scope after the others.
  core::Span again = MakeSpan("rag-app", "app", 6);
  again.resource_attributes = root.resource_attributes;
  again.parent_span_id = root.span_id;
  spans.push_back(again);
  return spans;
}

// The decoder groups by resource and scope; compare as sets in that grouping's order.
std::vector<core::Span> Grouped(std::vector<core::Span> spans) {
  std::vector<core::Span> out;
  while (!spans.empty()) {
    const core::Span first = spans.front();
    for (auto it = spans.begin(); it != spans.end();) {
      if (it->service == first.service && it->resource_attributes == first.resource_attributes &&
          it->scope == first.scope) {
        out.push_back(std::move(*it));
        it = spans.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

TEST(EncodeTracesTest, RoundTripsThroughTheDecoder) {
  const std::vector<core::Span> spans = RichSpans();
  auto batch = DecodeTraces(EncodeTraces(spans), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->rejected_spans, 0);
  EXPECT_EQ(batch->stats.items_received, static_cast<int64_t>(spans.size()));
  ASSERT_EQ(batch->spans.size(), spans.size());
  const std::vector<core::Span> want = Grouped(spans);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(batch->spans[i], want[i]) << "span " << i << " (" << want[i].name << ")";
  }
}

TEST(EncodeTracesTest, GroupsByResourceThenScope) {
  internal::pb_collector_trace::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(EncodeTraces(RichSpans())));
  ASSERT_EQ(req.resource_spans_size(), 3);
  EXPECT_EQ(req.resource_spans(0).scope_spans_size(), 2);  // app (3 spans), db
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 3);
  EXPECT_EQ(req.resource_spans(0).scope_spans(1).scope().name(), "db");
  EXPECT_EQ(req.resource_spans(1).scope_spans_size(), 1);
  EXPECT_EQ(req.resource_spans(2).scope_spans(0).scope().name(), "llmscope.gateway");
  // A root span carries no parent id at all (not 8 zero bytes).
  EXPECT_TRUE(req.resource_spans(0).scope_spans(0).spans(0).parent_span_id().empty());
}

TEST(EncodeTracesTest, CompositesBecomeAnyValues) {
  core::Span s = MakeSpan("svc", "sc", 1);
  s.attributes = {{"arr", core::JsonText{R"([1,"two",{"three":3}])"}},
                  {"broken", core::JsonText{"[not json"}}};
  internal::pb_collector_trace::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(EncodeTraces({s})));
  const auto& attrs = req.resource_spans(0).scope_spans(0).spans(0).attributes();
  ASSERT_EQ(attrs.size(), 2);
  const auto& arr = attrs[0].value().array_value();
  ASSERT_EQ(arr.values_size(), 3);
  EXPECT_EQ(arr.values(0).int_value(), 1);
  EXPECT_EQ(arr.values(1).string_value(), "two");
  EXPECT_EQ(arr.values(2).kvlist_value().values(0).key(), "three");
  EXPECT_EQ(attrs[1].value().string_value(), "[not json");  // kept, as a string
}

TEST(EncodeTracesTest, ServiceNameAddedWhenTheResourceLacksIt) {
  core::Span s = MakeSpan("svc", "sc", 1);
  s.resource_attributes.clear();
  auto batch = DecodeTraces(EncodeTraces({s}), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->spans.size(), 1u);
  EXPECT_EQ(batch->spans[0].service, "svc");
}

TEST(EncodeTracesTest, EmptyIsAnEmptyRequest) {
  auto batch = DecodeTraces(EncodeTraces({}), Encoding::kProtobuf);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->spans.empty());
}

}  // namespace
}  // namespace llmscope::otlp
