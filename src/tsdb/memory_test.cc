// Measures the head's memory and the block files' size for a realistic self-scrape: a mix
// of counters, histogram buckets, gauges and constants scraped every 15 s for one day.
// LLMSCOPE_TSDB_MEMORY_SERIES sets the number of series (default 1000; README.md quotes
// 10000). Prints the figures; the assertions are loose upper bounds that catch regressions.
#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "testing/fake_clock.h"
#include "tsdb/db.h"

namespace llmscope::tsdb {
namespace {

namespace fs = std::filesystem;

TEST(DbMemoryTest, BytesPerSampleAndPerSeries) {
  size_t num_series = 1000;
  if (const char* env = std::getenv("LLMSCOPE_TSDB_MEMORY_SERIES")) {
    num_series = std::strtoul(env, nullptr, 10);
  }
  constexpr int kSteps = 24 * 60 * 4;  // one day at 15 s
  const fs::path dir = fs::path(::testing::TempDir()) / "tsdb_memory_test";
  fs::remove_all(dir);

  testing::FakeClock clock;
  core::NullLogger logger;
  const size_t heap_before = mallinfo2().uordblks;
  DbOptions o;
  o.dir = dir.string();
  auto opened = Db::Open(o, clock, logger);
  ASSERT_TRUE(opened.ok());
  Db& db = **opened;

  // 40% counters, 30% histogram buckets, 10% integer gauges (a queue depth's random walk),
  // 10% float gauges with a fresh random value every scrape (the worst case for XOR
  // compression), 10% constants (build info, up).
  enum Kind { kCounter, kBucket, kIntGauge, kFloatGauge, kConstant };
  struct Series {
    Labels labels;
    Kind kind;
    double value;
  };
  std::mt19937_64 rng(2024);
  std::vector<Series> series;
  const char* models[] = {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"};
  for (size_t i = 0; i < num_series; ++i) {
    const size_t d = i % 10;
    const Kind kind = d < 4    ? kCounter
                      : d < 7  ? kBucket
                      : d == 7 ? kIntGauge
                      : d == 8 ? kFloatGauge
                               : kConstant;
    std::vector<Label> l = {{"__name__", "llmscope_metric_" + std::to_string(i % 97)},
                            {"model", models[i % 4]},
                            {"provider", i % 2 ? "openai" : "anthropic"},
                            {"series", std::to_string(i)}};
    if (kind == kBucket) l.push_back({"le", std::to_string(0.005 * (1 << (i % 12)))});
    series.push_back({MakeLabels(std::move(l)), kind, 0});
  }
  uint64_t raw_samples = 0;
  for (int step = 0; step < kSteps; ++step) {
    const int64_t now = clock.UnixNanos() / 1'000'000;
    for (Series& s : series) {
      switch (s.kind) {
        case kCounter:
          s.value += static_cast<double>(rng() % 4 == 0 ? rng() % 20 : 0);
          break;
        case kBucket:
          s.value += static_cast<double>(rng() % 3);
          break;
        case kIntGauge:
          s.value = std::max(0.0, s.value + static_cast<double>(rng() % 3) - 1);
          break;
        case kFloatGauge:
          s.value = static_cast<double>(rng() % 1000) / 7.0;
          break;
        case kConstant:
          s.value = 1;
          break;
      }
      ASSERT_TRUE(db.Append(s.labels, now, s.value).ok());
      ++raw_samples;
    }
    db.Maintain();
    if ((step + 1) % 120 == 0) {
      ASSERT_TRUE(db.Persist().ok());
    }
    clock.Advance(std::chrono::seconds(15));
  }
  ASSERT_TRUE(db.Persist().ok());
  const MemoryUsage m = db.memory_usage();
  const size_t heap_after = mallinfo2().uordblks;
  uint64_t disk = 0;
  uint64_t raw_disk = 0;
  for (const BlockMeta& b : db.blocks()) {
    disk += b.bytes;
    if (b.tier == Tier::kRaw) raw_disk += b.bytes;
  }
  const double per_sample = static_cast<double>(m.chunk_bytes) / static_cast<double>(m.samples);
  const double overhead_per_sample =
      static_cast<double>(m.chunk_overhead_bytes) / static_cast<double>(m.samples);
  const double per_series =
      static_cast<double>(m.series_overhead_bytes) / static_cast<double>(m.series);
  const double heap_per_sample =
      static_cast<double>(heap_after - heap_before) / static_cast<double>(m.samples);
  std::printf(
      "series=%zu samples_in_memory=%llu (raw appended %llu)\n"
      "chunk payload: %.3f bytes/sample; chunk records and spare capacity: %.3f bytes/sample\n"
      "series overhead (labels, indexes, encoders' state): %.0f bytes/series\n"
      "heap growth (malloc'd, all included): %.3f bytes/sample, %.0f bytes/series\n"
      "block files: %llu bytes total, raw tier %.3f bytes/sample, %zu files\n"
      "open-chunk cache held (its budget; the buffers are allocated again on the next append): "
      "%.0f bytes/series\n",
      m.series, static_cast<unsigned long long>(m.samples),
      static_cast<unsigned long long>(raw_samples), per_sample, overhead_per_sample, per_series,
      heap_per_sample, static_cast<double>(heap_after - heap_before) / m.series,
      static_cast<unsigned long long>(disk),
      static_cast<double>(raw_disk) / static_cast<double>(raw_samples), db.blocks().size(),
      static_cast<double>(m.open_cache_bytes) / static_cast<double>(m.series));
  EXPECT_EQ(m.series, num_series);
  EXPECT_LT(per_sample, 2.5);
  EXPECT_LT(per_series, 1024);
  // At most one chunk's samples (120) of 16 bytes per series.
  EXPECT_LE(m.open_cache_bytes, m.series * 120 * sizeof(Sample));
  opened->reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace llmscope::tsdb
