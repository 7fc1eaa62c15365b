#include "pipeline/record_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace llmscope::pipeline {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

core::LlmCall FullCall(int i) {
  core::LlmCall c;
  c.request_id = "req-" + std::to_string(i);
  for (size_t k = 0; k < c.trace_id.size(); ++k) c.trace_id[k] = static_cast<uint8_t>(k + 1 + i);
  for (size_t k = 0; k < c.span_id.size(); ++k) c.span_id[k] = static_cast<uint8_t>(0xA0 + k);
  for (size_t k = 0; k < c.parent_span_id.size(); ++k) c.parent_span_id[k] = 0xFF;
  c.start_unix_nanos = 1'700'000'000'123'456'789 + i;
  c.first_byte_nanos = 12'000'000;
  c.first_content_nanos = 15'000'000;
  c.end_nanos = 900'000'000;
  c.overhead_nanos = 42'000;
  c.endpoint = core::Endpoint::kMessages;
  c.stream = true;
  c.requested_model = "claude-x";
  c.response_model = "claude-x-2024-10-22";
  c.provider = "anthropic-main";
  c.provider_kind = "anthropic";
  c.http_status = 529;
  c.error = core::ErrorClass::kCancelled;
  c.error_message = "client went away \xE2\x9C\x93 with \0 a nul";
  c.error_message.push_back('\0');
  c.client_cancelled = true;
  c.max_tokens = 4096;
  c.temperature = 0.7;
  c.top_p = -0.0;
  c.finish_reasons = {"stop", "", "length"};
  c.usage = {.input = 1234, .output = 567, .cache_read = 100, .cache_write = 20, .reasoning = 7};
  c.usage_source = core::UsageSource::kEstimated;
  c.cost_usd = 0.000123456789;
  c.unpriced = true;
  c.user = "user-1";
  c.session = "session-9";
  c.tags = {{"team", "search"}, {"team", "dup"}, {"", ""}};
  c.request_body = std::string(1000, 'x') + "{\"messages\":[]}";
  c.response_text = "hello";
  return c;
}

core::Attributes AllKinds(std::string prefix) {
  return {
      {prefix + ".s", std::string("text")},
      {prefix + ".b", true},
      {prefix + ".f", false},
      {prefix + ".i", int64_t{-9'000'000'000}},
      {prefix + ".max", std::numeric_limits<int64_t>::max()},
      {prefix + ".min", std::numeric_limits<int64_t>::min()},
      {prefix + ".d", 3.25},
      {prefix + ".inf", std::numeric_limits<double>::infinity()},
      {prefix + ".j", core::JsonText{"[1,{\"a\":2}]"}},
  };
}

core::Span FullSpan(int i) {
  core::Span s;
  for (size_t k = 0; k < s.trace_id.size(); ++k) s.trace_id[k] = static_cast<uint8_t>(k * 3 + i);
  s.span_id = {1, 2, 3, 4, 5, 6, 7, static_cast<uint8_t>(i)};
  s.parent_span_id = {9, 9, 9, 9, 9, 9, 9, 9};
  s.name = "chat claude-x";
  s.kind = core::SpanKind::kConsumer;
  s.service = "checkout";
  s.scope = "opentelemetry.instrumentation.openai";
  s.start_unix_nanos = 1'700'000'000'000'000'000;
  s.end_unix_nanos = 1'700'000'001'000'000'000;
  s.status = core::SpanStatus::kError;
  s.status_message = "boom";
  s.resource_attributes = AllKinds("res");
  s.attributes = AllKinds("attr");
  s.events = {{.time_unix_nanos = 5, .name = "retry", .attributes = AllKinds("ev")},
              {.time_unix_nanos = -1, .name = "", .attributes = {}}};
  s.links = {{.trace_id = s.trace_id,
              .span_id = {8, 7, 6, 5, 4, 3, 2, 1},
              .attributes = AllKinds("link")}};
  return s;
}

TEST(RecordCodecTest, CallsRoundTripEveryField) {
  std::vector<core::LlmCall> calls = {FullCall(1), FullCall(2), core::LlmCall{}};
  calls[1].max_tokens.reset();
  calls[1].temperature.reset();
  calls[1].cost_usd.reset();
  calls[1].start_unix_nanos = std::numeric_limits<int64_t>::min();
  calls[1].end_nanos = std::numeric_limits<int64_t>::max();
  calls[1].http_status = std::numeric_limits<int>::min();
  const std::string bytes = EncodeCalls(calls);
  ASSERT_EQ(PeekRecordKind(bytes).value(), RecordKind::kCalls);
  core::Result<std::vector<core::LlmCall>> decoded = DecodeCalls(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, calls);
  // -0.0 == 0.0, so check the sign bit survived too.
  EXPECT_TRUE(std::signbit(*(*decoded)[0].top_p));
}

TEST(RecordCodecTest, SpansRoundTripEveryAttributeKindEventAndLink) {
  std::vector<core::Span> spans = {FullSpan(1), FullSpan(2), core::Span{}};
  const std::string bytes = EncodeSpans(spans);
  ASSERT_EQ(PeekRecordKind(bytes).value(), RecordKind::kSpans);
  core::Result<std::vector<core::Span>> decoded = DecodeSpans(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, spans);
}

TEST(RecordCodecTest, EmptyBatchesRoundTrip) {
  EXPECT_TRUE(DecodeCalls(EncodeCalls({})).value().empty());
  EXPECT_TRUE(DecodeSpans(EncodeSpans({})).value().empty());
}

// The decoder's count checks assume these minimum sizes (kMin*Bytes in record_codec.cc): a
// default record is the smallest encoding. Three header bytes precede it.
TEST(RecordCodecTest, DefaultRecordsHaveTheAssumedMinimumSize) {
  EXPECT_EQ(EncodeCalls(std::vector<core::LlmCall>(1)).size() - 3, 65u);
  EXPECT_EQ(EncodeSpans(std::vector<core::Span>(1)).size() - 3, 44u);
}

TEST(RecordCodecTest, RejectsWrongVersionKindAndTrailingBytes) {
  std::string calls = EncodeCalls(std::vector<core::LlmCall>{FullCall(1)});
  std::string v2 = calls;
  v2[0] = 2;
  EXPECT_THAT(DecodeCalls(v2).status().message(), HasSubstr("unsupported version 2"));
  EXPECT_FALSE(PeekRecordKind(v2).ok());
  EXPECT_THAT(DecodeSpans(calls).status().message(), HasSubstr("is not spans"));
  EXPECT_THAT(DecodeCalls(calls + "x").status().message(), HasSubstr("1 trailing bytes"));
  EXPECT_FALSE(PeekRecordKind("").ok());
}

TEST(RecordCodecTest, RejectsCountsLargerThanTheInput) {
  // version, kind, count = 2^63 as a varint.
  std::string huge = {1, 1};
  for (int i = 0; i < 9; ++i) huge.push_back(static_cast<char>(0xFF));
  huge.push_back(0x00);
  core::Status s = DecodeCalls(huge).status();
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), StartsWith("record codec: "));
  EXPECT_THAT(s.message(), HasSubstr("count"));
}

TEST(RecordCodecTest, RejectsBadEnumsAndBools) {
  std::vector<core::LlmCall> one = {core::LlmCall{}};
  std::string bytes = EncodeCalls(one);
  // Offsets in a default call: header 3, request_id 1, ids 32, five times 5, endpoint.
  const size_t endpoint = 3 + 1 + 32 + 5;
  std::string bad = bytes;
  bad[endpoint] = 6;
  EXPECT_THAT(DecodeCalls(bad).status().message(),
              HasSubstr("invalid value 6 reading endpoint at offset " + std::to_string(endpoint)));
  bad = bytes;
  bad[endpoint + 1] = 2;  // stream
  EXPECT_THAT(DecodeCalls(bad).status().message(), HasSubstr("invalid bool 2 reading stream"));
}

// Every truncation and every single-bit flip of valid encodings must be rejected or decode
// to something, never crash or read out of bounds (the ASan build checks the latter).
TEST(RecordCodecTest, TruncationsAndBitFlipsNeverCrash) {
  std::vector<core::LlmCall> calls = {FullCall(1), FullCall(2)};
  calls[0].request_body = "short";  // keep the inputs small so every bit can be flipped
  calls[1].request_body.clear();
  const std::string call_bytes = EncodeCalls(calls);
  const std::string span_bytes = EncodeSpans(std::vector<core::Span>{FullSpan(1)});
  size_t rejected = 0;
  size_t decoded = 0;
  auto check = [&](const std::string& input) {
    core::Result<std::vector<core::LlmCall>> c = DecodeCalls(input);
    core::Result<std::vector<core::Span>> s = DecodeSpans(input);
    for (const core::Status& st : {c.status(), s.status()}) {
      if (!st.ok()) {
        EXPECT_EQ(st.code(), core::StatusCode::kInvalidArgument);
        EXPECT_THAT(st.message(), StartsWith("record codec: "));
      }
    }
    (c.ok() || s.ok()) ? ++decoded : ++rejected;
  };
  for (const std::string* valid : {&call_bytes, &span_bytes}) {
    for (size_t n = 0; n < valid->size(); ++n) {
      core::Result<std::vector<core::LlmCall>> c = DecodeCalls(valid->substr(0, n));
      core::Result<std::vector<core::Span>> s = DecodeSpans(valid->substr(0, n));
      EXPECT_FALSE(c.ok() || s.ok()) << "a truncation to " << n << " bytes decoded";
    }
    for (size_t i = 0; i < valid->size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = *valid;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        check(flipped);
      }
    }
  }
  // Random multi-byte damage, bounded and reproducible.
  std::mt19937 rng(42);
  for (int round = 0; round < 3000; ++round) {
    std::string damaged = round % 2 == 0 ? call_bytes : span_bytes;
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      damaged[rng() % damaged.size()] = static_cast<char>(rng());
    }
    if (rng() % 4 == 0) damaged.resize(rng() % damaged.size());
    check(damaged);
  }
  EXPECT_GT(rejected, 0u);
  EXPECT_GT(decoded, 0u);  // flips inside string bytes still decode: the codec has no CRC
}

}  // namespace
}  // namespace llmscope::pipeline
