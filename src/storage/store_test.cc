#include "storage/store.h"

#include <gtest/gtest.h>

namespace llmscope::storage {
namespace {

TEST(CallCursor, RoundTripsEverySortAndRejectsAnotherSort) {
  core::LlmCall call;
  call.request_id = std::string("req.\x01\xff", 6);  // any bytes survive
  call.start_unix_nanos = 1'700'000'000'123'456'789;
  call.end_nanos = 42;
  call.cost_usd = 0.1 + 0.2;  // not exactly representable: must round-trip bit for bit
  call.usage.input = 7;
  call.usage.output = 5;
  for (CallSort sort :
       {CallSort::kStartTime, CallSort::kDuration, CallSort::kCost, CallSort::kTotalTokens}) {
    for (bool desc : {true, false}) {
      std::string text = EncodeCallCursor(CursorAfter(call, sort, desc));
      for (char c : text)
        ASSERT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
                    c == '_')
            << text;
      auto back = DecodeCallCursor(text, sort, desc);
      ASSERT_TRUE(back.ok()) << back.status().ToString();
      EXPECT_EQ(back->request_id, call.request_id);
      EXPECT_EQ(back->value, SortValue(call, sort));
      auto other = DecodeCallCursor(text, sort, !desc);
      ASSERT_FALSE(other.ok());
      EXPECT_NE(other.status().message().find("cursor:"), std::string::npos);
    }
  }
  EXPECT_EQ(std::get<double>(SortValue(call, CallSort::kCost)), 0.1 + 0.2);
  EXPECT_EQ(std::get<int64_t>(SortValue(call, CallSort::kTotalTokens)), 12);
  EXPECT_FALSE(DecodeCallCursor("garbage", CallSort::kStartTime, true).ok());
  EXPECT_FALSE(DecodeCallCursor("c1.start_time.desc.12x.00", CallSort::kStartTime, true).ok());
}

TEST(CallCursor, UnfinishedAndUnpricedCallsSortAsMinusOne) {
  core::LlmCall call;
  EXPECT_EQ(std::get<int64_t>(SortValue(call, CallSort::kDuration)), -1);
  EXPECT_EQ(std::get<double>(SortValue(call, CallSort::kCost)), -1.0);
}

TEST(ExactQuantile, PicksNearestRankFromBelow) {
  std::vector<int64_t> v = {50, 10, 40, 20, 30};
  EXPECT_EQ(ExactQuantile(v, 0.0), 10);
  EXPECT_EQ(ExactQuantile(v, 0.5), 30);   // floor(2.5) = 2
  EXPECT_EQ(ExactQuantile(v, 0.95), 50);  // floor(4.75) = 4
  EXPECT_EQ(ExactQuantile(v, 1.0), 50);   // clamped to n - 1
  std::vector<int64_t> four = {1, 2, 3, 4};
  EXPECT_EQ(ExactQuantile(four, 0.5), 3);  // floor(2.0) = 2
  std::vector<int64_t> one = {7};
  EXPECT_EQ(ExactQuantile(one, 0.99), 7);
}

TEST(Retention, CutoffIsTheMidnightAtOrBeforeNowMinusDays) {
  const int64_t day = kNanosPerDay;
  int64_t midnight = 20'000 * day;
  EXPECT_EQ(RetentionCutoffNanos(midnight + 5, 1), midnight - day);
  EXPECT_EQ(RetentionCutoffNanos(midnight, 1), midnight - day);
  EXPECT_EQ(RetentionCutoffNanos(midnight - 1, 1), midnight - 2 * day);
  EXPECT_EQ(RetentionCutoffNanos(midnight + day / 2, 90), midnight - 90 * day);
}

TEST(Validate, NamesTheParameter) {
  CallQuery q;
  q.limit = 0;
  EXPECT_NE(Validate(q).message().find("limit"), std::string::npos);
  q.limit = kMaxPageSize + 1;
  EXPECT_FALSE(Validate(q).ok());
  q.limit = 10;
  q.filter.from_unix_nanos = 10;
  q.filter.to_unix_nanos = 10;
  EXPECT_NE(Validate(q).message().find("from"), std::string::npos);
  q.filter.to_unix_nanos = 20;
  EXPECT_TRUE(Validate(q).ok());
  q.cursor = "c1.cost.desc.1.00";
  EXPECT_NE(Validate(q).message().find("cursor"), std::string::npos);

  AggregateQuery a;
  a.group_by = GroupBy::kTag;
  EXPECT_NE(Validate(a).message().find("tag key"), std::string::npos);
  a.group_by = GroupBy::kModel;
  a.bucket = TimeBucket::kMinute;
  EXPECT_FALSE(Validate(a).ok());  // unbounded range with buckets
  a.filter.from_unix_nanos = 0;
  a.filter.to_unix_nanos = 10'000 * 60 * kNanosPerSecond;  // exactly 10000 minutes
  EXPECT_TRUE(Validate(a).ok());
  a.filter.to_unix_nanos += 1;
  auto s = Validate(a);
  EXPECT_EQ(s.code(), core::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("10001"), std::string::npos) << s.message();

  TopQuery t;
  t.dimension = GroupBy::kNone;
  EXPECT_FALSE(Validate(t).ok());
}

TEST(TraceCursor, RoundTrips) {
  core::TraceId id{};
  id[0] = 0xab;
  id[15] = 0x01;
  auto back = DecodeTraceCursor(EncodeTraceCursor(-5, id));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->first, -5);
  EXPECT_EQ(back->second, id);
  EXPECT_FALSE(DecodeTraceCursor("t1.5.zz").ok());
}

TEST(AttributesJson, RoundTripsEveryKind) {
  core::Attributes attrs = {
      {"s", std::string("hé \"quoted\"")},
      {"b", true},
      {"i", int64_t{-9007199254740993}},
      {"d", 0.1},
      {"whole_double", 2.0},
      {"arr", core::JsonText{"[1,\"x\",{\"k\":false}]"}},
  };
  std::string json = AttributesToJson(attrs);
  auto back = ParseAttributesJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, attrs) << json;
  EXPECT_FALSE(ParseAttributesJson("[1]").ok());
  EXPECT_FALSE(ParseAttributesJson("{").ok());
}

TEST(EventsAndLinksJson, RoundTrip) {
  core::SpanEvent e{123, "gen_ai.choice", {{"index", int64_t{0}}}};
  auto events = ParseEventsJson(EventsToJson({e}));
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0], e);
  core::SpanLink l;
  l.trace_id[3] = 9;
  l.span_id[7] = 1;
  l.attributes = {{"k", std::string("v")}};
  auto links = ParseLinksJson(LinksToJson({l}));
  ASSERT_TRUE(links.ok());
  ASSERT_EQ(links->size(), 1u);
  EXPECT_EQ((*links)[0], l);
  EXPECT_FALSE(ParseEventsJson("{}").ok());
}

}  // namespace
}  // namespace llmscope::storage
