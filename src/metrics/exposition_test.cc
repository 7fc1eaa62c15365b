#include "metrics/exposition.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "metrics/process_collector.h"
#include "metrics/registry.h"

namespace llmscope::metrics {
namespace {

using ::testing::HasSubstr;

// Renders only the named families of `r` (leaving out the registry's own families), in the
// registry's order.
std::string RenderOnly(const Registry& r, Format format,
                       std::initializer_list<std::string_view> names) {
  std::vector<FamilySnapshot> all;
  r.Collect(all);
  std::vector<FamilySnapshot> picked;
  for (FamilySnapshot& f : all) {
    for (std::string_view n : names) {
      if (f.name == n) picked.push_back(std::move(f));
    }
  }
  return Render(picked, format);
}

// ---- Numbers ----

TEST(FormatDoubleTest, ShortestRoundTrip) {
  EXPECT_EQ(FormatDouble(0), "0");
  EXPECT_EQ(FormatDouble(-0.0), "-0");
  EXPECT_EQ(FormatDouble(1), "1");
  EXPECT_EQ(FormatDouble(0.1), "0.1");
  EXPECT_EQ(FormatDouble(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(FormatDouble(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatDouble(-2.5), "-2.5");
  EXPECT_EQ(FormatDouble(123456789), "123456789");
  EXPECT_EQ(FormatDouble(1e21), "1e+21");
  EXPECT_EQ(FormatDouble(5e-324), "5e-324");
  EXPECT_EQ(FormatDouble(DBL_MAX), "1.7976931348623157e+308");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatDouble(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatDouble(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(FormatDoubleTest, RandomValuesParseBackExactly) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<uint64_t> bits;
  for (int i = 0; i < 20000; ++i) {
    uint64_t b = bits(rng);
    double v;
    std::memcpy(&v, &b, sizeof v);
    if (!std::isfinite(v)) continue;
    const std::string s = FormatDouble(v);
    EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
  }
}

TEST(FormatBucketBoundTest, MatchesGoClientRendering) {
  // The OpenMetrics "canonical numbers" examples, before the ".0" OpenMetrics appends.
  EXPECT_EQ(FormatBucketBound(0), "0");
  EXPECT_EQ(FormatBucketBound(0.001), "0.001");
  EXPECT_EQ(FormatBucketBound(0.005), "0.005");
  EXPECT_EQ(FormatBucketBound(0.95), "0.95");
  EXPECT_EQ(FormatBucketBound(0.999), "0.999");
  EXPECT_EQ(FormatBucketBound(1), "1");
  EXPECT_EQ(FormatBucketBound(1.7), "1.7");
  EXPECT_EQ(FormatBucketBound(2.5), "2.5");
  EXPECT_EQ(FormatBucketBound(10), "10");
  EXPECT_EQ(FormatBucketBound(1e-10), "1e-10");
  EXPECT_EQ(FormatBucketBound(1e-9), "1e-09");
  EXPECT_EQ(FormatBucketBound(1e-5), "1e-05");
  EXPECT_EQ(FormatBucketBound(0.0001), "0.0001");
  EXPECT_EQ(FormatBucketBound(100000), "100000");
  EXPECT_EQ(FormatBucketBound(1e6), "1e+06");
  EXPECT_EQ(FormatBucketBound(1234567), "1.234567e+06");
  EXPECT_EQ(FormatBucketBound(1e10), "1e+10");
  EXPECT_EQ(FormatBucketBound(1.1e23), "1.1e+23");
  EXPECT_EQ(FormatBucketBound(-2), "-2");
  EXPECT_EQ(FormatBucketBound(std::numeric_limits<double>::infinity()), "+Inf");
}

// ---- Golden output per type ----

TEST(ExpositionTest, CounterPrometheusTextAppendsTotalEverywhere) {
  Registry r;
  CounterFamily* c = *r.AddCounter("llm_requests", "LLM calls handled.", {"model", "status"});
  c->WithLabels({"gpt-4o", "200"}).Inc(3);
  c->WithLabels({"claude", "500"}).Inc();
  c->WithLabels({"gpt-4o", "429"}).Inc(0.5);
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"llm_requests"}),
            "# HELP llm_requests_total LLM calls handled.\n"
            "# TYPE llm_requests_total counter\n"
            "llm_requests_total{model=\"claude\",status=\"500\"} 1\n"
            "llm_requests_total{model=\"gpt-4o\",status=\"200\"} 3\n"
            "llm_requests_total{model=\"gpt-4o\",status=\"429\"} 0.5\n");
}

TEST(ExpositionTest, CounterOpenMetricsTypeLineWithoutTotalAndEof) {
  Registry r;
  CounterFamily* c = *r.AddCounter("llm_requests", "LLM calls handled.", {"model"});
  c->WithLabels({"gpt-4o"}).Inc(3);
  EXPECT_EQ(RenderOnly(r, Format::kOpenMetrics, {"llm_requests"}),
            "# TYPE llm_requests counter\n"
            "# HELP llm_requests LLM calls handled.\n"
            "llm_requests_total{model=\"gpt-4o\"} 3\n"
            "# EOF\n");
}

TEST(ExpositionTest, GaugeAndEmptyFamily) {
  Registry r;
  GaugeFamily* g = *r.AddGauge("queue_depth", "Records waiting.", {});
  ASSERT_TRUE(r.AddGauge("in_flight", "Requests in flight.", {"route"}).ok());
  g->WithLabels({}).Set(-2.5);
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"queue_depth", "in_flight"}),
            "# HELP queue_depth Records waiting.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth -2.5\n"
            "# HELP in_flight Requests in flight.\n"
            "# TYPE in_flight gauge\n");
  EXPECT_EQ(RenderOnly(r, Format::kOpenMetrics, {"queue_depth", "in_flight"}),
            "# TYPE queue_depth gauge\n"
            "# HELP queue_depth Records waiting.\n"
            "queue_depth -2.5\n"
            "# TYPE in_flight gauge\n"
            "# HELP in_flight Requests in flight.\n"
            "# EOF\n");
}

TEST(ExpositionTest, SpecialValues) {
  Registry r;
  GaugeFamily* g = *r.AddGauge("g", "h", {"k"});
  g->WithLabels({"a"}).Set(std::numeric_limits<double>::quiet_NaN());
  g->WithLabels({"b"}).Set(std::numeric_limits<double>::infinity());
  g->WithLabels({"c"}).Set(-std::numeric_limits<double>::infinity());
  g->WithLabels({"d"}).Set(1e-7);
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"g"}),
            "# HELP g h\n# TYPE g gauge\n"
            "g{k=\"a\"} NaN\ng{k=\"b\"} +Inf\ng{k=\"c\"} -Inf\ng{k=\"d\"} 1e-07\n");
}

class HistogramExpositionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HistogramFamily* h =
        *r_.AddHistogram("llm_latency_seconds", "Latency.", {"model"}, {0.005, 0.5, 1, 1e5, 1e6});
    Histogram& m = h->WithLabels({"m"});
    m.Observe(0.25,
              Exemplar{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0, 1700000000.5});
    m.Observe(0.5);
    m.Observe(3, Exemplar{"abc", "", 0, 0});
    m.Observe(2e6);
  }
  Registry r_;
};

TEST_F(HistogramExpositionTest, PrometheusTextCumulativeBucketsSumCountNoExemplars) {
  EXPECT_EQ(RenderOnly(r_, Format::kPrometheusText, {"llm_latency_seconds"}),
            "# HELP llm_latency_seconds Latency.\n"
            "# TYPE llm_latency_seconds histogram\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"0.005\"} 0\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"0.5\"} 2\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"1\"} 2\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"100000\"} 3\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"1e+06\"} 3\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
            "llm_latency_seconds_sum{model=\"m\"} 2000003.75\n"
            "llm_latency_seconds_count{model=\"m\"} 4\n");
}

TEST_F(HistogramExpositionTest, OpenMetricsCanonicalLeAndExemplars) {
  EXPECT_EQ(RenderOnly(r_, Format::kOpenMetrics, {"llm_latency_seconds"}),
            "# TYPE llm_latency_seconds histogram\n"
            "# HELP llm_latency_seconds Latency.\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"0.005\"} 0\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"0.5\"} 2 # "
            "{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",span_id=\"00f067aa0ba902b7\"} 0.25 "
            "1700000000.5\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"1.0\"} 2\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"100000.0\"} 3 # {trace_id=\"abc\"} 3\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"1e+06\"} 3\n"
            "llm_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 4\n"
            "llm_latency_seconds_sum{model=\"m\"} 2000003.75\n"
            "llm_latency_seconds_count{model=\"m\"} 4\n"
            "# EOF\n");
}

TEST(ExpositionTest, HistogramWithoutLabelsOrObservations) {
  Registry r;
  HistogramFamily* h = *r.AddHistogram("empty_seconds", "h", {}, {1});
  h->WithLabels({});
  EXPECT_EQ(RenderOnly(r, Format::kOpenMetrics, {"empty_seconds"}),
            "# TYPE empty_seconds histogram\n"
            "# HELP empty_seconds h\n"
            "empty_seconds_bucket{le=\"1.0\"} 0\n"
            "empty_seconds_bucket{le=\"+Inf\"} 0\n"
            "empty_seconds_sum 0\n"
            "empty_seconds_count 0\n"
            "# EOF\n");
}

// ---- Escaping ----

TEST(ExpositionTest, LabelValueAndHelpEscaping) {
  Registry r;
  GaugeFamily* g = *r.AddGauge("g", "Help with \\ and \"quotes\"\nand a second line.", {"k"});
  g->WithLabels({"x\\y\"z\nw"}).Set(1);
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"g"}),
            "# HELP g Help with \\\\ and \"quotes\"\\nand a second line.\n"
            "# TYPE g gauge\n"
            "g{k=\"x\\\\y\\\"z\\nw\"} 1\n");
  EXPECT_EQ(RenderOnly(r, Format::kOpenMetrics, {"g"}),
            "# TYPE g gauge\n"
            "# HELP g Help with \\\\ and \\\"quotes\\\"\\nand a second line.\n"
            "g{k=\"x\\\\y\\\"z\\nw\"} 1\n"
            "# EOF\n");
}

TEST(ExpositionTest, InvalidUtf8InLabelValuesIsReplaced) {
  Registry r;
  GaugeFamily* g = *r.AddGauge("g", "h", {"k"});
  g->WithLabels({"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"}).Set(1);  // valid: kept
  g->WithLabels({"bad\xff"}).Set(2);                                    // stray byte
  g->WithLabels({"cut\xe2\x82"}).Set(3);                                // truncated sequence
  g->WithLabels({"long\xc0\xaf"}).Set(4);                               // overlong '/'
  g->WithLabels({"sur\xed\xa0\x80"}).Set(5);                            // UTF-16 surrogate
  const std::string kFffd = "\xef\xbf\xbd";
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"g"}),
            "# HELP g h\n# TYPE g gauge\n"
            "g{k=\"bad" +
                kFffd +
                "\"} 2\n"
                "g{k=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 1\n"
                "g{k=\"cut" +
                kFffd + kFffd +
                "\"} 3\n"
                "g{k=\"long" +
                kFffd + kFffd +
                "\"} 4\n"
                "g{k=\"sur" +
                kFffd + kFffd + kFffd + "\"} 5\n");
}

// ---- Order ----

TEST(ExpositionTest, SeriesSortedFamiliesInRegistrationOrder) {
  Registry r;
  GaugeFamily* z = *r.AddGauge("zeta", "h", {"a", "b"});
  GaugeFamily* a = *r.AddGauge("alpha", "h", {});
  z->WithLabels({"y", "2"}).Set(1);
  z->WithLabels({"x", "9"}).Set(2);
  z->WithLabels({"y", "10"}).Set(3);
  z->WithLabels({"X", "1"}).Set(4);
  a->WithLabels({}).Set(5);
  const std::string expected =
      "# HELP zeta h\n# TYPE zeta gauge\n"
      "zeta{a=\"X\",b=\"1\"} 4\n"
      "zeta{a=\"x\",b=\"9\"} 2\n"
      "zeta{a=\"y\",b=\"10\"} 3\n"
      "zeta{a=\"y\",b=\"2\"} 1\n"
      "# HELP alpha h\n# TYPE alpha gauge\n"
      "alpha 5\n";
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"zeta", "alpha"}), expected);
  // The same again: the order is stable across scrapes.
  EXPECT_EQ(RenderOnly(r, Format::kPrometheusText, {"zeta", "alpha"}), expected);
}

TEST(ExpositionTest, WholeRegistryGolden) {
  Registry r;
  CounterFamily* c = *r.AddCounter("llm_tokens", "Tokens.", {"direction"}, {.series_cap = 1});
  c->WithLabels({"input"}).Inc(10);
  c->WithLabels({"output"}).Inc(4);  // over the cap: folded
  EXPECT_EQ(r.Render(Format::kOpenMetrics),
            "# TYPE llmscope_metric_series_overflow counter\n"
            "# HELP llmscope_metric_series_overflow Lookups of a new label set that were folded "
            "into the family's overflow series because the family had reached its series cap.\n"
            "llmscope_metric_series_overflow_total{family=\"llm_tokens\"} 1\n"
            "llmscope_metric_series_overflow_total"
            "{family=\"llmscope_metric_collector_families_dropped\"} 0\n"
            "# TYPE llmscope_metric_collector_families_dropped counter\n"
            "# HELP llmscope_metric_collector_families_dropped Metric families from scrape-time "
            "collectors dropped for an invalid or colliding name.\n"
            "llmscope_metric_collector_families_dropped_total 0\n"
            "# TYPE llm_tokens counter\n"
            "# HELP llm_tokens Tokens.\n"
            "llm_tokens_total{direction=\"__overflow__\"} 4\n"
            "llm_tokens_total{direction=\"input\"} 10\n"
            "# EOF\n");
}

TEST(ExpositionTest, UnknownTypeNames) {
  const std::vector<FamilySnapshot> f = {
      {"u", "", MetricType::kUnknown, {Sample{"", {}, 1, std::nullopt}}}};
  EXPECT_EQ(Render(f, Format::kPrometheusText), "# TYPE u untyped\nu 1\n");
  EXPECT_EQ(Render(f, Format::kOpenMetrics), "# TYPE u unknown\nu 1\n# EOF\n");
}

// ---- Content negotiation ----

TEST(NegotiateFormatTest, PicksOpenMetricsOnlyWhenPreferred) {
  EXPECT_EQ(NegotiateFormat(""), Format::kPrometheusText);
  EXPECT_EQ(NegotiateFormat("text/plain;version=0.0.4"), Format::kPrometheusText);
  EXPECT_EQ(NegotiateFormat("*/*"), Format::kPrometheusText);
  // Prometheus 2.x's default scrape Accept header.
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=1.0.0,application/"
                            "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0."
                            "5,*/*;q=0.1"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text; version=0.0.1,text/plain;"
                            "version=0.0.4;q=0.5,*/*;q=0.1"),
            Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("Application/OpenMetrics-Text"), Format::kOpenMetrics);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0.3, text/plain"),
            Format::kPrometheusText);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;q=0"), Format::kPrometheusText);
  EXPECT_EQ(NegotiateFormat("application/openmetrics-text;version=2.0.0"), Format::kPrometheusText);
  EXPECT_EQ(NegotiateFormat(";;,,=;q=,application/openmetrics-text;q=abc"),
            Format::kPrometheusText);
}

TEST(NegotiateFormatTest, ContentTypes) {
  EXPECT_EQ(ContentType(Format::kPrometheusText), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ContentType(Format::kOpenMetrics),
            "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

// ---- promtool ----

std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::string_view rest = path;
  while (!rest.empty()) {
    const size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

TEST(PromtoolTest, RenderedRegistryPassesCheckMetricsWithoutLintProblems) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) GTEST_SKIP() << "promtool not on PATH";

  Registry r;
  CounterFamily* c = *r.AddCounter("llm_requests", "LLM calls handled, by \"model\".\nSecond line.",
                                   {"model", "status"}, {.series_cap = 3});
  c->WithLabels({"gpt-4o", "200"}).Inc(3);
  c->WithLabels({"we\"ird\\mo\ndel \xff", "500"}).Inc();
  c->WithLabels({"caf\xc3\xa9", "200"}).Inc();
  c->WithLabels({"folded", "200"}).Inc();  // overflow series
  GaugeFamily* g = *r.AddGauge("llm_in_flight_requests", "Requests in flight.", {});
  g->WithLabels({}).Set(2);
  GaugeFamily* s = *r.AddGauge("llm_special_values", "NaN and infinities.", {"kind"});
  s->WithLabels({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  s->WithLabels({"inf"}).Set(std::numeric_limits<double>::infinity());
  s->WithLabels({"ninf"}).Set(-std::numeric_limits<double>::infinity());
  ASSERT_TRUE(r.AddGauge("llm_unused", "A family without series.", {"x"}).ok());
  HistogramFamily* h = *r.AddHistogram("llm_request_duration_seconds", "Request latency.",
                                       {"model"}, ExponentialBuckets(0.001, 10, 7));
  h->WithLabels({"gpt-4o"})
      .Observe(0.2,
               Exemplar{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 0, 1700000000});
  h->WithLabels({"claude"}).Observe(12);
  r.AddCollector(std::make_shared<ProcessCollector>());

  const std::string body = r.Render(Format::kPrometheusText);
  const std::string file =
      ::testing::TempDir() + "/metrics_promtool_" + std::to_string(getpid()) + ".prom";
  {
    std::ofstream out(file, std::ios::binary);
    out << body;
  }
  const std::string command = "'" + promtool + "' check metrics < '" + file + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  std::remove(file.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output << "\n--- rendered ---\n" << body;
  EXPECT_EQ(output, "") << body;
  // It really did contain every kind of line.
  EXPECT_THAT(body, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(body, HasSubstr("llm_request_duration_seconds_bucket{model=\"claude\",le=\"+Inf\"}"));
  EXPECT_THAT(body,
              HasSubstr("llm_requests_total{model=\"__overflow__\",status=\"__overflow__\"}"));
}

}  // namespace
}  // namespace llmscope::metrics
