#include "redact/redactor.h"

#include <gtest/gtest.h>

namespace llmscope::redact {
namespace {

std::string Apply(const Redactor& r, std::string text, int* n = nullptr) {
  int k = r.Redact(text);
  if (n != nullptr) *n = k;
  return text;
}

std::unique_ptr<Redactor> Builtin() {
  auto r = Redactor::Create({});
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

TEST(RedactorTest, Emails) {
  auto r = Builtin();
  int n = 0;
  EXPECT_EQ(Apply(*r, "write to jane.doe+llm@example.co.uk, or bob@corp.io.", &n),
            "write to [REDACTED:email], or [REDACTED:email].");
  EXPECT_EQ(n, 2);
  EXPECT_EQ(Apply(*r, "not an address: a@b, @handle, x@y.1"),
            "not an address: a@b, @handle, x@y.1");
}

TEST(RedactorTest, ApiKeysAndBearerTokens) {
  auto r = Builtin();
  EXPECT_EQ(Apply(*r, "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 ok"),
            "key [REDACTED:api_key] ok");
  EXPECT_EQ(Apply(*r, "sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA-BBBB"), "[REDACTED:api_key]");
  EXPECT_EQ(Apply(*r, "aws AKIAIOSFODNN7EXAMPLE."), "aws [REDACTED:api_key].");
  EXPECT_EQ(Apply(*r, "ghp_" + std::string(36, 'a')), "[REDACTED:api_key]");
  EXPECT_EQ(Apply(*r, "AIza" + std::string(35, 'x') + " end"), "[REDACTED:api_key] end");
  EXPECT_EQ(Apply(*r, "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOjF9.sig"),
            "Authorization: Bearer [REDACTED:bearer]");
  // Too short, or inside a word: left alone.
  EXPECT_EQ(Apply(*r, "task-sk-12 and risk-assessment"), "task-sk-12 and risk-assessment");
  EXPECT_EQ(Apply(*r, "disk-0123456789012345678901234"), "disk-0123456789012345678901234");
}

TEST(RedactorTest, CardNumbersNeedTheLuhnCheck) {
  auto r = Builtin();
  EXPECT_EQ(Apply(*r, "card 4111 1111 1111 1111 exp 12/29"),
            "card [REDACTED:card_number] exp 12/29");
  EXPECT_EQ(Apply(*r, "4111-1111-1111-1111"), "[REDACTED:card_number]");
  EXPECT_EQ(Apply(*r, "5500005555555559"), "[REDACTED:card_number]");
  // 16 digits failing Luhn (an order number), and a Unix timestamp in ms: kept.
  EXPECT_EQ(Apply(*r, "order 4111111111111112 at 1718000000000"),
            "order 4111111111111112 at 1718000000000");
}

TEST(RedactorTest, SsnAndOverlapsAndUserPatterns) {
  auto r = Redactor::Create({.builtin = true, .patterns = {{"ticket", "TICKET-[0-9]+"}}});
  ASSERT_TRUE(r.ok());
  std::vector<std::string_view> kinds;
  std::string t = "ssn 123-45-6789, TICKET-42 by ops@example.com";
  EXPECT_EQ((*r)->Redact(t, &kinds), 3);
  EXPECT_EQ(t, "ssn [REDACTED:us_ssn], [REDACTED:ticket] by [REDACTED:email]");
  EXPECT_EQ(kinds, (std::vector<std::string_view>{"us_ssn", "ticket", "email"}));

  auto only_user = Redactor::Create({.builtin = false, .patterns = {{"name", "Alice"}}});
  ASSERT_TRUE(only_user.ok());
  EXPECT_EQ(Apply(**only_user, "Alice <alice@example.com>"), "[REDACTED:name] <alice@example.com>");
}

TEST(RedactorTest, BadPatternsAreNamed) {
  auto bad = Redactor::Create({.builtin = true, .patterns = {{"x", "(unclosed"}}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("redaction pattern x: '(unclosed'"), std::string::npos);
  auto bad_name = Redactor::Create({.builtin = true, .patterns = {{"Has Space", "a"}}});
  ASSERT_FALSE(bad_name.ok());
  EXPECT_NE(bad_name.status().message().find("'Has Space'"), std::string::npos);
}

TEST(RedactorTest, NothingToRedactLeavesTextUntouched) {
  auto r = Builtin();
  const std::string text = "The capital of France is Paris; 42 is the answer; v1.2.3.";
  int n = -1;
  EXPECT_EQ(Apply(*r, text, &n), text);
  EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace llmscope::redact
