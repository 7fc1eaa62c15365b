#include "tsdb/scraper.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "testing/fake_clock.h"

namespace llmscope::tsdb {
namespace {

namespace fs = std::filesystem;

// A collector of an unknown-typed family, as a user collector may produce.
class UnknownCollector final : public metrics::Collector {
 public:
  void Collect(std::vector<metrics::FamilySnapshot>& out) const override {
    metrics::FamilySnapshot f;
    f.name = "legacy_value";
    f.help = "An untyped value.";
    f.type = metrics::MetricType::kUnknown;
    f.samples.push_back({"", {{"src", "x"}}, 7, std::nullopt});
    out.push_back(std::move(f));
  }
};

int64_t NowMs(const testing::FakeClock& c) { return c.UnixNanos() / 1'000'000; }

std::map<std::string, double> ByText(const std::vector<LabeledSample>& samples) {
  std::map<std::string, double> out;
  for (const LabeledSample& s : samples) out[LabelsToString(s.labels)] = s.v;
  return out;
}

class ScraperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto db = Db::Open(DbOptions{}, clock_, logger_);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
  }

  testing::FakeClock clock_;
  core::NullLogger logger_;
  metrics::Registry registry_;
  std::unique_ptr<Db> db_;
};

TEST_F(ScraperTest, PrometheusNamingForEveryMetricType) {
  auto requests = registry_.AddCounter("llm_requests", "Requests.", {"model", "status"});
  ASSERT_TRUE(requests.ok());
  (*requests)->WithLabels({"gpt-4o", "ok"}).Inc(3);
  (*requests)->WithLabels({"claude", ""}).Inc();
  auto depth = registry_.AddGauge("queue_depth", "Queue depth.", {});
  ASSERT_TRUE(depth.ok());
  (*depth)->WithLabels({}).Set(-2.5);
  auto latency = registry_.AddHistogram("latency_seconds", "Latency.", {"route"}, {0.1, 1});
  ASSERT_TRUE(latency.ok());
  (*latency)->WithLabels({"/v1/chat"}).Observe(0.05);
  (*latency)->WithLabels({"/v1/chat"}).Observe(3);
  registry_.AddCollector(std::make_shared<UnknownCollector>());

  std::vector<metrics::FamilySnapshot> families;
  registry_.Collect(families);
  const auto got = ByText(FamiliesToSamples(families, 1000));
  EXPECT_EQ(got.at(R"({__name__="llm_requests_total", model="gpt-4o", status="ok"})"), 3);
  // An empty label value is an absent label.
  EXPECT_EQ(got.at(R"({__name__="llm_requests_total", model="claude"})"), 1);
  EXPECT_EQ(got.at(R"({__name__="queue_depth"})"), -2.5);
  EXPECT_EQ(got.at(R"({__name__="latency_seconds_bucket", le="0.1", route="/v1/chat"})"), 1);
  EXPECT_EQ(got.at(R"({__name__="latency_seconds_bucket", le="1", route="/v1/chat"})"), 1);
  EXPECT_EQ(got.at(R"({__name__="latency_seconds_bucket", le="+Inf", route="/v1/chat"})"), 2);
  EXPECT_EQ(got.at(R"({__name__="latency_seconds_sum", route="/v1/chat"})"), 3.05);
  EXPECT_EQ(got.at(R"({__name__="latency_seconds_count", route="/v1/chat"})"), 2);
  EXPECT_EQ(got.at(R"({__name__="legacy_value", src="x"})"), 7);
  for (const auto& [text, v] : got) {
    EXPECT_EQ(text.find("__name__=\"llm_requests\""), std::string::npos) << text;
  }

  // Through the store: queried by the exposed names.
  Scraper scraper(registry_, *db_);
  const int64_t t = NowMs(clock_);
  const ScrapeStats st = scraper.ScrapeOnce(t);
  EXPECT_EQ(st.append.appended, st.samples);
  EXPECT_EQ(st.stale_markers, 0u);
  auto r = db_->Select("llm_requests_total", nullptr, t, t);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 2u);
  auto inf = db_->Select(
      "latency_seconds_bucket", [](const Labels& l) { return GetLabel(l, "le") == "+Inf"; }, t, t);
  ASSERT_TRUE(inf.ok());
  ASSERT_EQ(inf->size(), 1u);
  EXPECT_EQ((*inf)[0].samples[0].v, 2);
  const auto names = db_->LabelValues("__name__");
  EXPECT_TRUE(std::find(names.begin(), names.end(), "llmscope_metric_series_overflow_total") !=
              names.end());
}

metrics::FamilySnapshot Gauge(std::string name, std::vector<std::string> instances) {
  metrics::FamilySnapshot f;
  f.name = std::move(name);
  f.help = "h";
  f.type = metrics::MetricType::kGauge;
  for (auto& i : instances) f.samples.push_back({"", {{"instance", i}}, 1, std::nullopt});
  return f;
}

TEST_F(ScraperTest, VanishedSeriesGetOneStaleMarker) {
  Scraper scraper(registry_, *db_);
  const int64_t t0 = NowMs(clock_);
  EXPECT_EQ(scraper.Ingest({Gauge("g", {"a", "b"})}, t0).stale_markers, 0u);
  const ScrapeStats second = scraper.Ingest({Gauge("g", {"a"})}, t0 + 15'000);
  EXPECT_EQ(second.stale_markers, 1u);
  EXPECT_EQ(second.append.appended, 2u);
  EXPECT_EQ(scraper.Ingest({Gauge("g", {"a"})}, t0 + 30'000).stale_markers, 0u);
  EXPECT_EQ(scraper.Ingest({Gauge("g", {"a", "b"})}, t0 + 45'000).stale_markers, 0u);
  EXPECT_EQ(scraper.Ingest({}, t0 + 60'000).stale_markers, 2u);

  auto r = db_->Select("g", nullptr, t0, t0 + 60'000);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  const auto& a = (*r)[0].samples;
  const auto& b = (*r)[1].samples;
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(IsStaleNaN(a[4].v));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(a[i].v, 1);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].t_ms, t0);
  EXPECT_EQ(b[1].t_ms, t0 + 15'000);
  EXPECT_TRUE(IsStaleNaN(b[1].v));
  EXPECT_EQ(b[2].t_ms, t0 + 45'000);
  EXPECT_EQ(b[2].v, 1);
  EXPECT_TRUE(IsStaleNaN(b[3].v));
}

TEST_F(ScraperTest, CounterResetAfterRestartIsJustALowerValue) {
  // A restart starts counters from zero; the store keeps the drop as is and PromQL's
  // rate/increase treat any decrease as a reset.
  Scraper scraper(registry_, *db_);
  metrics::FamilySnapshot c;
  c.name = "calls";
  c.type = metrics::MetricType::kCounter;
  c.samples.push_back({"", {}, 100, std::nullopt});
  const int64_t t0 = NowMs(clock_);
  (void)scraper.Ingest({c}, t0);
  c.samples[0].value = 2;
  (void)scraper.Ingest({c}, t0 + 15'000);
  auto r = db_->Select("calls_total", nullptr, t0, t0 + 15'000);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].samples[0].v, 100);
  EXPECT_EQ((*r)[0].samples[1].v, 2);
}

TEST_F(ScraperTest, RunnerScrapesAtStartAndPersistsAtStop) {
  const auto dir = fs::path(::testing::TempDir()) / "tsdb_runner_test";
  fs::remove_all(dir);
  DbOptions o;
  o.dir = dir.string();
  auto db = Db::Open(o, clock_, logger_);
  ASSERT_TRUE(db.ok());
  auto g = registry_.AddGauge("up", "Up.", {});
  ASSERT_TRUE(g.ok());
  (*g)->WithLabels({}).Set(1);
  Scraper scraper(registry_, **db);
  ScrapeRunner runner({}, scraper, **db, clock_, logger_);
  ASSERT_TRUE(runner.Start().ok());
  EXPECT_EQ(runner.Start().code(), core::StatusCode::kFailedPrecondition);
  const int64_t t0 = NowMs(clock_);
  auto r = (*db)->Select("up", nullptr, t0, t0);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);  // the first scrape happened on Start's thread
  ASSERT_TRUE(runner.Stop().ok());
  ASSERT_TRUE(runner.Stop().ok());  // idempotent
  EXPECT_EQ((*db)->blocks().size(), 1u);

  ScrapeRunnerOptions bad;
  bad.persist_interval = std::chrono::seconds(1);
  ScrapeRunner invalid(bad, scraper, **db, clock_, logger_);
  EXPECT_EQ(invalid.Start().code(), core::StatusCode::kInvalidArgument);
  db->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace llmscope::tsdb
