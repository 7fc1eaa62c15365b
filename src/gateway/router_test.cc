#include "gateway/router.h"

#include <gtest/gtest.h>

#include "gateway/gateway.h"

namespace llmscope::gateway {
namespace {

Upstream Up(std::string name) {
  Upstream u;
  u.name = std::move(name);
  return u;
}

TEST(GlobTest, Matches) {
  EXPECT_TRUE(GlobMatch("gpt-*", "gpt-4o"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("claude-?-*", "claude-3-opus"));
  EXPECT_FALSE(GlobMatch("claude-?-*", "claude-sonnet-4"));
  EXPECT_TRUE(GlobMatch("*mini*", "gpt-4o-mini-2024"));
  EXPECT_FALSE(GlobMatch("gpt-4o", "gpt-4o-mini"));
}

TEST(RouterTest, ExactWinsOverPrefixAndGlob) {
  std::vector<Route> routes = {{MatchKind::kGlob, "gpt-*", "openai", false},
                               {MatchKind::kPrefix, "sim/", "sim", false},
                               {MatchKind::kExact, "gpt-4o-mini", "local", false}};
  auto r = Router::Create({Up("openai"), Up("sim"), Up("local")}, routes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->Resolve("gpt-4o-mini")->upstream->name, "local");
  EXPECT_EQ(r->Resolve("gpt-4o")->upstream->name, "openai");
  EXPECT_EQ(r->Resolve("sim/anything")->upstream->name, "sim");
  EXPECT_FALSE(r->Resolve("claude-3-opus"));
  EXPECT_EQ(r->Describe(), "gpt-* -> openai, sim/* -> sim, gpt-4o-mini -> local");
}

TEST(RouterTest, StripPrefixRewritesUpstreamModel) {
  auto r = Router::Create({Up("or")}, {{MatchKind::kPrefix, "openrouter/", "or", true}});
  ASSERT_TRUE(r.ok());
  auto m = r->Resolve("openrouter/meta-llama/llama-3-70b");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->upstream_model, "meta-llama/llama-3-70b");
}

TEST(RouterTest, RejectsEveryProblem) {
  auto r = Router::Create({Up("a"), Up("a")}, {{MatchKind::kExact, "", "a", false},
                                               {MatchKind::kExact, "m", "missing", false}});
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_NE(m.find("'a' is defined twice"), std::string::npos) << m;
  EXPECT_NE(m.find("empty model pattern"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown upstream 'missing'"), std::string::npos) << m;
}

TEST(TraceparentTest, ParsesValidAndRejectsInvalid) {
  core::TraceId t{};
  core::SpanId s{};
  uint8_t f = 0;
  ASSERT_TRUE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, s, f));
  EXPECT_EQ(core::ToHex(t), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(core::ToHex(s), "00f067aa0ba902b7");
  EXPECT_EQ(f, 1);
  EXPECT_FALSE(
      ParseTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01", t, s, f));
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", t, s, f));
  EXPECT_FALSE(
      ParseTraceparent("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", t, s, f));
  EXPECT_FALSE(ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", t, s, f));
  EXPECT_FALSE(
      ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", t, s, f));
  EXPECT_TRUE(
      ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", t, s, f));
}

}  // namespace
}  // namespace llmscope::gateway
