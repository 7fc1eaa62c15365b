#include "server/otlp_genai_metrics.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "metrics/exposition.h"
#include "metrics/registry.h"

namespace llmscope::server {
namespace {

otlp::MetricPoint TokenUsage(std::string service, std::string type, std::vector<uint64_t> counts,
                             otlp::Temporality t = otlp::Temporality::kCumulative) {
  otlp::MetricPoint p;
  p.name = "gen_ai.client.token.usage";
  p.unit = "{token}";
  p.kind = otlp::MetricKind::kHistogram;
  p.temporality = t;
  p.service = std::move(service);
  p.attributes = {{"gen_ai.operation.name", std::string("chat")},
                  {"gen_ai.system", std::string("openai")},
                  {"gen_ai.request.model", std::string("gpt-4o")},
                  {"gen_ai.token.type", std::move(type)},
                  {"user.id", std::string("unbounded-u123")}};
  p.bounds = {100, 1000};
  p.bucket_counts = std::move(counts);
  p.count = 0;
  for (auto c : p.bucket_counts) p.count += c;
  p.sum = 250.0 * static_cast<double>(p.count);
  return p;
}

std::string Render(const std::shared_ptr<OtlpGenAiMetrics>& m) {
  metrics::Registry r;
  r.AddCollector(m);
  return r.Render(metrics::Format::kPrometheusText);
}

const auto kNoSpans = [](std::string_view) { return false; };

TEST(OtlpGenAiMetricsTest, CumulativeReplacesDeltaAddsAndLabelsAreBounded) {
  auto m = std::make_shared<OtlpGenAiMetrics>();
  auto r = m->Add({TokenUsage("svc", "input", {1, 2, 0})}, kNoSpans);
  EXPECT_EQ(r.exposed, 1);
  m->Add({TokenUsage("svc", "input", {2, 3, 1})}, kNoSpans);  // cumulative: replaces
  const std::string labels =
      "gen_ai_operation_name=\"chat\",gen_ai_provider_name=\"openai\","
      "gen_ai_request_model=\"gpt-4o\",gen_ai_token_type=\"input\",service=\"svc\"";
  std::string text = Render(m);
  EXPECT_NE(text.find("# TYPE otlp_gen_ai_client_token_usage histogram"), std::string::npos);
  EXPECT_NE(text.find("otlp_gen_ai_client_token_usage_bucket{" + labels + ",le=\"100\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("otlp_gen_ai_client_token_usage_bucket{" + labels + ",le=\"1000\"} 5"),
            std::string::npos);
  EXPECT_NE(text.find("otlp_gen_ai_client_token_usage_bucket{" + labels + ",le=\"+Inf\"} 6"),
            std::string::npos);
  EXPECT_NE(text.find("otlp_gen_ai_client_token_usage_count{" + labels + "} 6"), std::string::npos);
  EXPECT_EQ(text.find("user"), std::string::npos);  // unbounded attributes are not labels

  auto d = std::make_shared<OtlpGenAiMetrics>();
  d->Add({TokenUsage("svc", "output", {1, 0, 0}, otlp::Temporality::kDelta)}, kNoSpans);
  d->Add({TokenUsage("svc", "output", {0, 1, 0}, otlp::Temporality::kDelta)}, kNoSpans);
  text = Render(d);
  EXPECT_NE(text.find("le=\"1000\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("otlp_gen_ai_client_token_usage_sum{"), std::string::npos);
}

TEST(OtlpGenAiMetricsTest, ServicesThatSendSpansAreNotCountedTwice) {
  auto m = std::make_shared<OtlpGenAiMetrics>();
  m->Add({TokenUsage("both", "input", {1, 0, 0}), TokenUsage("metrics-only", "input", {1, 0, 0})},
         kNoSpans);
  EXPECT_NE(Render(m).find("service=\"both\""), std::string::npos);
  // "both" has since sent a GenAI span: its points are refused and its stream withdrawn.
  auto r = m->Add({TokenUsage("both", "input", {2, 0, 0})},
                  [](std::string_view s) { return s == "both"; });
  EXPECT_EQ(r.duplicate_spans, 1);
  EXPECT_EQ(r.exposed, 0);
  const std::string text = Render(m);
  EXPECT_EQ(text.find("service=\"both\""), std::string::npos) << text;
  EXPECT_NE(text.find("service=\"metrics-only\""), std::string::npos);
}

TEST(OtlpGenAiMetricsTest, DurationGetsItsUnitSuffixAndOtherMetricsAreIgnored) {
  auto m = std::make_shared<OtlpGenAiMetrics>(/*max_streams=*/1);
  otlp::MetricPoint dur = TokenUsage("svc", "input", {1, 0, 0});
  dur.name = "gen_ai.client.operation.duration";
  dur.unit = "s";
  otlp::MetricPoint other = dur;
  other.name = "http.client.request.duration";
  auto r = m->Add({dur, other, TokenUsage("svc", "output", {1, 0, 0})}, kNoSpans);
  EXPECT_EQ(r.exposed, 1);
  EXPECT_EQ(r.over_cap, 1);  // the cap of one stream is taken by the duration
  const std::string text = Render(m);
  EXPECT_NE(text.find("otlp_gen_ai_client_operation_duration_seconds_bucket{"), std::string::npos);
  EXPECT_EQ(text.find("http_client"), std::string::npos);
}

}  // namespace
}  // namespace llmscope::server
