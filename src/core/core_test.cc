#include <gtest/gtest.h>

#include <random>
#include <string>

#include "core/ascii.h"
#include "core/crc32c.h"
#include "core/llm_call.h"
#include "core/status.h"

namespace llmscope::core {
namespace {

TEST(AsciiTest, FoldsOnlyAsciiLetters) {
  EXPECT_EQ(AsciiLower("Content-Type: Application/JSON; Q=0.9"),
            "content-type: application/json; q=0.9");
  EXPECT_EQ(AsciiLower("\xC3\x89T\xC3\x89"), "\xC3\x89t\xC3\x89");  // UTF-8 bytes kept
  EXPECT_EQ(AsciiLower("@[`{"), "@[`{");                            // around A-Z, a-z
  EXPECT_TRUE(AsciiEqualsIgnoreCase("LLM", "llm"));
  EXPECT_TRUE(AsciiEqualsIgnoreCase("", ""));
  EXPECT_FALSE(AsciiEqualsIgnoreCase("LLM", "llm "));
  EXPECT_FALSE(AsciiEqualsIgnoreCase("@", "`"));  // 0x40 and 0x60 differ by the case bit only
  static_assert(AsciiEqualsIgnoreCase("Text/Plain", "text/plain"));
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = InvalidArgument("field 'model' is missing");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "INVALID_ARGUMENT: field 'model' is missing");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> v = 42;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  Result<int> e = NotFound("no route");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kNotFound);
}

TEST(LlmCallTest, HexIds) {
  TraceId t{};
  EXPECT_FALSE(IsValid(t));
  t[0] = 0x4b;
  t[15] = 0xf7;
  EXPECT_TRUE(IsValid(t));
  EXPECT_EQ(ToHex(t), "4b0000000000000000000000000000f7");
}

TEST(LlmCallTest, DerivedTimings) {
  LlmCall c;
  EXPECT_FALSE(c.DurationSeconds());
  EXPECT_FALSE(c.TimeToFirstTokenSeconds());
  c.first_content_nanos = 200'000'000;
  c.end_nanos = 1'200'000'000;
  c.usage.output = 11;
  EXPECT_DOUBLE_EQ(*c.DurationSeconds(), 1.2);
  EXPECT_DOUBLE_EQ(*c.TimeToFirstTokenSeconds(), 0.2);
  EXPECT_DOUBLE_EQ(*c.TimePerOutputTokenSeconds(), 0.1);  // 1 s over 10 gaps
  c.usage.output = 1;
  EXPECT_FALSE(c.TimePerOutputTokenSeconds());
}

}  // namespace
}  // namespace llmscope::core

#include "core/json_string.h"

namespace llmscope::core {
namespace {

TEST(JsonStringTest, EscapesAndRepairs) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("q\"b\\n\nt\t\x01"), "\"q\\\"b\\\\n\\nt\\t\\u0001\"");
  EXPECT_EQ(JsonString("caf\xC3\xA9 \xE2\x82\xAC"), "\"caf\xC3\xA9 \xE2\x82\xAC\"");
  // Invalid UTF-8: a stray byte, a truncated sequence, an overlong form, a surrogate.
  EXPECT_EQ(JsonString("a\xff"
                       "b"),
            "\"a\xEF\xBF\xBD"
            "b\"");
  EXPECT_EQ(JsonString("\xE2\x82"), "\"\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonString("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");
  EXPECT_EQ(JsonString("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace llmscope::core

namespace llmscope::core {
namespace {

TEST(Crc32cTest, KnownVectorsAndBothImplementationsAgree) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(""), 0u);
  std::mt19937 rng(7);
  std::string data(1000, '\0');
  for (char& ch : data) ch = static_cast<char>(rng());
  for (size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 1000u}) {
    EXPECT_EQ(Crc32cExtend(0, data.data(), n), internal::Crc32cExtendPortable(0, data.data(), n))
        << n;
  }
  // Extending in pieces equals one pass.
  const uint32_t split = Crc32cExtend(Crc32cExtend(0, data.data(), 333), data.data() + 333, 667);
  EXPECT_EQ(split, Crc32cExtend(0, data.data(), 1000));
}

TEST(GenAiProviderNameTest, WellKnownValuesElseTheKind) {
  EXPECT_EQ(GenAiProviderName("openai"), "openai");
  EXPECT_EQ(GenAiProviderName("anthropic"), "anthropic");
  EXPECT_EQ(GenAiProviderName("azure_openai"), "azure.ai.openai");
  EXPECT_EQ(GenAiProviderName("bedrock"), "aws.bedrock");
  EXPECT_EQ(GenAiProviderName("openai_compatible"), "openai_compatible");
  EXPECT_EQ(GenAiProviderName("simulator"), "simulator");
  EXPECT_EQ(GenAiProviderName(""), "unknown");
}

}  // namespace
}  // namespace llmscope::core
