#include "notify/alert.h"

#include <gtest/gtest.h>

namespace llmscope::notify {
namespace {

using namespace std::chrono_literals;

TEST(FingerprintTest, AgreesWithPrometheus) {
  // Values from prometheus/common's signature tests (same FNV-1a scheme).
  EXPECT_EQ(Fingerprint({}), 14695981039346656037ULL);
  EXPECT_EQ(Fingerprint({{"name", "garland, briggs"}, {"fear", "love is not enough"}}),
            5799056148416392346ULL);
  EXPECT_EQ(FingerprintHex(5799056148416392346ULL), "507a62d79ee76c9a");
  EXPECT_EQ(FingerprintHex(1), "0000000000000001");
  EXPECT_NE(Fingerprint({{"a", "b"}}), Fingerprint({{"a", "c"}}));
  // The separator keeps "ab"+"c" apart from "a"+"bc".
  EXPECT_NE(Fingerprint({{"ab", "c"}}), Fingerprint({{"a", "bc"}}));
}

TEST(LabelSetStringTest, SortedQuotedAndEscaped) {
  EXPECT_EQ(LabelSetString({}), "{}");
  EXPECT_EQ(LabelSetString({{"b", "2"}, {"a", "x\"y"}}), R"({a="x\"y", b="2"})");
}

TEST(MatcherTest, ParsesEveryOperatorAndQuoting) {
  struct Case {
    std::string text;
    Matcher::Type type;
    std::string name, value;
  };
  const Case cases[] = {
      {R"(severity="critical")", Matcher::Type::kEqual, "severity", "critical"},
      {R"(team=~"a|b")", Matcher::Type::kRegex, "team", "a|b"},
      {"x!=y", Matcher::Type::kNotEqual, "x", "y"},
      {R"( x !~ "y.*" )", Matcher::Type::kNotRegex, "x", "y.*"},
      {R"(msg="say \"hi\"\\")", Matcher::Type::kEqual, "msg", "say \"hi\"\\"},
      {"empty=", Matcher::Type::kEqual, "empty", ""},
      {"bare = some value ", Matcher::Type::kEqual, "bare", "some value"},
  };
  for (const Case& c : cases) {
    auto m = ParseMatcher(c.text);
    ASSERT_TRUE(m.ok()) << c.text << ": " << m.status().ToString();
    EXPECT_EQ(m->type(), c.type) << c.text;
    EXPECT_EQ(m->name(), c.name) << c.text;
    EXPECT_EQ(m->value(), c.value) << c.text;
    // String() reads back as the same matcher.
    auto again = ParseMatcher(m->String());
    ASSERT_TRUE(again.ok()) << m->String();
    EXPECT_EQ(*again, *m);
  }
}

TEST(MatcherTest, RejectsMalformedText) {
  for (const char* bad : {"", "=x", "x", "x=~\"(\"", "x=\"open", "x=\"a\"b", "1x=y", "x=a\"b"}) {
    auto m = ParseMatcher(bad);
    EXPECT_FALSE(m.ok()) << bad;
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), core::StatusCode::kInvalidArgument);
      EXPECT_NE(m.status().message().find("matcher"), std::string::npos) << m.status().message();
    }
  }
}

TEST(MatcherTest, MatchesAnchoredRegexesAndAbsentLabels) {
  auto re = *ParseMatcher(R"(team=~"a|b")");
  EXPECT_TRUE(re.Matches({{"team", "a"}}));
  EXPECT_TRUE(re.Matches({{"team", "b"}}));
  EXPECT_FALSE(re.Matches({{"team", "ab"}}));  // anchored: the whole value must match
  EXPECT_FALSE(re.Matches({{"team", "xa"}}));
  EXPECT_FALSE(re.Matches({}));
  auto ne = *ParseMatcher("x!=y");
  EXPECT_TRUE(ne.Matches({}));  // absent is "", which is not "y"
  EXPECT_FALSE(ne.Matches({{"x", "y"}}));
  auto nre = *ParseMatcher(R"(env!~"prod.*")");
  EXPECT_FALSE(nre.Matches({{"env", "production"}}));
  EXPECT_TRUE(nre.Matches({{"env", "staging"}}));
  auto empty = *ParseMatcher(R"(x="")");
  EXPECT_TRUE(empty.Matches({}));
  EXPECT_TRUE(MatchesAll({}, {{"a", "b"}}));
  EXPECT_FALSE(MatchesAll({re, ne}, {{"team", "a"}, {"x", "y"}}));
  EXPECT_EQ(MatchersString({re, ne}), R"({team=~"a|b", x!="y"})");
}

TEST(DurationTest, PrometheusSyntax) {
  EXPECT_EQ(*ParseDuration("30s"), 30s);
  EXPECT_EQ(*ParseDuration("5m"), 5min);
  EXPECT_EQ(*ParseDuration("1h30m"), 90min);
  EXPECT_EQ(*ParseDuration("500ms"), 500ms);
  EXPECT_EQ(*ParseDuration("1d"), 24h);
  EXPECT_EQ(*ParseDuration("1w"), 7 * 24h);
  EXPECT_EQ(*ParseDuration("0"), 0s);
  EXPECT_EQ(*ParseDuration("0s"), 0s);
  for (const char* bad : {"", "5", "m", "5x", "1m1h", "1s1s", "-5s", "1.5h", "5 m"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << bad;
  }
  EXPECT_EQ(FormatDuration(90min), "1h30m");
  EXPECT_EQ(FormatDuration(500ms), "500ms");
  EXPECT_EQ(FormatDuration(0s), "0s");
  EXPECT_EQ(*ParseDuration(FormatDuration(4h + 5s)), 4h + 5s);
}

TEST(Rfc3339Test, FormatsLikeGo) {
  EXPECT_EQ(FormatRfc3339(0), "0001-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'000'000'000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'500'000'000), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(FormatRfc3339(1'700'000'000'000'000'001), "2023-11-14T22:13:20.000000001Z");
  EXPECT_EQ(FormatRfc3339(951'782'400'000'000'000), "2000-02-29T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(-1'000'000'000), "1969-12-31T23:59:59Z");
}

TEST(Rfc3339Test, ParsesZonesFractionsAndZeroTime) {
  EXPECT_EQ(*ParseRfc3339("2023-11-14T22:13:20Z"), 1'700'000'000'000'000'000);
  EXPECT_EQ(*ParseRfc3339("2023-11-14T22:13:20.5Z"), 1'700'000'000'500'000'000);
  EXPECT_EQ(*ParseRfc3339("2023-11-14T23:13:20+01:00"), 1'700'000'000'000'000'000);
  EXPECT_EQ(*ParseRfc3339("2023-11-14T21:13:20.123456789-01:00"), 1'700'000'000'123'456'789);
  EXPECT_EQ(*ParseRfc3339("0001-01-01T00:00:00Z"), 0);
  for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20Zjunk"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
  for (int64_t t : {int64_t{1'700'000'000'000'000'000}, int64_t{1'234'567'890'123'000'000}}) {
    EXPECT_EQ(*ParseRfc3339(FormatRfc3339(t)), t);
  }
}

}  // namespace
}  // namespace llmscope::notify
