#include "api/render.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace llmscope::api {
namespace {

namespace json = boost::json;

json::value Parse(const std::string& body) {
  json::value v = json::parse(body);  // throws (fails the test) on invalid JSON
  return v;
}

core::SpanId Sid(uint8_t n) {
  core::SpanId id{};
  id[7] = n;
  return id;
}

core::Span MakeSpan(uint8_t id, uint8_t parent, const char* name, int64_t start) {
  core::Span s;
  s.trace_id[0] = 1;
  s.span_id = Sid(id);
  if (parent) s.parent_span_id = Sid(parent);
  s.name = name;
  s.start_unix_nanos = start;
  s.end_unix_nanos = start + 10;
  return s;
}

TEST(RenderError, UsesThePrometheusEnvelopeAndStatus) {
  auto s = core::InvalidArgument("limit: must be between 1 and 1000, got 0");
  EXPECT_EQ(HttpStatusFor(s), 400);
  auto v = Parse(RenderError(s));
  EXPECT_EQ(v.at("status"), "error");
  EXPECT_EQ(v.at("errorType"), "bad_data");
  EXPECT_EQ(v.at("error"), "limit: must be between 1 and 1000, got 0");
  EXPECT_EQ(HttpStatusFor(core::Status(core::StatusCode::kDeadlineExceeded, "t")), 503);
  EXPECT_EQ(HttpStatusFor(core::Status(core::StatusCode::kResourceExhausted, "t")), 422);
  EXPECT_EQ(HttpStatusFor(core::NotFound("x")), 404);
}

TEST(RenderTrace, BuildsTheTreeAndHangsCallsUnderTheirParentSpan) {
  storage::TraceDetail t;
  t.spans = {MakeSpan(1, 0, "rag.request", 100), MakeSpan(2, 1, "retrieve", 110),
             MakeSpan(3, 1, "generate", 120), MakeSpan(4, 3, "rerank", 121),
             MakeSpan(5, 9, "orphan", 130)};  // parent 9 is not in the trace: a root
  core::LlmCall via_gateway;
  via_gateway.request_id = "gw";
  via_gateway.parent_span_id = Sid(3);  // the app's "generate" span called the gateway
  core::LlmCall loose;
  loose.request_id = "loose";
  loose.parent_span_id = Sid(42);
  t.calls = {via_gateway, loose};
  core::TraceId id{};
  id[0] = 1;
  auto v = Parse(RenderTrace(id, t)).at("data");
  EXPECT_EQ(v.at("span_count"), 5);
  EXPECT_EQ(v.at("call_count"), 2);
  const auto& roots = v.at("roots").as_array();
  ASSERT_EQ(roots.size(), 2u);
  EXPECT_EQ(roots[0].at("name"), "rag.request");
  EXPECT_EQ(roots[1].at("name"), "orphan");
  const auto& kids = roots[0].at("children").as_array();
  ASSERT_EQ(kids.size(), 2u);
  EXPECT_EQ(kids[0].at("name"), "retrieve");
  EXPECT_EQ(kids[1].at("name"), "generate");
  ASSERT_EQ(kids[1].at("calls").as_array().size(), 1u);
  EXPECT_EQ(kids[1].at("calls").as_array()[0].at("request_id"), "gw");
  ASSERT_EQ(kids[1].at("children").as_array().size(), 1u);
  EXPECT_EQ(kids[1].at("children").as_array()[0].at("name"), "rerank");
  ASSERT_EQ(v.at("calls").as_array().size(), 1u);
  EXPECT_EQ(v.at("calls").as_array()[0].at("request_id"), "loose");
}

TEST(RenderTrace, SurvivesParentCyclesAndDeepNesting) {
  storage::TraceDetail t;
  t.spans = {MakeSpan(1, 2, "a", 1), MakeSpan(2, 1, "b", 2), MakeSpan(3, 3, "self", 3)};
  auto v = Parse(RenderTrace(core::TraceId{}, t)).at("data");
  // Every span appears exactly once.
  std::function<int(const json::array&)> count = [&](const json::array& spans) {
    int n = 0;
    for (const auto& s : spans) n += 1 + count(s.at("children").as_array());
    return n;
  };
  EXPECT_EQ(count(v.at("roots").as_array()), 3);

  storage::TraceDetail deep;
  const int kDepth = 20000;
  for (int i = 0; i < kDepth; ++i) {
    core::Span s;
    s.span_id[0] = static_cast<uint8_t>(i >> 8);
    s.span_id[1] = static_cast<uint8_t>(i);
    s.span_id[7] = 1;
    if (i > 0) {
      s.parent_span_id = s.span_id;
      s.parent_span_id[0] = static_cast<uint8_t>((i - 1) >> 8);
      s.parent_span_id[1] = static_cast<uint8_t>(i - 1);
    }
    deep.spans.push_back(s);
  }
  std::string body = RenderTrace(core::TraceId{}, deep);  // no stack overflow
  EXPECT_EQ(body.find("\"span_count\":20000"), body.find("\"span_count\""));
}

TEST(Csv, QuotesFieldsThatNeedIt) {
  core::LlmCall c;
  c.request_id = "r1";
  c.user = "Doe, \"Jane\"";
  c.tags = {{"team", "a\nb"}};
  c.cost_usd = 0.25;
  std::string out;
  AppendCsvHeader(out);
  AppendCallCsv(out, c);
  EXPECT_NE(out.find(",\"Doe, \"\"Jane\"\"\","), std::string::npos) << out;
  EXPECT_NE(out.find("\"team=a\nb\""), std::string::npos) << out;
  EXPECT_NE(out.find(",0.25,false,"), std::string::npos) << out;
  // Same number of columns in header and row (outside quotes).
  auto columns = [](std::string_view line) {
    int n = 1;
    bool quoted = false;
    for (char ch : line) {
      if (ch == '"') quoted = !quoted;
      if (ch == ',' && !quoted) ++n;
    }
    return n;
  };
  size_t eol = out.find("\r\n");
  EXPECT_EQ(columns(std::string_view(out).substr(0, eol)),
            columns(std::string_view(out).substr(eol + 2)));
}

TEST(RenderAggregate, GivesSecondsAndErrorRate) {
  storage::AggregateQuery q;
  q.bucket = storage::TimeBucket::kHour;
  q.group_by = storage::GroupBy::kModel;
  storage::AggregateResult r;
  storage::AggregateRow row;
  row.bucket_start_unix_nanos = 3600'000'000'000;
  row.group = "gpt-4o";
  row.requests = 4;
  row.errors = 1;
  row.latency_p95_nanos = 1'500'000'000;
  r.rows.push_back(row);
  auto v = Parse(RenderAggregate(q, r)).at("data");
  const auto& out = v.at("rows").as_array()[0];
  EXPECT_EQ(out.at("bucket_start"), "1970-01-01T01:00:00.000000Z");
  EXPECT_EQ(out.at("error_rate").as_double(), 0.25);
  EXPECT_EQ(out.at("latency_seconds").at("p95").as_double(), 1.5);
  EXPECT_TRUE(out.at("latency_seconds").at("p50").is_null());
}

}  // namespace
}  // namespace llmscope::api
