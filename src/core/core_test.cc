#include <gtest/gtest.h>

#include "core/llm_call.h"
#include "core/status.h"

namespace llmscope::core {
namespace {

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
