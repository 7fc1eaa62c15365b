#include "pipeline/call_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace llmscope::pipeline {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

core::LlmCall FullCall() {
  core::LlmCall c;
  c.request_id = "req-123";
  c.trace_id = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
  c.span_id = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
  c.parent_span_id = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  c.start_unix_nanos = 1'700'000'000'123'456'789;
  c.first_byte_nanos = 200'000'000;
  c.first_content_nanos = 250'000'000;
  c.end_nanos = 1'500'000'000;
  c.overhead_nanos = 12'345;
  c.endpoint = core::Endpoint::kChatCompletions;
  c.stream = true;
  c.requested_model = "gpt-4o";
  c.response_model = "gpt-4o-2024-08-06";
  c.provider = "openai-main";
  c.provider_kind = "openai";
  c.http_status = 200;
  c.max_tokens = 256;
  c.temperature = 0.7;
  c.top_p = 1.0;
  c.finish_reasons = {"stop"};
  c.usage = {.input = 1200, .output = 101, .cache_read = 1000, .cache_write = 0, .reasoning = 20};
  c.usage_source = core::UsageSource::kProvider;
  c.cost_usd = 0.00265;
  c.user = "alice";
  c.session = "sess-1";
  c.tags = {{"team", "search"}, {"env", "prod"}};
  c.request_body = R"({"model":"gpt-4o"})";
  c.response_text = "Hello!";
  return c;
}

boost::json::object Parse(const std::string& line) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(line, ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << line;
  return v.is_object() ? v.as_object() : boost::json::object{};
}

TEST(FormatCallJsonTest, GoldenFullRecord) {
  EXPECT_EQ(FormatCallJson(FullCall(), false),
            R"({"ts":"2023-11-14T22:13:20.123456Z","request_id":"req-123",)"
            R"("trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7",)"
            R"("parent_span_id":"0102030405060708","endpoint":"chat_completions",)"
            R"("provider":"openai-main","provider_kind":"openai","model":"gpt-4o",)"
            R"("response_model":"gpt-4o-2024-08-06","stream":true,"status":200,)"
            R"("client_cancelled":false,"duration_s":1.5,"ttft_s":0.25,"tpot_s":0.0125,)"
            R"("first_byte_s":0.2,"overhead_us":12.345,"max_tokens":256,"temperature":0.7,)"
            R"("top_p":1,"finish_reasons":["stop"],)"
            R"("usage":{"input":1200,"output":101,"cache_read":1000,"cache_write":0,)"
            R"("reasoning":20},"usage_source":"provider","cost_usd":0.00265,"unpriced":false,)"
            R"("user":"alice","session":"sess-1","tags":{"team":"search","env":"prod"}})");
}

TEST(FormatCallJsonTest, GoldenFailedUnpricedRecordOmitsAbsentFields) {
  core::LlmCall c;
  c.request_id = "r";
  c.start_unix_nanos = 0;
  c.end_nanos = 30'000'000'000;
  c.endpoint = core::Endpoint::kMessages;
  c.requested_model = "claude-x";
  c.provider = "anthropic";
  c.provider_kind = "anthropic";
  c.http_status = 0;
  c.error = core::ErrorClass::kUpstreamUnreachable;
  c.error_message = "connect: connection refused";
  c.unpriced = true;
  EXPECT_EQ(FormatCallJson(c, true),
            R"({"ts":"1970-01-01T00:00:00.000000Z","request_id":"r",)"
            R"("trace_id":"00000000000000000000000000000000","span_id":"0000000000000000",)"
            R"("endpoint":"messages","provider":"anthropic","provider_kind":"anthropic",)"
            R"("model":"claude-x","response_model":"","stream":false,"status":0,)"
            R"("error_type":"upstream_unreachable",)"
            R"("error_message":"connect: connection refused","client_cancelled":false,)"
            R"("duration_s":30,"ttft_s":null,"tpot_s":null,"first_byte_s":null,)"
            R"("overhead_us":0,"finish_reasons":[],)"
            R"("usage":{"input":0,"output":0,"cache_read":0,"cache_write":0,"reasoning":0},)"
            R"("usage_source":"missing","cost_usd":null,"unpriced":true,"tags":{},)"
            R"("request_body":"","response_text":""})");
}

TEST(FormatCallJsonTest, ContentOnlyWhenEnabled) {
  const std::string without = FormatCallJson(FullCall(), false);
  EXPECT_THAT(without, Not(HasSubstr("request_body")));
  EXPECT_THAT(without, Not(HasSubstr("response_text")));
  const std::string with = FormatCallJson(FullCall(), true);
  EXPECT_THAT(with, HasSubstr(R"("request_body":"{\"model\":\"gpt-4o\"}")"));
  EXPECT_THAT(with, HasSubstr(R"("response_text":"Hello!"})"));
  boost::json::object o = Parse(with);
  EXPECT_EQ(o["request_body"].as_string(), R"({"model":"gpt-4o"})");
}

TEST(FormatCallJsonTest, EscapesHostileStrings) {
  core::LlmCall c;
  c.request_id = std::string("q\"b\\s/\n\r\t\b\f\x01\x1f\x7f", 14) + std::string(1, '\0') + "z";
  EXPECT_THAT(FormatCallJson(c, false), HasSubstr(R"("request_id":"q\"b\\s/\n\r\t\b\f\u0001\u001f)"
                                                  "\x7f"
                                                  R"(\u0000z")"));
  // Valid multi-byte UTF-8 passes through unchanged.
  c.user = "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80";
  EXPECT_THAT(FormatCallJson(c, false),
              HasSubstr("\"user\":\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\""));

  // Invalid UTF-8 becomes U+FFFD, one per maximal ill-formed subpart.
  const std::string kFffd = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a\xff"
       "b",
       "a" + kFffd + "b"},  // never valid
      {"a\x80"
       "b",
       "a" + kFffd + "b"},  // stray continuation
      {"a\xe2\x82"
       "b",
       "a" + kFffd + "b"},                                  // truncated 3-byte
      {"a\xe2\x82", "a" + kFffd},                           // truncated at the end
      {"\xc0\xaf", kFffd + kFffd},                          // overlong '/'
      {"\xed\xa0\x80", kFffd + kFffd + kFffd},              // UTF-16 surrogate
      {"\xf4\x90\x80\x80", kFffd + kFffd + kFffd + kFffd},  // above U+10FFFF
      {"\xf0\x9f\x98", kFffd},                              // truncated emoji
  };
  for (const auto& [in, want] : cases) {
    c.session = in;
    EXPECT_THAT(FormatCallJson(c, false), HasSubstr("\"session\":\"" + want + "\""))
        << "input bytes: " << in.size();
  }
  // Hostile keys and values in tags and arrays, and the result still parses.
  c.tags = {{"k\"ey", "v\nal"}, {"k\"ey", "duplicate dropped"}, {"\xff", "x"}};
  c.finish_reasons = {"st\"op", "\x01"};
  const std::string line = FormatCallJson(c, true);
  EXPECT_THAT(line, HasSubstr(R"("tags":{"k\"ey":"v\nal",")" + kFffd + R"(":"x"})"));
  EXPECT_EQ(line.find('\n'), std::string::npos);
  boost::json::object o = Parse(line);
  EXPECT_EQ(o["request_id"].as_string(), c.request_id);
  EXPECT_EQ(o["finish_reasons"].as_array()[0].as_string(), "st\"op");
}

TEST(FormatCallJsonTest, NumbersRoundTripAndNonFiniteBecomeNull) {
  core::LlmCall c;
  c.temperature = 0.1;
  c.top_p = std::numeric_limits<double>::quiet_NaN();
  c.cost_usd = 1.0 / 3.0;
  c.start_unix_nanos = -1;  // before the epoch: floors to the previous microsecond
  const std::string line = FormatCallJson(c, false);
  EXPECT_THAT(line, HasSubstr(R"("ts":"1969-12-31T23:59:59.999999Z")"));
  EXPECT_THAT(line, HasSubstr(R"("temperature":0.1,)"));
  EXPECT_THAT(line, HasSubstr(R"("top_p":null,)"));
  boost::json::object o = Parse(line);
  EXPECT_EQ(o["cost_usd"].as_double(), 1.0 / 3.0);  // exact, not approximately
}

class CallLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "call_log_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".jsonl";
    ::unlink(path_.c_str());
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::vector<std::string> Lines() const {
    std::ifstream in(path_);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    EXPECT_TRUE(text.empty() || text.back() == '\n') << "every line ends with a newline";
    std::vector<std::string> lines;
    std::string line;
    std::istringstream is(text);
    while (std::getline(is, line)) lines.push_back(line);
    return lines;
  }

  std::string path_;
};

TEST_F(CallLogFileTest, OneLinePerCallAppendedAcrossOpens) {
  {
    auto log = JsonLinesCallLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    std::vector<core::LlmCall> batch(3, FullCall());
    for (size_t i = 0; i < batch.size(); ++i) batch[i].request_id = "a" + std::to_string(i);
    (*log)->Consume(batch);
    (*log)->Consume({});
    (*log)->Consume({FullCall()});
    (*log)->Flush();
    EXPECT_EQ((*log)->lines_written(), 4u);
    EXPECT_EQ((*log)->failed_writes(), 0u);
  }
  {
    auto log = JsonLinesCallLog::Open(path_, {.include_content = true});
    ASSERT_TRUE(log.ok());
    (*log)->Consume({FullCall()});
  }
  std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], FormatCallJson(
                          [] {
                            core::LlmCall c = FullCall();
                            c.request_id = "a0";
                            return c;
                          }(),
                          false));
  EXPECT_EQ(lines[4], FormatCallJson(FullCall(), true));
  for (const std::string& line : lines) Parse(line);
}

TEST(CallLogOpenTest, ErrorsNameThePath) {
  auto log = JsonLinesCallLog::Open("/nonexistent-dir-llmscope/calls.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), core::StatusCode::kUnavailable);
  EXPECT_THAT(log.status().message(), HasSubstr("/nonexistent-dir-llmscope/calls.jsonl"));
  EXPECT_FALSE(JsonLinesCallLog::Open("").ok());
}

TEST(CallLogOpenTest, StandardStreamsNeedNoFile) {
  EXPECT_TRUE(JsonLinesCallLog::Open("stdout").ok());
  EXPECT_TRUE(JsonLinesCallLog::Open("stderr").ok());
}

}  // namespace
}  // namespace llmscope::pipeline
