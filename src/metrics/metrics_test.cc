#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metric.h"
#include "metrics/names.h"
#include "metrics/registry.h"

namespace llmscope::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The value of the sample of `family` whose labels are exactly `labels`, from a fresh Collect.
std::optional<double> ValueOf(const Registry& r, std::string_view family, std::string_view suffix,
                              const std::vector<Label>& labels) {
  std::vector<FamilySnapshot> all;
  r.Collect(all);
  for (const FamilySnapshot& f : all) {
    if (f.name != family) continue;
    for (const Sample& s : f.samples) {
      if (s.suffix == suffix && s.labels == labels) return s.value;
    }
  }
  return std::nullopt;
}

// ---- Metric operations ----

TEST(CounterTest, IncIgnoresNegativeAndNaN) {
  Counter c;
  c.Inc();
  c.Inc(2.5);
  c.Inc(-10);
  c.Inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.Value(), 3.5);
}

TEST(GaugeTest, SetIncDec) {
  Gauge g;
  g.Set(10);
  g.Inc();
  g.Inc(4);
  g.Dec(2.5);
  g.Dec();
  EXPECT_EQ(g.Value(), 11.5);
  g.Set(-3);
  EXPECT_EQ(g.Value(), -3);
}

TEST(HistogramTest, BucketsUseLeSemanticsAndNaNGoesToInf) {
  const std::vector<double> bounds = {1, 2, 5};
  Histogram h(bounds);
  h.Observe(0.5);  // le=1
  h.Observe(1);    // le=1: a value equal to a bound lands in that bucket
  h.Observe(1.5);  // le=2
  h.Observe(7);    // +Inf
  h.Observe(std::numeric_limits<double>::quiet_NaN());  // +Inf
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{2, 3, 3, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(HistogramTest, KeepsLatestExemplarPerBucketWithObservedValue) {
  const std::vector<double> bounds = {1, 2};
  Histogram h(bounds);
  h.Observe(0.5, Exemplar{"aaaa", "bbbb", 123, 1700000000.5});
  h.Observe(0.7, Exemplar{"cccc", "dddd", 0, 1700000001});
  h.Observe(1.5);
  Histogram::Snapshot s = h.Read();
  ASSERT_TRUE(s.exemplars[0].has_value());
  EXPECT_EQ(s.exemplars[0]->trace_id, "cccc");
  EXPECT_EQ(s.exemplars[0]->span_id, "dddd");
  EXPECT_EQ(s.exemplars[0]->value, 0.7);  // the observed value, not the one passed in
  EXPECT_EQ(s.exemplars[0]->timestamp_seconds, 1700000001);
  EXPECT_FALSE(s.exemplars[1].has_value());
  EXPECT_FALSE(s.exemplars[2].has_value());
}

TEST(HistogramTest, DropsExemplarOverOpenMetricsLengthLimit) {
  const std::vector<double> bounds = {1};
  Histogram h(bounds);
  h.Observe(0.5, Exemplar{std::string(200, 'a'), "bbbb", 0, 0});
  Histogram::Snapshot s = h.Read();
  EXPECT_EQ(s.count, 1u);  // still observed
  EXPECT_FALSE(s.exemplars[0].has_value());
}

TEST(BucketsTest, Layouts) {
  EXPECT_EQ(DefaultBuckets().size(), 11u);
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(0.5, 0.5, 3), (std::vector<double>{0.5, 1, 1.5}));
}

// ---- Names ----

TEST(NamesTest, MetricAndLabelSyntax) {
  EXPECT_TRUE(IsValidMetricName("llm_requests"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_TRUE(IsValidMetricName("_x1"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName("__reserved"));
  EXPECT_FALSE(IsValidMetricName("caf\xc3\xa9"));
  EXPECT_TRUE(IsValidLabelName("model"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("__name__"));
  EXPECT_FALSE(IsValidLabelName("9a"));
}

// ---- Registration ----

TEST(RegistryTest, RejectsInvalidRegistrations) {
  Registry r;
  const auto code = [](const auto& result) { return result.status().code(); };
  EXPECT_EQ(code(r.AddCounter("bad-name", "h", {})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("__reserved", "h", {})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("g", "h", {"bad label"})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("g", "h", {"__x"})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("g", "h", {"a", "a"})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("g", "", {})), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddGauge("g", "h", {}, FamilyOptions{.series_cap = 0})),
            core::StatusCode::kInvalidArgument);
  auto total = r.AddCounter("requests_total", "h", {});
  EXPECT_EQ(code(total), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(total.status().message(), HasSubstr("_total"));

  auto le = r.AddHistogram("latency_seconds", "h", {"model", "le"}, {1, 2});
  EXPECT_EQ(code(le), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(le.status().message(), HasSubstr("'le'"));
  auto unsorted = r.AddHistogram("latency_seconds", "h", {}, {1, 3, 2});
  EXPECT_EQ(code(unsorted), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(unsorted.status().message(), HasSubstr("strictly increasing"));
  EXPECT_EQ(code(r.AddHistogram("latency_seconds", "h", {}, {1, 1})),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddHistogram("latency_seconds", "h", {},
                                {1, std::numeric_limits<double>::quiet_NaN()})),
            core::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(r.AddHistogram("latency_seconds", "h", {},
                                {-std::numeric_limits<double>::infinity(), 1})),
            core::StatusCode::kInvalidArgument);

  // None of the failures registered anything.
  EXPECT_TRUE(r.AddHistogram("latency_seconds", "h", {}, {1, 2}).ok());
  EXPECT_TRUE(r.AddGauge("g", "h", {}).ok());
}

TEST(RegistryTest, RejectsDuplicatesAndCollidingExposedNames) {
  Registry r;
  ASSERT_TRUE(r.AddCounter("requests", "h", {}).ok());
  ASSERT_TRUE(r.AddHistogram("latency", "h", {}, {1}).ok());
  const auto code = [](const auto& result) { return result.status().code(); };
  EXPECT_EQ(code(r.AddCounter("requests", "h", {})), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(code(r.AddGauge("requests", "h", {})), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(code(r.AddGauge("requests_total", "h", {})), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(code(r.AddGauge("latency_count", "h", {})), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(code(r.AddGauge("latency_bucket", "h", {})), core::StatusCode::kAlreadyExists);
  EXPECT_EQ(code(r.AddCounter("llmscope_metric_series_overflow", "h", {})),
            core::StatusCode::kAlreadyExists);
  EXPECT_TRUE(r.AddGauge("latency_max", "h", {}).ok());
}

TEST(RegistryTest, TrailingInfBucketIsAccepted) {
  Registry r;
  auto h = r.AddHistogram("x_seconds", "h", {}, {1, std::numeric_limits<double>::infinity()});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)->WithLabels({}).bounds().size(), 1u);
}

// ---- Series ----

TEST(FamilyTest, WithLabelsReturnsStableReferences) {
  Registry r;
  CounterFamily* f = *r.AddCounter("requests", "h", {"model", "status"});
  Counter& a = f->WithLabels({"gpt-4o", "200"});
  const std::vector<std::string> owned = {"gpt-4o", "200"};
  Counter& b = f->WithLabels(owned);
  const std::vector<std::string_view> views = {"gpt-4o", "200"};
  Counter& c = f->WithLabels(views);
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a, &c);
  for (int i = 0; i < 100; ++i) f->WithLabels({"m" + std::to_string(i), "200"});
  EXPECT_EQ(&a, &f->WithLabels({"gpt-4o", "200"}));  // no invalidation on growth
  a.Inc();
  EXPECT_EQ(ValueOf(r, "requests", "", {{"model", "gpt-4o"}, {"status", "200"}}), 1);
}

TEST(FamilyTest, SeriesCapFoldsIntoOverflowSeriesAndCountsFoldedLookups) {
  Registry r;
  CounterFamily* f = *r.AddCounter("requests", "h", {"model", "user"}, {.series_cap = 2});
  f->WithLabels({"a", "1"}).Inc();
  f->WithLabels({"b", "1"}).Inc();
  Counter& o1 = f->WithLabels({"c", "1"});
  Counter& o2 = f->WithLabels({"d", "1"});
  Counter& o3 = f->WithLabels({"c", "1"});  // a folded label set again: still folded
  EXPECT_EQ(&o1, &o2);
  EXPECT_EQ(&o1, &o3);
  o1.Inc(5);
  f->WithLabels({"a", "1"}).Inc();  // existing series keep working
  EXPECT_EQ(f->series_count(), 3u);

  EXPECT_EQ(ValueOf(r, "requests", "", {{"model", "__overflow__"}, {"user", "__overflow__"}}), 5);
  EXPECT_EQ(ValueOf(r, "requests", "", {{"model", "a"}, {"user", "1"}}), 2);
  EXPECT_EQ(ValueOf(r, "llmscope_metric_series_overflow", "", {{"family", "requests"}}), 3);

  const std::string text = r.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("llmscope_metric_series_overflow_total{family=\"requests\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("requests_total{model=\"__overflow__\",user=\"__overflow__\"} 5\n"));
  EXPECT_THAT(text, Not(HasSubstr("model=\"c\"")));
}

TEST(FamilyTest, OverflowCounterStartsAtZeroForEveryFamily) {
  Registry r;
  ASSERT_TRUE(r.AddGauge("queue_depth", "h", {}).ok());
  EXPECT_EQ(ValueOf(r, "llmscope_metric_series_overflow", "", {{"family", "queue_depth"}}), 0);
}

TEST(FamilyTest, WrongLabelCountIsAProgrammingError) {
  Registry r;
  GaugeFamily* f = *r.AddGauge("g", "h", {"a", "b"});
#ifdef NDEBUG
  // Release builds never crash: the call lands in the overflow series and is counted.
  Gauge& g = f->WithLabels({"only-one"});
  g.Set(7);
  EXPECT_EQ(ValueOf(r, "g", "", {{"a", "__overflow__"}, {"b", "__overflow__"}}), 7);
  EXPECT_EQ(ValueOf(r, "llmscope_metric_series_overflow", "", {{"family", "g"}}), 1);
#else
  EXPECT_DEATH(f->WithLabels({"only-one"}), "wrong number of label values");
#endif
}

// ---- Concurrency ----

TEST(ConcurrencyTest, IncFromManyThreadsSumsExactly) {
  Registry r;
  CounterFamily* f = *r.AddCounter("requests", "h", {"model"});
  HistogramFamily* h = *r.AddHistogram("latency", "h", {"model"}, {0.5, 1});
  constexpr int kThreads = 4;
  constexpr int kIters = 100000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kIters; ++i) {
          // Half the threads look the series up every time, half keep the reference.
          f->WithLabels({"shared"}).Inc();
          h->WithLabels({t % 2 == 0 ? "even" : "odd"}).Observe(i % 2 == 0 ? 0.25 : 2);
        }
      });
    }
    // Scrape concurrently with the updates: must be safe and must not block them forever.
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        std::string text = r.Render(i % 2 == 0 ? Format::kPrometheusText : Format::kOpenMetrics);
        ASSERT_FALSE(text.empty());
      }
    });
  }
  EXPECT_EQ(ValueOf(r, "requests", "", {{"model", "shared"}}), double{kThreads} * kIters);
  EXPECT_EQ(ValueOf(r, "latency", "_count", {{"model", "even"}}), double{kThreads / 2} * kIters);
  EXPECT_EQ(ValueOf(r, "latency", "_bucket", {{"model", "odd"}, {"le", "0.5"}}),
            double{kThreads / 2} * kIters / 2);
}

TEST(ConcurrencyTest, ConcurrentCreationOfManySeriesRespectsCap) {
  Registry r;
  CounterFamily* f = *r.AddCounter("c", "h", {"k"}, {.series_cap = 50});
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([f, t] {
        for (int i = 0; i < 1000; ++i) f->WithLabels({std::to_string(t * 1000 + i)}).Inc();
      });
    }
  }
  EXPECT_EQ(f->series_count(), 51u);  // 50 regular + the overflow series
  double total = 0;
  std::vector<FamilySnapshot> all;
  r.Collect(all);
  for (const FamilySnapshot& s : all) {
    if (s.name == "c") {
      for (const Sample& x : s.samples) total += x.value;
    }
  }
  EXPECT_EQ(total, 4000);
  EXPECT_EQ(ValueOf(r, "llmscope_metric_series_overflow", "", {{"family", "c"}}), 4000 - 50);
}

// ---- Collectors ----

class FixedCollector final : public Collector {
 public:
  explicit FixedCollector(std::vector<FamilySnapshot> families) : families_(std::move(families)) {}
  void Collect(std::vector<FamilySnapshot>& out) const override {
    out.insert(out.end(), families_.begin(), families_.end());
  }

 private:
  std::vector<FamilySnapshot> families_;
};

TEST(CollectorTest, CollectedFamiliesRenderInRegistrationPosition) {
  Registry r;
  ASSERT_TRUE(r.AddGauge("first", "h", {}).ok());
  r.AddCollector(std::make_shared<FixedCollector>(
      std::vector<FamilySnapshot>{{"queue_depth",
                                   "Records waiting.",
                                   MetricType::kGauge,
                                   {Sample{"", {{"queue", "pipeline"}}, 12, std::nullopt}}}}));
  ASSERT_TRUE(r.AddGauge("last", "h", {}).ok());
  r.AddCollector(nullptr);  // ignored
  const std::string text = r.Render(Format::kPrometheusText);
  const size_t first = text.find("# TYPE first gauge");
  const size_t queue = text.find("queue_depth{queue=\"pipeline\"} 12\n");
  const size_t last = text.find("# TYPE last gauge");
  ASSERT_NE(queue, std::string::npos);
  EXPECT_LT(first, queue);
  EXPECT_LT(queue, last);
}

TEST(CollectorTest, InvalidOrCollidingCollectedFamiliesAreDroppedAndCounted) {
  Registry r;
  ASSERT_TRUE(r.AddCounter("requests", "h", {}).ok());
  r.AddCollector(std::make_shared<FixedCollector>(std::vector<FamilySnapshot>{
      {"requests_total", "collides", MetricType::kGauge, {}},
      {"bad name", "bad-1", MetricType::kGauge, {}},
      {"bad_label", "bad-2", MetricType::kGauge, {Sample{"", {{"a-b", "x"}}, 1, {}}}},
      {"bad_suffix", "bad-3", MetricType::kGauge, {Sample{"{x", {}, 1, {}}}},
      {"ok_gauge", "fine", MetricType::kGauge, {Sample{"", {}, 1, {}}}},
      {"ok_gauge", "duplicate", MetricType::kGauge, {}},
  }));
  const std::string text = r.Render(Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("ok_gauge 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("collides")));
  EXPECT_THAT(text, Not(HasSubstr("bad")));
  EXPECT_THAT(text, Not(HasSubstr("duplicate")));
  // Five dropped by the Render above (ValueOf reads the counter before its own scrape drops).
  EXPECT_EQ(ValueOf(r, "llmscope_metric_collector_families_dropped", "", {}), 5);
}

}  // namespace
}  // namespace llmscope::metrics
