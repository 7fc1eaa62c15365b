#include "api/params.h"

#include <gtest/gtest.h>

namespace llmscope::api {
namespace {

constexpr int64_t kNow = 1'763'892'000'000'000'000;  // 2025-11-23T10:00:00Z
constexpr int64_t kSec = 1'000'000'000;

Params P(std::string_view q) {
  auto p = Params::Parse(q);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Params();
}

std::string ErrorOf(const core::Status& s) { return s.ok() ? "OK" : s.message(); }

TEST(Params, DecodesPercentAndPlusAndRejectsRepeatsAndBadEscapes) {
  auto p = P("model=gpt-4o%2Fmini&q=a+b&tag=feature%3Asearch&empty=");
  EXPECT_EQ(p.Get("model"), "gpt-4o/mini");
  EXPECT_EQ(p.Get("q"), "a b");
  EXPECT_EQ(p.Get("tag"), "feature:search");
  EXPECT_EQ(p.Get("empty"), "");
  EXPECT_FALSE(p.Get("absent"));
  EXPECT_NE(ErrorOf(Params::Parse("a=1&a=2").status()).find("a: given more than once"),
            std::string::npos);
  EXPECT_FALSE(Params::Parse("a=%zz").ok());
  EXPECT_FALSE(Params::Parse("a=%2").ok());
  EXPECT_FALSE(Params::Parse("=x").ok());
  EXPECT_TRUE(Params::Parse("").ok());
  EXPECT_TRUE(Params::Parse("&&a=1&").ok());
}

TEST(Params, RepeatableNamesKeepEveryValueInOrder) {
  auto p = Params::Parse("match%5B%5D=up&x=1&match[]=llm_requests_total", {"match[]"});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->GetAll("match[]"), (std::vector<std::string_view>{"up", "llm_requests_total"}));
  EXPECT_EQ(p->Get("match[]"), "up");
  EXPECT_TRUE(p->GetAll("absent").empty());
  EXPECT_FALSE(Params::Parse("x=1&x=2", {"match[]"}).ok()) << "only the named ones repeat";
}

TEST(ParseTime, TakesRfc3339AndUnixSeconds) {
  EXPECT_EQ(*ParseTime("2025-11-23T10:00:00Z", "from"), kNow);
  EXPECT_EQ(*ParseTime("2025-11-23T11:30:00+01:30", "from"), kNow);
  EXPECT_EQ(*ParseTime("2025-11-23T10:00:00.25Z", "from"), kNow + kSec / 4);
  EXPECT_EQ(*ParseTime("1763892000", "from"), kNow);
  EXPECT_EQ(*ParseTime("1763892000.000000001", "from"), kNow + 1);
  EXPECT_EQ(*ParseTime("1763892000.5", "from"), kNow + kSec / 2);
  for (auto bad : {"", "yesterday", "2025-13-01T00:00:00Z", "2025-02-30T00:00:00Z",
                   "2025-11-23T10:00:00", "1.2.3", "99999999999999999999"}) {
    auto r = ParseTime(bad, "from");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("from: ", 0), 0u) << r.status().message();
  }
}

TEST(ParseDuration, TakesPrometheusUnitsAndSeconds) {
  EXPECT_EQ(*ParseDuration("250ms", "d"), 250'000'000);
  EXPECT_EQ(*ParseDuration("1h30m", "d"), 5400 * kSec);
  EXPECT_EQ(*ParseDuration("2d", "d"), 2 * 86400 * kSec);
  EXPECT_EQ(*ParseDuration("1.5", "d"), 1'500'000'000);
  EXPECT_EQ(*ParseDuration("0", "d"), 0);
  for (auto bad : {"", "m5", "5x", "30m1h", "-1", "1h1h"}) {
    EXPECT_FALSE(ParseDuration(bad, "d").ok()) << bad;
  }
}

TEST(ParseCallQuery, MapsEveryFilter) {
  auto q = ParseCallQuery(
      P("from=1763892000&to=2025-11-23T11:00:00Z&model=gpt-4o&provider=openai&user=u1&"
        "session=s1&tag=team:search&status=429&error=rate_limit&endpoint=messages&"
        "usage_source=estimated&trace_id=0af7651916cd43dd8448eb211c80319c&min_latency=2s&"
        "min_cost=0.5&q=abc&sort=cost&order=asc&limit=7"),
      kNow, {});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  const auto& f = q->filter;
  EXPECT_EQ(f.from_unix_nanos, kNow);
  EXPECT_EQ(f.to_unix_nanos, kNow + 3600 * kSec);
  EXPECT_EQ(f.model, "gpt-4o");
  EXPECT_EQ(f.provider, "openai");
  EXPECT_EQ(f.user, "u1");
  EXPECT_EQ(f.session, "s1");
  EXPECT_EQ(f.tag, std::make_pair(std::string("team"), std::string("search")));
  EXPECT_EQ(f.http_status, 429);
  EXPECT_EQ(f.error, core::ErrorClass::kRateLimit);
  EXPECT_EQ(f.endpoint, core::Endpoint::kMessages);
  EXPECT_EQ(f.usage_source, core::UsageSource::kEstimated);
  ASSERT_TRUE(f.trace_id);
  EXPECT_EQ(core::ToHex(*f.trace_id), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(f.min_duration_nanos, 2 * kSec);
  EXPECT_EQ(f.min_cost_usd, 0.5);
  EXPECT_EQ(f.request_id_contains, "abc");
  EXPECT_EQ(q->sort, storage::CallSort::kCost);
  EXPECT_FALSE(q->descending);
  EXPECT_EQ(q->limit, 7u);
}

TEST(ParseCallQuery, EachBadParameterIsNamed) {
  struct Case {
    const char* query;
    const char* param;
  } cases[] = {
      {"limit=0", "limit"},
      {"limit=1001", "limit"},
      {"limit=ten", "limit"},
      {"sort=speed", "sort"},
      {"order=up", "order"},
      {"from=never", "from"},
      {"from=20&to=10", "from"},
      {"status=abc", "status"},
      {"error=bad", "error"},
      {"endpoint=x", "endpoint"},
      {"usage_source=x", "usage_source"},
      {"trace_id=123", "trace_id"},
      {"min_latency=fast", "min_latency"},
      {"min_cost=-1", "min_cost"},
      {"tag=nocolon", "tag"},
      {"modle=x", "modle"},
      {"cursor=xyz", "cursor"},
      {"timeout=0", "timeout"},
  };
  for (const auto& c : cases) {
    auto q = ParseCallQuery(P(c.query), kNow, {});
    ASSERT_FALSE(q.ok()) << c.query;
    EXPECT_EQ(q.status().code(), core::StatusCode::kInvalidArgument) << c.query;
    EXPECT_EQ(q.status().message().rfind(std::string(c.param) + ": ", 0), 0u)
        << c.query << " -> " << q.status().message();
  }
}

TEST(ParseCallQuery, TimeoutIsCappedAtTheMaximum) {
  QueryLimits limits;
  limits.max_timeout = std::chrono::seconds(5);
  auto q = ParseCallQuery(P("timeout=1h"), kNow, limits);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->timeout, std::chrono::seconds(5));
  q = ParseCallQuery(P(""), kNow, limits);
  EXPECT_EQ(q->timeout, limits.default_timeout);
}

TEST(ParseAggregateQuery, DefaultsToTheLastDayAndParsesGrouping) {
  auto q = ParseAggregateQuery(P("bucket=hour&group_by=tag:feature"), kNow, {});
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->filter.to_unix_nanos, kNow);
  EXPECT_EQ(q->filter.from_unix_nanos, kNow - 86400 * kSec);
  EXPECT_EQ(q->bucket, storage::TimeBucket::kHour);
  EXPECT_EQ(q->group_by, storage::GroupBy::kTag);
  EXPECT_EQ(q->group_tag_key, "feature");
  // Only `to` given: the default window ends there.
  q = ParseAggregateQuery(P("to=1763892000"), kNow + 99 * kSec, {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->filter.from_unix_nanos, kNow - 86400 * kSec);
  EXPECT_FALSE(ParseAggregateQuery(P("group_by=tag:"), kNow, {}).ok());
  EXPECT_FALSE(ParseAggregateQuery(P("group_by=color"), kNow, {}).ok());
  auto big = ParseAggregateQuery(P("bucket=minute&from=0"), kNow, {});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), core::StatusCode::kResourceExhausted);
}

TEST(ParseTopQuery, DefaultsAndErrors) {
  auto q = ParseTopQuery(P(""), kNow, {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->dimension, storage::GroupBy::kUser);
  EXPECT_EQ(q->by, storage::TopMetric::kCost);
  EXPECT_EQ(q->limit, 10u);
  q = ParseTopQuery(P("by=tokens&dimension=model&limit=3"), kNow, {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->dimension, storage::GroupBy::kModel);
  EXPECT_EQ(q->by, storage::TopMetric::kTokens);
  EXPECT_FALSE(ParseTopQuery(P("dimension=none"), kNow, {}).ok());
  EXPECT_FALSE(ParseTopQuery(P("by=latency"), kNow, {}).ok());
}

TEST(ParseTraceQuery, ParsesAndRejects) {
  auto q = ParseTraceQuery(P("service=rag&errors_only=true&limit=5"), kNow, {});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->service, "rag");
  EXPECT_TRUE(q->errors_only);
  EXPECT_EQ(q->limit, 5u);
  EXPECT_FALSE(ParseTraceQuery(P("errors_only=yes"), kNow, {}).ok());
  EXPECT_FALSE(ParseTraceQuery(P("model=x"), kNow, {}).ok());  // not a trace filter
}

TEST(ParseExportRequest, FormatAndLimit) {
  auto r = ParseExportRequest(P("format=csv&limit=5&user=u"), kNow, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->format, ExportFormat::kCsv);
  EXPECT_EQ(r->max_rows, 5);
  EXPECT_EQ(r->filter.user, "u");
  EXPECT_FALSE(ParseExportRequest(P("format=xml"), kNow, {}).ok());
  EXPECT_FALSE(ParseExportRequest(P("limit=0"), kNow, {}).ok());
}

}  // namespace
}  // namespace llmscope::api
