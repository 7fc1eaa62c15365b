#include "stats/llm_metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "metrics/exposition.h"
#include "metrics/registry.h"

namespace llmscope::stats {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr int64_t kStart = 1'700'000'000'000'000'000;
constexpr int64_t kMs = 1'000'000;

core::TraceId Trace() {
  return {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
          0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
}
core::SpanId Span() { return {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}; }

// A: streamed OpenAI chat call, priced, traced.
core::LlmCall CallA() {
  core::LlmCall c;
  c.trace_id = Trace();
  c.span_id = Span();
  c.start_unix_nanos = kStart;
  c.first_content_nanos = 300 * kMs;
  c.end_nanos = 1300 * kMs;
  c.endpoint = core::Endpoint::kChatCompletions;
  c.stream = true;
  c.requested_model = "gpt-4o";
  c.response_model = "gpt-4o-2024-08-06";
  c.provider = "openai-main";
  c.provider_kind = "openai";
  c.http_status = 200;
  c.usage = {.input = 100, .output = 11, .cache_read = 40, .cache_write = 0, .reasoning = 5};
  c.usage_source = core::UsageSource::kProvider;
  c.cost_usd = 0.5;
  return c;
}

// B: the same route rate-limited: no content, no usage.
core::LlmCall CallB() {
  core::LlmCall c;
  c.start_unix_nanos = kStart;
  c.end_nanos = 50 * kMs;
  c.endpoint = core::Endpoint::kChatCompletions;
  c.stream = true;
  c.requested_model = "gpt-4o";
  c.provider = "openai-main";
  c.provider_kind = "openai";
  c.http_status = 429;
  c.error = core::ErrorClass::kRateLimit;
  c.usage_source = core::UsageSource::kMissing;
  return c;
}

// C: Anthropic upstream unreachable: no HTTP status, unpriced, estimated usage.
core::LlmCall CallC() {
  core::LlmCall c;
  c.start_unix_nanos = kStart;
  c.end_nanos = 2000 * kMs;
  c.endpoint = core::Endpoint::kMessages;
  c.requested_model = "claude-x";
  c.provider = "anthropic-main";
  c.provider_kind = "anthropic";
  c.http_status = 0;
  c.error = core::ErrorClass::kUpstreamUnreachable;
  c.usage = {.input = 7};
  c.usage_source = core::UsageSource::kEstimated;
  c.unpriced = true;
  return c;
}

// D: a non-streamed OpenAI call without a trace.
core::LlmCall CallD() {
  core::LlmCall c;
  c.start_unix_nanos = kStart;
  c.first_content_nanos = 500 * kMs;
  c.end_nanos = 500 * kMs;
  c.endpoint = core::Endpoint::kChatCompletions;
  c.requested_model = "gpt-4o";
  c.response_model = "gpt-4o-2024-08-06";
  c.provider = "openai-main";
  c.provider_kind = "openai";
  c.http_status = 200;
  c.usage = {.input = 10, .output = 2};
  c.usage_source = core::UsageSource::kProvider;
  c.cost_usd = 0.25;
  return c;
}

using Labels = std::vector<metrics::Label>;

// Every sample of a fresh Collect, keyed "name+suffix{l1=v1,l2=v2}".
std::map<std::string, double> Samples(const metrics::Registry& r) {
  std::vector<metrics::FamilySnapshot> all;
  r.Collect(all);
  std::map<std::string, double> out;
  for (const metrics::FamilySnapshot& f : all) {
    for (const metrics::Sample& s : f.samples) {
      std::string key = f.name + s.suffix + "{";
      for (size_t i = 0; i < s.labels.size(); ++i) {
        if (i > 0) key += ",";
        key += s.labels[i].name + "=" + s.labels[i].value;
      }
      out[key + "}"] = s.value;
    }
  }
  return out;
}

class LlmMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto m = LlmMetrics::Create(registry_, {});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    metrics_ = std::move(m).value();
    metrics_->Consume({CallA(), CallB(), CallC(), CallD()});
    samples_ = Samples(registry_);
  }

  // The sample's value; fails the test (and returns -1) when absent.
  double At(const std::string& key) {
    auto it = samples_.find(key);
    EXPECT_NE(it, samples_.end()) << "no sample " << key;
    return it == samples_.end() ? -1 : it->second;
  }
  bool Has(const std::string& key) const { return samples_.count(key) > 0; }

  metrics::Registry registry_;
  std::unique_ptr<LlmMetrics> metrics_;
  std::map<std::string, double> samples_;
};

const std::string kOpenAi = "model=gpt-4o,provider=openai-main";
const std::string kAnthropic = "model=claude-x,provider=anthropic-main";

TEST_F(LlmMetricsTest, RequestsByStatusWithZeroForNoResponse) {
  EXPECT_EQ(At("llm_requests{" + kOpenAi + ",endpoint=chat_completions,status=200}"), 2);
  EXPECT_EQ(At("llm_requests{" + kOpenAi + ",endpoint=chat_completions,status=429}"), 1);
  EXPECT_EQ(At("llm_requests{" + kAnthropic + ",endpoint=messages,status=0}"), 1);
  const std::string text = registry_.Render(metrics::Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("# TYPE llm_requests_total counter\n"
                              "llm_requests_total{model=\"claude-x\",provider=\"anthropic-main\","
                              "endpoint=\"messages\",status=\"0\"} 1\n"
                              "llm_requests_total{model=\"gpt-4o\",provider=\"openai-main\","
                              "endpoint=\"chat_completions\",status=\"200\"} 2\n"
                              "llm_requests_total{model=\"gpt-4o\",provider=\"openai-main\","
                              "endpoint=\"chat_completions\",status=\"429\"} 1\n"));
}

TEST_F(LlmMetricsTest, ErrorsOnlyForFailedCallsWithTheirClass) {
  EXPECT_EQ(At("llm_errors{" + kOpenAi + ",endpoint=chat_completions,error_type=rate_limit}"), 1);
  EXPECT_EQ(At("llm_errors{" + kAnthropic + ",endpoint=messages,error_type=upstream_unreachable}"),
            1);
  int error_series = 0;
  for (const auto& [key, value] : samples_) error_series += key.rfind("llm_errors{", 0) == 0;
  EXPECT_EQ(error_series, 2);
}

TEST_F(LlmMetricsTest, DurationHistogramBucketsSumAndCount) {
  // gpt-4o chat observed 1.3 (A), 0.05 (B), 0.5 (D).
  const std::string p =
      "llm_request_duration_seconds_bucket{" + kOpenAi + ",endpoint=chat_completions,le=";
  const std::vector<std::pair<std::string, double>> want = {
      {"0.01", 0}, {"0.025", 0}, {"0.05", 1}, {"0.1", 1}, {"0.25", 1}, {"0.5", 2},
      {"1", 2},    {"2.5", 3},   {"5", 3},    {"10", 3},  {"20", 3},   {"40", 3},
      {"80", 3},   {"160", 3},   {"320", 3},  {"+Inf", 3}};
  for (const auto& [le, count] : want) EXPECT_EQ(At(p + le + "}"), count) << "le=" << le;
  EXPECT_DOUBLE_EQ(
      At("llm_request_duration_seconds_sum{" + kOpenAi + ",endpoint=chat_completions}"), 1.85);
  EXPECT_EQ(At("llm_request_duration_seconds_count{" + kOpenAi + ",endpoint=chat_completions}"), 3);
  EXPECT_EQ(At("llm_request_duration_seconds_count{" + kAnthropic + ",endpoint=messages}"), 1);
}

TEST_F(LlmMetricsTest, TimeToFirstTokenAndPerOutputToken) {
  const std::string ttft =
      "llm_time_to_first_token_seconds_bucket{" + kOpenAi + ",endpoint=chat_completions,le=";
  EXPECT_EQ(At(ttft + "0.25}"), 0);
  EXPECT_EQ(At(ttft + "0.5}"), 2);  // 0.3 (A) and 0.5 (D)
  EXPECT_EQ(At("llm_time_to_first_token_seconds_count{" + kOpenAi + ",endpoint=chat_completions}"),
            2);
  EXPECT_FALSE(Has("llm_time_to_first_token_seconds_count{" + kAnthropic + ",endpoint=messages}"));
  // A: (1.3 - 0.3) / (11 - 1) = 0.1; D: (0.5 - 0.5) / (2 - 1) = 0.
  EXPECT_EQ(At("llm_time_per_output_token_seconds_bucket{" + kOpenAi + ",le=0.001}"), 1);
  EXPECT_EQ(At("llm_time_per_output_token_seconds_bucket{" + kOpenAi + ",le=0.075}"), 1);
  EXPECT_EQ(At("llm_time_per_output_token_seconds_bucket{" + kOpenAi + ",le=0.1}"), 2);
  EXPECT_DOUBLE_EQ(At("llm_time_per_output_token_seconds_sum{" + kOpenAi + "}"), 0.1);
}

TEST_F(LlmMetricsTest, TokensCostUnpricedAndUsageSource) {
  EXPECT_EQ(At("llm_tokens{" + kOpenAi + ",type=input}"), 110);
  EXPECT_EQ(At("llm_tokens{" + kOpenAi + ",type=output}"), 13);
  EXPECT_EQ(At("llm_tokens{" + kOpenAi + ",type=cache_read}"), 40);
  EXPECT_EQ(At("llm_tokens{" + kOpenAi + ",type=cache_write}"), 0);
  EXPECT_EQ(At("llm_tokens{" + kOpenAi + ",type=reasoning}"), 5);
  EXPECT_EQ(At("llm_tokens{" + kAnthropic + ",type=input}"), 7);
  EXPECT_EQ(At("llm_cost_usd{" + kOpenAi + "}"), 0.75);
  EXPECT_FALSE(Has("llm_cost_usd{" + kAnthropic + "}"));  // unpriced: never a $0 series
  EXPECT_EQ(At("llm_unpriced_requests{" + kAnthropic + "}"), 1);
  EXPECT_FALSE(Has("llm_unpriced_requests{" + kOpenAi + "}"));
  EXPECT_EQ(At("llm_usage_source{provider=openai-main,usage_source=provider}"), 2);
  EXPECT_EQ(At("llm_usage_source{provider=openai-main,usage_source=missing}"), 1);
  EXPECT_EQ(At("llm_usage_source{provider=anthropic-main,usage_source=estimated}"), 1);
  const std::string text = registry_.Render(metrics::Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("llm_cost_usd_total{model=\"gpt-4o\",provider=\"openai-main\"} "
                              "0.75\n"));
}

TEST_F(LlmMetricsTest, GenAiOperationDurationWithErrorType) {
  const std::string ok =
      "gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=chat,"
      "gen_ai_provider_name=openai,gen_ai_request_model=gpt-4o,"
      "gen_ai_response_model=gpt-4o-2024-08-06,error_type=}";
  EXPECT_EQ(At(ok), 2);  // A and D
  EXPECT_EQ(At("gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name=chat,"
               "gen_ai_provider_name=openai,gen_ai_request_model=gpt-4o,"
               "gen_ai_response_model=,error_type=rate_limit}"),
            1);
  EXPECT_EQ(At("gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=chat,"
               "gen_ai_provider_name=anthropic,gen_ai_request_model=claude-x,"
               "gen_ai_response_model=,error_type=upstream_unreachable,le=2.56}"),
            1);
  EXPECT_EQ(At("gen_ai_client_operation_duration_seconds_bucket{gen_ai_operation_name=chat,"
               "gen_ai_provider_name=anthropic,gen_ai_request_model=claude-x,"
               "gen_ai_response_model=,error_type=upstream_unreachable,le=1.28}"),
            0);
}

TEST_F(LlmMetricsTest, GenAiTokenUsageSkipsMissingUsage) {
  const std::string openai =
      "gen_ai_client_token_usage_bucket{gen_ai_operation_name=chat,gen_ai_provider_name=openai,"
      "gen_ai_request_model=gpt-4o,gen_ai_response_model=gpt-4o-2024-08-06,gen_ai_token_type=";
  EXPECT_EQ(At(openai + "input,le=16}"), 1);  // D: 10
  EXPECT_EQ(At(openai + "input,le=64}"), 1);
  EXPECT_EQ(At(openai + "input,le=256}"), 2);  // A: 100
  EXPECT_EQ(At(openai + "output,le=1}"), 0);
  EXPECT_EQ(At(openai + "output,le=4}"), 1);   // D: 2
  EXPECT_EQ(At(openai + "output,le=16}"), 2);  // A: 11
  // B reported no usage: no series for its (empty) response model at all.
  EXPECT_FALSE(
      Has("gen_ai_client_token_usage_count{gen_ai_operation_name=chat,"
          "gen_ai_provider_name=openai,gen_ai_request_model=gpt-4o,"
          "gen_ai_response_model=,gen_ai_token_type=input}"));
  // C's estimate counts.
  EXPECT_EQ(At("gen_ai_client_token_usage_sum{gen_ai_operation_name=chat,"
               "gen_ai_provider_name=anthropic,gen_ai_request_model=claude-x,"
               "gen_ai_response_model=,gen_ai_token_type=input}"),
            7);
}

TEST_F(LlmMetricsTest, GenAiChunkMetricsOnlyForStreams) {
  const std::string labels =
      "{gen_ai_operation_name=chat,gen_ai_provider_name=openai,gen_ai_request_model=gpt-4o,"
      "gen_ai_response_model=gpt-4o-2024-08-06";
  // Only A streamed with content: TTFC 0.3, TPOC 0.1 (D is not a stream).
  EXPECT_EQ(At("gen_ai_client_operation_time_to_first_chunk_seconds_count" + labels + "}"), 1);
  EXPECT_EQ(At("gen_ai_client_operation_time_to_first_chunk_seconds_bucket" + labels + ",le=0.16}"),
            0);
  EXPECT_EQ(At("gen_ai_client_operation_time_to_first_chunk_seconds_bucket" + labels + ",le=0.32}"),
            1);
  EXPECT_EQ(At("gen_ai_client_operation_time_per_output_chunk_seconds_count" + labels + "}"), 1);
  EXPECT_EQ(
      At("gen_ai_client_operation_time_per_output_chunk_seconds_bucket" + labels + ",le=0.08}"), 0);
  EXPECT_EQ(
      At("gen_ai_client_operation_time_per_output_chunk_seconds_bucket" + labels + ",le=0.16}"), 1);
}

TEST_F(LlmMetricsTest, ExemplarsInOpenMetricsOnlyForTracedCalls) {
  const std::string om = registry_.Render(metrics::Format::kOpenMetrics);
  const std::string exemplar =
      " # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"}";
  EXPECT_THAT(om, HasSubstr("llm_request_duration_seconds_bucket{model=\"gpt-4o\","
                            "provider=\"openai-main\",endpoint=\"chat_completions\",le=\"2.5\"} 3" +
                            exemplar + " 1.3 1700000001.3\n"));
  EXPECT_THAT(om, HasSubstr("llm_time_to_first_token_seconds_bucket{model=\"gpt-4o\","
                            "provider=\"openai-main\",endpoint=\"chat_completions\",le=\"0.5\"} 2" +
                            exemplar + " 0.3 1700000000.3\n"));
  EXPECT_THAT(om, HasSubstr("gen_ai_client_operation_duration_seconds_bucket{"
                            "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
                            "gen_ai_request_model=\"gpt-4o\","
                            "gen_ai_response_model=\"gpt-4o-2024-08-06\",error_type=\"\","
                            "le=\"1.28\"} 1\n"));  // D's 0.5 (untraced)
  // D (no trace) landed alone in le=0.5 of the duration histogram: no exemplar there.
  EXPECT_THAT(om, HasSubstr("llm_request_duration_seconds_bucket{model=\"gpt-4o\","
                            "provider=\"openai-main\",endpoint=\"chat_completions\",le=\"0.5\"} "
                            "2\n"));
  EXPECT_THAT(registry_.Render(metrics::Format::kPrometheusText), Not(HasSubstr("trace_id")));
}

TEST(LlmMetricsBucketsTest, GenAiBoundariesEqualTheSemanticConventions) {
  // gen-ai-metrics.md (semantic conventions v1.41): ExplicitBucketBoundaries.
  const std::vector<double> duration = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                        1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
  EXPECT_THAT(GenAiDurationBuckets(), ElementsAreArray(duration));
  const std::vector<double> spec_tokens = {
      1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
  EXPECT_THAT(GenAiTokenUsageBuckets(), ElementsAreArray(spec_tokens));

  // And the registered families really use them.
  metrics::Registry registry;
  auto m = LlmMetrics::Create(registry, {});
  ASSERT_TRUE(m.ok());
  core::LlmCall c = CallA();
  (*m)->Record(c);
  std::vector<metrics::FamilySnapshot> all;
  registry.Collect(all);
  std::map<std::string, std::vector<std::string>> les;
  for (const metrics::FamilySnapshot& f : all) {
    for (const metrics::Sample& s : f.samples) {
      if (s.suffix != "_bucket") continue;
      const bool first_series_input =
          f.name != "gen_ai_client_token_usage" || s.labels[4].value == "input";
      if (first_series_input) les[f.name].push_back(s.labels.back().value);
    }
  }
  const std::vector<std::string> duration_le = {"0.01",  "0.02",  "0.04",  "0.08",  "0.16",
                                                "0.32",  "0.64",  "1.28",  "2.56",  "5.12",
                                                "10.24", "20.48", "40.96", "81.92", "+Inf"};
  EXPECT_EQ(les["gen_ai_client_operation_duration_seconds"], duration_le);
  EXPECT_EQ(les["gen_ai_client_operation_time_to_first_chunk_seconds"], duration_le);
  EXPECT_EQ(les["gen_ai_client_operation_time_per_output_chunk_seconds"], duration_le);
  const std::vector<std::string> token_le = {
      "1",     "4",     "16",     "64",           "256",          "1024",          "4096",
      "16384", "65536", "262144", "1.048576e+06", "4.194304e+06", "1.6777216e+07", "6.7108864e+07",
      "+Inf"};
  EXPECT_EQ(les["gen_ai_client_token_usage"], token_le);
}

TEST(LlmMetricsBucketsTest, LlmscopeBucketsAsDocumented) {
  EXPECT_THAT(RequestDurationBuckets(),
              ElementsAreArray({0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0,
                                80.0, 160.0, 320.0}));
  EXPECT_EQ(TimeToFirstTokenBuckets().front(), 0.005);
  EXPECT_EQ(TimeToFirstTokenBuckets().back(), 30);
  EXPECT_EQ(TimePerOutputTokenBuckets().front(), 0.001);
  EXPECT_EQ(TimePerOutputTokenBuckets().back(), 2.5);
}

TEST(LlmMetricsCreateTest, RejectsZeroCapAndDoubleRegistration) {
  metrics::Registry registry;
  EXPECT_EQ(LlmMetrics::Create(registry, {.series_cap = 0}).status().code(),
            core::StatusCode::kInvalidArgument);
  ASSERT_TRUE(LlmMetrics::Create(registry, {}).ok());
  EXPECT_EQ(LlmMetrics::Create(registry, {}).status().code(), core::StatusCode::kAlreadyExists);
}

TEST(LlmMetricsCapTest, ModelsBeyondTheCapFoldIntoOverflow) {
  metrics::Registry registry;
  auto m = LlmMetrics::Create(registry, {.series_cap = 2});
  ASSERT_TRUE(m.ok());
  for (const char* model : {"m1", "m2", "m3", "m4"}) {
    core::LlmCall c = CallD();
    c.requested_model = model;
    (*m)->Record(c);
  }
  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s["llm_cost_usd{model=m1,provider=openai-main}"], 0.25);
  EXPECT_EQ(s["llm_cost_usd{model=m2,provider=openai-main}"], 0.25);
  EXPECT_EQ(s["llm_cost_usd{model=__overflow__,provider=__overflow__}"], 0.5);
  EXPECT_EQ(s.count("llm_cost_usd{model=m3,provider=openai-main}"), 0u);
  EXPECT_GT(s["llmscope_metric_series_overflow{family=llm_cost_usd}"], 0);
}

TEST(LlmMetricsLabelTest, LongModelNamesAreCutAtAUtf8Boundary) {
  metrics::Registry registry;
  auto m = LlmMetrics::Create(registry, {});
  ASSERT_TRUE(m.ok());
  core::LlmCall c = CallD();
  c.requested_model = std::string(255, 'a') + "\xc3\xa9" + std::string(100, 'b');  // é at 255
  (*m)->Record(c);
  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s.count("llm_cost_usd{model=" + std::string(255, 'a') + ",provider=openai-main}"), 1u);
}

TEST(LlmMetricsModelsEndpointTest, ListingModelsIsNotAGenAiOperation) {
  metrics::Registry registry;
  auto m = LlmMetrics::Create(registry, {});
  ASSERT_TRUE(m.ok());
  core::LlmCall c;
  c.endpoint = core::Endpoint::kModels;
  c.provider = "openai-main";
  c.provider_kind = "openai";
  c.http_status = 200;
  c.end_nanos = 10 * kMs;
  (*m)->Record(c);
  std::map<std::string, double> s = Samples(registry);
  EXPECT_EQ(s["llm_requests{model=,provider=openai-main,endpoint=models,status=200}"], 1);
  for (const auto& [key, value] : s) EXPECT_EQ(key.rfind("gen_ai_", 0), std::string::npos) << key;
}

}  // namespace
}  // namespace llmscope::stats
