#include "tsdb/import.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/log.h"
#include "testing/fake_clock.h"

namespace llmscope::tsdb {
namespace {

std::string ErrorOf(const core::Result<std::vector<LabeledSample>>& r) {
  return r.ok() ? "OK" : r.status().message();
}

TEST(ParseOpenMetricsSamples, ReadsNamesLabelsValuesAndSecondTimestamps) {
  auto r = ParseOpenMetricsSamples(
      "# HELP x_total requests\n"
      "# TYPE x counter\n"
      "x_total{code=\"200\",path=\"a\\\"b\\\\c\\nd\"} 12.5 1700000000.123\n"
      "up 1 1700000015\r\n"
      "x_total{code=\"500\",} NaN 1700000030\n"
      "h_bucket{le=\"+Inf\"} +Inf 1700000045.5\n"
      "\n"
      "# EOF\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 4u);
  const auto& a = (*r)[0];
  EXPECT_EQ(a.labels,
            MakeLabels({{"__name__", "x_total"}, {"code", "200"}, {"path", "a\"b\\c\nd"}}));
  EXPECT_EQ(a.t_ms, 1'700'000'000'123);
  EXPECT_EQ(a.v, 12.5);
  EXPECT_EQ((*r)[1].labels, MakeLabels({{"__name__", "up"}}));
  EXPECT_EQ((*r)[1].t_ms, 1'700'000'015'000);
  EXPECT_TRUE(std::isnan((*r)[2].v));
  EXPECT_TRUE(std::isinf((*r)[3].v));
  EXPECT_EQ((*r)[3].t_ms, 1'700'000'045'500);
}

TEST(ParseOpenMetricsSamples, ErrorsNameTheLine) {
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up 1 5\nup 2\n")),
            "line 2: a sample without a timestamp (a backfill needs times)");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up{a=\"x} 1 5\n")),
            "line 1: unterminated value of label a");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up{a=\"x\",a=\"y\"} 1 5\n")),
            "line 1: label a given twice");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up one 5\n")), "line 1: invalid value \"one\"");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up 1 soon\n")), "line 1: invalid timestamp \"soon\"");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("9up 1 5\n")), "line 1: expected a metric name");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up 1 5\n# EOF\nup 2 6\n")),
            "line 3: content after # EOF");
  EXPECT_EQ(ErrorOf(ParseOpenMetricsSamples("up{a=\"\\t\"} 1 5\n")),
            "line 1: invalid escape \\t in label a");
}

TEST(ImportSamples, AppendsInterleavedSeriesInOrderAndPersists) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "llmscope_import_test";
  fs::remove_all(dir);
  testing::FakeClock clock(1'700'000'100'000'000'000);
  core::NullLogger log;
  DbOptions o;
  o.dir = dir.string();
  {
    auto db = Db::Open(o, clock, log);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    // Out of time order and interleaved, with one duplicate.
    auto samples = ParseOpenMetricsSamples(
        "a 3 1700000030\nb 1 1700000000\na 1 1700000000\na 2 1700000015\na 2 1700000015\n");
    ASSERT_TRUE(samples.ok());
    auto stats = ImportSamples(**db, std::move(*samples));
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->series, 2u);
    EXPECT_EQ(stats->append.appended, 4u);
    EXPECT_EQ(stats->append.duplicate, 1u);
  }
  // A restart sees what was imported.
  auto db = Db::Open(o, clock, log);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto got = (*db)->Select("a", {}, 0, INT64_MAX);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 1u);
  ASSERT_EQ((*got)[0].samples.size(), 3u);
  EXPECT_EQ((*got)[0].samples[0].t_ms, 1'700'000'000'000);
  EXPECT_EQ((*got)[0].samples[2].v, 3);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace llmscope::tsdb
