#include "tsdb/db.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "testing/fake_clock.h"

namespace llmscope::tsdb {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// Records error logs so tests can check that a degraded mode was reported.
class RecordingLogger final : public core::Logger {
 public:
  void Log(core::LogLevel level, std::string_view message,
           std::initializer_list<Field> fields) override {
    std::lock_guard lock(mu_);
    std::string line(message);
    for (const auto& [k, v] : fields) line += " " + std::string(k) + "=" + std::string(v);
    if (level == core::LogLevel::kError) errors.push_back(line);
  }
  std::vector<std::string> errors;

 private:
  std::mutex mu_;
};

Labels L(std::string_view name,
         std::initializer_list<std::pair<std::string, std::string>> rest = {}) {
  std::vector<Label> v = {{"__name__", std::string(name)}};
  for (const auto& [k, val] : rest) v.push_back({k, val});
  return MakeLabels(std::move(v));
}

int64_t NowMs(const testing::FakeClock& c) { return c.UnixNanos() / 1'000'000; }
constexpr int64_t Ms(std::chrono::milliseconds d) { return d.count(); }

std::vector<SeriesData> SelectAll(const Db& db, int64_t lo = std::numeric_limits<int64_t>::min(),
                                  int64_t hi = std::numeric_limits<int64_t>::max()) {
  auto r = db.Select(std::nullopt, nullptr, lo, hi);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::vector<SeriesData>{};
}

void ExpectSameAnswer(const std::vector<SeriesData>& a, const std::vector<SeriesData>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].labels, b[i].labels);
    if (a[i].samples.size() != b[i].samples.size()) {
      for (size_t j = 0; j < std::min(a[i].samples.size(), b[i].samples.size()); ++j) {
        if (a[i].samples[j].t_ms != b[i].samples[j].t_ms) {
          ADD_FAILURE() << "first difference at " << j << ": " << a[i].samples[j].t_ms << " vs "
                        << b[i].samples[j].t_ms;
          break;
        }
      }
    }
    ASSERT_EQ(a[i].samples.size(), b[i].samples.size()) << LabelsToString(a[i].labels);
    for (size_t j = 0; j < a[i].samples.size(); ++j) {
      EXPECT_EQ(a[i].samples[j].t_ms, b[i].samples[j].t_ms);
      EXPECT_EQ(std::bit_cast<uint64_t>(a[i].samples[j].v),
                std::bit_cast<uint64_t>(b[i].samples[j].v));
    }
  }
}

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        (fs::path(::testing::TempDir()) /
         ("tsdb_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())))
            .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Db> OpenDb(DbOptions o) {
    auto db = Db::Open(std::move(o), clock_, logger_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    return db.ok() ? std::move(db).value() : nullptr;
  }
  std::unique_ptr<Db> OpenMemory() { return OpenDb(DbOptions{}); }
  DbOptions DiskOptions() {
    DbOptions o;
    o.dir = dir_;
    return o;
  }

  testing::FakeClock clock_;
  RecordingLogger logger_;
  std::string dir_;
};

TEST_F(DbTest, AppendAndSelectByNameFilterAndRange) {
  auto db = OpenMemory();
  const int64_t b0 = NowMs(clock_);
  const Labels a = L("req_total", {{"code", "200"}});
  const Labels b = L("req_total", {{"code", "500"}});
  const Labels c = L("temp");
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(db->Append(a, b0 + 1000 + i * 10, i).ok());
    ASSERT_TRUE(db->Append(b, b0 + 1000 + i * 10, 100 + i).ok());
    ASSERT_TRUE(db->Append(c, b0 + 1005 + i * 10, -i).ok());
  }
  ASSERT_TRUE(db->Append(c, b0 + 2000, StaleNaN()).ok());

  auto r = db->Select("req_total", nullptr, b0 + 1020, b0 + 1050);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].labels, a);           // sorted by labels
  ASSERT_EQ((*r)[0].samples.size(), 4u);  // inclusive at both ends
  EXPECT_EQ((*r)[0].samples.front().t_ms, b0 + 1020);
  EXPECT_EQ((*r)[0].samples.back().t_ms, b0 + 1050);

  auto filtered = db->Select(
      "req_total", [](const Labels& l) { return GetLabel(l, "code") == "500"; }, b0, b0 + 5000);
  ASSERT_TRUE(filtered.ok());
  ASSERT_EQ(filtered->size(), 1u);
  EXPECT_EQ((*filtered)[0].samples.size(), 10u);
  EXPECT_EQ((*filtered)[0].samples[3].v, 103);

  auto stale = db->Select("temp", nullptr, b0 + 1500, b0 + 3000);
  ASSERT_TRUE(stale.ok());
  ASSERT_EQ(stale->size(), 1u);
  ASSERT_EQ((*stale)[0].samples.size(), 1u);
  EXPECT_TRUE(IsStaleNaN((*stale)[0].samples[0].v));

  // Series without samples in the range are left out; unknown names give nothing.
  EXPECT_TRUE(db->Select("temp", nullptr, b0, b0 + 999)->empty());
  EXPECT_TRUE(db->Select("nope", nullptr, b0, b0 + 5000)->empty());
  EXPECT_TRUE(db->Select(std::nullopt, nullptr, b0 + 5000, b0 + 4000)->empty());
  EXPECT_EQ(SelectAll(*db).size(), 3u);
}

TEST_F(DbTest, ManyChunksRoundTripAcrossCuts) {
  auto db = OpenMemory();
  std::mt19937_64 rng(1);
  std::vector<Sample> want;
  int64_t t = 1'700'000'000'000;
  for (int i = 0; i < 5000; ++i) {
    t += 1 + static_cast<int64_t>(rng() % 60'000);
    const double v = i % 7 == 0 ? std::bit_cast<double>(rng()) : std::sqrt(i);
    want.push_back({t, v});
    ASSERT_TRUE(db->Append(L("x"), t, v).ok());
  }
  const auto got = SelectAll(*db);
  ASSERT_EQ(got.size(), 1u);
  ExpectSameAnswer({{L("x"), want}}, got);
  const MemoryUsage m = db->memory_usage();
  EXPECT_GE(m.samples, 5000u);  // plus the downsampled tier
  EXPECT_GT(m.chunk_bytes, 0u);
}

TEST_F(DbTest, SelectByNameIsInLabelOrderWhateverTheCreationOrder) {
  // The name index is kept in label order so that Select by name needs no sort: series
  // created in a shuffled order, and one created between two others later, come back sorted.
  auto db = OpenMemory();
  const int64_t t = NowMs(clock_);
  std::vector<std::string> codes;
  for (int i = 0; i < 50; ++i) codes.push_back(std::to_string(100 + i * 7 % 50));
  for (const auto& c : codes) ASSERT_TRUE(db->Append(L("req_total", {{"code", c}}), t, 1).ok());
  ASSERT_TRUE(db->Append(L("req_total", {{"code", "125"}, {"zone", "b"}}), t, 1).ok());
  ASSERT_TRUE(db->Append(L("other"), t, 1).ok());
  for (const auto& r :
       {db->Select("req_total", nullptr, t, t), db->Select(std::nullopt, nullptr, t, t)}) {
    ASSERT_TRUE(r.ok());
    std::vector<Labels> got;
    for (const auto& s : *r) got.push_back(s.labels);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  }
  EXPECT_EQ(db->Select("req_total", nullptr, t, t)->size(), 51u);
  EXPECT_EQ(db->Select(std::nullopt, nullptr, t, t)->size(), 52u);
}

TEST_F(DbTest, OutOfOrderAndDuplicatesAreRejectedAndCounted) {
  auto db = OpenMemory();
  const int64_t b0 = NowMs(clock_);
  const Labels a = L("a");
  ASSERT_TRUE(db->Append(a, b0 + 100, 1).ok());
  ASSERT_TRUE(db->Append(a, b0 + 200, 2).ok());
  auto dup = db->Append(a, b0 + 200, 3);
  EXPECT_EQ(dup.code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("duplicate"), std::string::npos);
  auto ooo = db->Append(a, b0 + 150, 4);
  EXPECT_NE(ooo.message().find("out of order"), std::string::npos);
  ASSERT_TRUE(db->Append(a, b0 + 300, 5).ok());

  std::vector<LabeledSample> batch = {
      {a, b0 + 250, 9}, {a, b0 + 300, 9}, {a, b0 + 400, 6}, {L("b"), b0, 1}};
  const AppendStats st = db->AppendBatch(batch);
  EXPECT_EQ(st.appended, 2u);
  EXPECT_EQ(st.out_of_order, 1u);
  EXPECT_EQ(st.duplicate, 1u);

  const auto got = db->Select("a", nullptr, b0, b0 + 1000);
  ASSERT_TRUE(got.ok());
  ExpectSameAnswer({{a, {{b0 + 100, 1}, {b0 + 200, 2}, {b0 + 300, 5}, {b0 + 400, 6}}}}, *got);
  const DbStats s = db->stats();
  EXPECT_EQ(s.out_of_order, 2u);
  EXPECT_EQ(s.duplicate, 2u);
  EXPECT_EQ(s.samples_appended, 5u);

  // Older than the raw retention: refused, it would be dropped at once.
  EXPECT_NE(db->Append(L("old"), b0 - Ms(hours(49)), 1).message().find("older"), std::string::npos);
  EXPECT_EQ(db->stats().too_old, 1u);
}

TEST_F(DbTest, InvalidLabelsAndSeriesLimit) {
  DbOptions o;
  o.max_series = 2;
  auto db = OpenDb(o);
  EXPECT_EQ(db->Append({{"b", "1"}, {"a", "2"}}, 1, 1).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(db->Append({{"a", ""}}, 1, 1).code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(db->Append({{"a", "1"}, {"a", "2"}}, 1, 1).code(), core::StatusCode::kInvalidArgument);
  const int64_t b0 = NowMs(clock_);
  ASSERT_TRUE(db->Append(L("one"), b0, 1).ok());
  ASSERT_TRUE(db->Append(L("two"), b0, 1).ok());
  EXPECT_EQ(db->Append(L("three"), b0, 1).code(), core::StatusCode::kResourceExhausted);
  ASSERT_TRUE(db->Append(L("two"), b0 + 1, 1).ok());  // existing series still accept samples
  const DbStats s = db->stats();
  EXPECT_EQ(s.invalid, 3u);
  EXPECT_EQ(s.series_limit_rejected, 1u);
  EXPECT_EQ(s.series, 2u);

  DbOptions bad;
  bad.raw_retention = minutes(1);
  bad.samples_per_chunk = 1;
  auto r = Db::Open(bad, clock_, logger_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("raw_retention"), std::string::npos);
  EXPECT_NE(r.status().message().find("samples_per_chunk"), std::string::npos);
}

TEST_F(DbTest, LabelNamesValuesAndSeries) {
  auto db = OpenMemory();
  const int64_t b0 = NowMs(clock_);
  ASSERT_TRUE(db->Append(L("up", {{"job", "api"}}), b0 + 100, 1).ok());
  ASSERT_TRUE(db->Append(L("up", {{"job", "db"}, {"zone", "eu"}}), b0 + 100, 1).ok());
  ASSERT_TRUE(db->Append(L("mem", {{"job", "api"}}), b0 + 5000, 1).ok());
  EXPECT_EQ(db->LabelNames(), (std::vector<std::string>{"__name__", "job", "zone"}));
  EXPECT_EQ(db->LabelValues("job"), (std::vector<std::string>{"api", "db"}));
  EXPECT_EQ(db->LabelValues("__name__"), (std::vector<std::string>{"mem", "up"}));
  EXPECT_EQ(db->LabelValues("__name__", b0 + 1000, b0 + 9000), (std::vector<std::string>{"mem"}));
  EXPECT_TRUE(db->LabelValues("nope").empty());
  EXPECT_EQ(db->Series("up", nullptr).size(), 2u);
  EXPECT_EQ(db->Series(std::nullopt, nullptr, b0 + 1000, b0 + 9000),
            (std::vector<Labels>{L("mem", {{"job", "api"}})}));
  auto zone =
      db->Series(std::nullopt, [](const Labels& l) { return !GetLabel(l, "zone").empty(); });
  ASSERT_EQ(zone.size(), 1u);
  EXPECT_EQ(GetLabel(zone[0], "job"), "db");
}

// Appends one sample per series at the clock's time every `step`, for `duration`,
// running Maintain after each step like the scrape runner does.
void Drive(Db& db, testing::FakeClock& clock, const std::vector<Labels>& series,
           std::chrono::milliseconds step, std::chrono::milliseconds duration,
           std::function<double(size_t, int64_t)> value, std::function<void()> every = nullptr) {
  for (auto elapsed = std::chrono::milliseconds(0); elapsed < duration; elapsed += step) {
    const int64_t now = NowMs(clock);
    for (size_t i = 0; i < series.size(); ++i) {
      EXPECT_TRUE(db.Append(series[i], now, value(i, now)).ok());
    }
    db.Maintain();
    if (every) every();
    clock.Advance(step);
  }
}

TEST_F(DbTest, DownsamplingKeepsLastSampleOfEachWindowAndTiersMerge) {
  DbOptions o;
  o.raw_retention = hours(2);
  o.downsampled_retention = hours(8);
  auto db = OpenDb(o);
  const int64_t start = NowMs(clock_);
  Drive(*db, clock_, {L("c")}, seconds(15), hours(6),
        [](size_t, int64_t t) { return static_cast<double>(t / 1000); });
  const int64_t now = NowMs(clock_);
  const auto got = SelectAll(*db);
  ASSERT_EQ(got.size(), 1u);
  const auto& samples = got[0].samples;
  // Raw tier: 15 s resolution over the last ~2 h (chunk-granular retention keeps a bit more).
  int64_t raw_start = 0;
  for (size_t i = samples.size() - 1; i > 0; --i) {
    if (samples[i].t_ms - samples[i - 1].t_ms != 15'000) {
      raw_start = samples[i].t_ms;
      break;
    }
  }
  ASSERT_GT(raw_start, 0);
  EXPECT_LE(raw_start, now - Ms(hours(2)));
  EXPECT_GE(raw_start, now - Ms(hours(2)) - Ms(hours(2)));
  // Before it: exactly the last sample of each 5-minute window, value intact.
  const int64_t w = Ms(minutes(5));
  size_t n_ds = 0;
  for (const Sample& s : samples) {
    if (s.t_ms >= raw_start) break;
    ++n_ds;
    EXPECT_EQ(s.v, static_cast<double>(s.t_ms / 1000));
    // The next raw sample would have been 15 s later, in the next window.
    EXPECT_NE((s.t_ms + 15'000) / w, s.t_ms / w) << s.t_ms;
  }
  EXPECT_GE(n_ds, static_cast<size_t>((raw_start - start) / w) - 1);
  EXPECT_LE(n_ds, static_cast<size_t>((raw_start - start) / w) + 1);
  for (size_t i = 1; i < samples.size(); ++i) ASSERT_GT(samples[i].t_ms, samples[i - 1].t_ms);
  // Nothing older than the downsampled retention.
  EXPECT_GE(samples.front().t_ms, now - Ms(hours(8)) - Ms(hours(10)));

  // Once everything is beyond both retentions the series disappears.
  clock_.Advance(hours(20));
  db->Maintain();
  EXPECT_TRUE(SelectAll(*db).empty());
  EXPECT_EQ(db->stats().series, 0u);
  EXPECT_EQ(db->stats().series_removed, 1u);
}

TEST_F(DbTest, DownsampledTierKeepsStaleMarkerAfterLastRealSample) {
  DbOptions o;
  o.raw_retention = minutes(30);
  o.downsampled_retention = hours(10);
  auto db = OpenDb(o);
  const int64_t w = Ms(minutes(5));
  // Align to a window start, then: samples for 7 minutes, a stale marker, then nothing.
  clock_.Advance(std::chrono::milliseconds(w - NowMs(clock_) % w));
  const int64_t t0 = NowMs(clock_);
  for (int i = 0; i < 28; ++i) ASSERT_TRUE(db->Append(L("g"), t0 + i * 15'000, i).ok());
  ASSERT_TRUE(db->Append(L("g"), t0 + 28 * 15'000, StaleNaN()).ok());
  clock_.Advance(hours(2));
  db->Maintain();
  const auto got = SelectAll(*db);
  ASSERT_EQ(got.size(), 1u);
  // Window 1: last sample at 4:45 (19); window 2: last real at 6:45 (27), then the marker.
  ASSERT_EQ(got[0].samples.size(), 3u);
  EXPECT_EQ(got[0].samples[0].t_ms, t0 + 19 * 15'000);
  EXPECT_EQ(got[0].samples[0].v, 19);
  EXPECT_EQ(got[0].samples[1].t_ms, t0 + 27 * 15'000);
  EXPECT_EQ(got[0].samples[1].v, 27);
  EXPECT_TRUE(IsStaleNaN(got[0].samples[2].v));
}

TEST_F(DbTest, PersistAndReopenAnswersIdentically) {
  DbOptions o = DiskOptions();
  o.raw_retention = hours(2);
  o.downsampled_retention = hours(12);
  std::vector<Labels> series;
  for (int i = 0; i < 20; ++i) {
    series.push_back(L(i % 2 ? "req_total" : "temp", {{"i", std::to_string(i)}}));
  }
  auto value = [](size_t i, int64_t t) {
    if (i == 3 && (t / 60'000) % 17 == 0) return StaleNaN();
    return i % 2 ? static_cast<double>(t / 7'000 + i) : std::sin(t * 1e-6) * i;
  };
  // A reference store that never restarts, fed the same samples.
  DbOptions mem_o = o;
  mem_o.dir.clear();
  auto ref = OpenDb(mem_o);
  auto db = OpenDb(o);
  int steps = 0;
  auto both = [&](std::chrono::milliseconds d) {
    for (auto e = std::chrono::milliseconds(0); e < d; e += seconds(15)) {
      const int64_t now = NowMs(clock_);
      for (size_t i = 0; i < series.size(); ++i) {
        ASSERT_TRUE(db->Append(series[i], now, value(i, now)).ok());
        ASSERT_TRUE(ref->Append(series[i], now, value(i, now)).ok());
      }
      db->Maintain();
      ref->Maintain();
      if (++steps % 120 == 0) {
        ASSERT_TRUE(db->Persist().ok());
      }
      clock_.Advance(seconds(15));
    }
  };
  both(hours(5));
  // Queries are compared at one instant: the tier boundary moves with Maintain's clock.
  db->Maintain();
  ref->Maintain();
  ASSERT_TRUE(db->Persist().ok());
  const auto before = SelectAll(*db);
  ExpectSameAnswer(SelectAll(*ref), before);
  EXPECT_GT(db->stats().blocks_written, 5u);
  db.reset();

  db = OpenDb(o);
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->load_errors().empty());
  ExpectSameAnswer(before, SelectAll(*db));
  EXPECT_EQ(db->LabelValues("i").size(), 20u);

  // The downsampler state rebuilt from raw blocks continues exactly where it left off.
  both(hours(4));
  db->Maintain();
  ref->Maintain();
  ASSERT_TRUE(db->Persist().ok());
  ExpectSameAnswer(SelectAll(*ref), SelectAll(*db));
  db.reset();
  db = OpenDb(o);
  ExpectSameAnswer(SelectAll(*ref), SelectAll(*db));

  // A second store on the same directory is refused.
  auto second = Db::Open(o, clock_, logger_);
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition);
}

TEST_F(DbTest, CrashLosesOnlySamplesSinceLastPersist) {
  auto db = OpenDb(DiskOptions());
  const int64_t t0 = NowMs(clock_);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(db->Append(L("x"), t0 + i * 1000, i).ok());
  ASSERT_TRUE(db->Persist().ok());
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(db->Append(L("x"), t0 + i * 1000, i).ok());
  db.reset();  // no Persist: as if the process died
  db = OpenDb(DiskOptions());
  const auto got = SelectAll(*db);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].samples.size(), 10u);
  EXPECT_EQ(got[0].samples.back().v, 9);
  // Appending continues after the last persisted sample.
  EXPECT_TRUE(db->Append(L("x"), t0 + 9000, 1).code() == core::StatusCode::kInvalidArgument);
  EXPECT_TRUE(db->Append(L("x"), t0 + 30'000, 1).ok());
}

TEST_F(DbTest, CorruptBlocksAreReportedAndSkipped) {
  auto db = OpenDb(DiskOptions());
  const int64_t t0 = NowMs(clock_);
  // Three raw blocks, one series each.
  for (int b = 0; b < 3; ++b) {
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(db->Append(L("s" + std::to_string(b)), t0 + i * 1000, i).ok());
    }
    ASSERT_TRUE(db->Persist().ok());
  }
  const auto metas = db->blocks();
  ASSERT_EQ(metas.size(), 3u);
  db.reset();

  {  // Flip one bit in the middle of the first block.
    std::fstream f(metas[0].path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(metas[0].bytes - 6));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(metas[0].bytes - 6));
    f.put(static_cast<char>(c ^ 0x10));
  }
  fs::resize_file(metas[1].path, metas[1].bytes - 3);  // a torn write
  std::ofstream(dir_ + "/raw-00000000000000000099.block.tmp") << "partial";

  db = OpenDb(DiskOptions());
  ASSERT_NE(db, nullptr);
  ASSERT_EQ(db->load_errors().size(), 2u);
  EXPECT_NE(db->load_errors()[0].find("checksum mismatch"), std::string::npos)
      << db->load_errors()[0];
  EXPECT_NE(db->load_errors()[1].find("truncated"), std::string::npos) << db->load_errors()[1];
  EXPECT_EQ(logger_.errors.size(), 2u);
  EXPECT_EQ(db->stats().corrupt_blocks, 2u);
  EXPECT_EQ(db->stats().blocks_loaded, 1u);
  const auto got = SelectAll(*db);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(GetLabel(got[0].labels, "__name__"), "s2");
  EXPECT_TRUE(fs::exists(metas[0].path + ".corrupt"));
  EXPECT_FALSE(fs::exists(dir_ + "/raw-00000000000000000099.block.tmp"));
  // New blocks never reuse a sequence number, corrupt files included.
  ASSERT_TRUE(db->Append(L("s9"), t0, 1).ok());
  ASSERT_TRUE(db->Persist().ok());
  EXPECT_GT(db->blocks().back().seq, metas[2].seq);
}

TEST_F(DbTest, CompactionMergesBlocksAndRetentionDeletesThem) {
  DbOptions o = DiskOptions();
  o.raw_retention = hours(3);
  o.downsampled_retention = hours(12);
  o.raw_compaction_period = hours(1);
  o.downsampled_compaction_period = hours(4);
  auto db = OpenDb(o);
  std::vector<Labels> series = {L("a"), L("b", {{"x", "1"}})};
  int steps = 0;
  Drive(
      *db, clock_, series, seconds(15), hours(10),
      [](size_t i, int64_t t) { return static_cast<double>(t % 100'000) + i; },
      [&] {
        if (++steps % 40 == 0) {  // every 10 minutes
          ASSERT_TRUE(db->Persist().ok());
        }
      });
  ASSERT_TRUE(db->Persist().ok());
  const DbStats st = db->stats();
  EXPECT_GT(st.blocks_compacted, 0u);
  EXPECT_GT(st.blocks_deleted, 0u);
  const int64_t now = NowMs(clock_);
  size_t raw_blocks = 0;
  for (const BlockMeta& m : db->blocks()) {
    EXPECT_GE(m.max_t, now - Ms(m.tier == Tier::kRaw ? o.raw_retention : o.downsampled_retention));
    if (m.tier == Tier::kRaw) ++raw_blocks;
  }
  // About one block per finished hour of raw retention, plus this hour's 10-minute ones.
  EXPECT_LE(raw_blocks, 3u + 6u + 1u);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.path().extension() == ".block";
  EXPECT_EQ(files, db->blocks().size());

  // Simulate a crash between writing a merged block and deleting its sources: restore a
  // source next to the merged block. Open deletes it instead of loading it twice.
  db->Maintain();
  const auto before = SelectAll(*db);
  BlockMeta merged;
  for (const BlockMeta& m : db->blocks()) {
    if (!m.sources.empty()) merged = m;
  }
  ASSERT_FALSE(merged.sources.empty());
  db.reset();
  const std::string resurrected = BlockPath(dir_, merged.tier, merged.sources[0]);
  fs::copy_file(merged.path, resurrected);
  {
    auto b = ReadBlockFile(resurrected, 1 << 30);
    ASSERT_TRUE(b.ok());
    b->seq = merged.sources[0];
    b->sources.clear();
    ASSERT_TRUE(WriteBlockFile(dir_, *b, nullptr).ok());
  }
  db = OpenDb(o);
  EXPECT_TRUE(db->load_errors().empty());
  EXPECT_FALSE(fs::exists(resurrected));
  ExpectSameAnswer(before, SelectAll(*db));
}

TEST_F(DbTest, ChunkSelectionIsASnapshotThatOutlivesItsSeries) {
  auto db = OpenMemory();
  const int64_t t0 = NowMs(clock_);
  const Labels x = L("x", {{"k", "v"}});
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(db->Append(x, t0 + i * 1000, i).ok());
  // From inside the second sealed chunk into the open one (120 samples per chunk).
  const ChunkSelection sel = db->SelectChunks("x", nullptr, t0 + 200'000, t0 + 250'000);
  ASSERT_EQ(sel.size(), 1u);
  EXPECT_EQ(*sel.labels(0), x);
  EXPECT_GE(sel.EstimateSamples(0), 51u);

  // Later appends change the open chunk; retention then drops the whole series.
  for (int i = 300; i < 400; ++i) ASSERT_TRUE(db->Append(x, t0 + i * 1000, -i).ok());
  clock_.Advance(std::chrono::hours(24 * 40));
  db->Maintain();
  ASSERT_EQ(db->stats().series, 0u);

  // The selection still answers with what was stored when it was taken.
  std::vector<Sample> got;
  ASSERT_TRUE(sel.Decode(0, &got));
  ASSERT_EQ(got.size(), 51u);
  for (size_t j = 0; j < got.size(); ++j) {
    EXPECT_EQ(got[j].t_ms, t0 + 200'000 + static_cast<int64_t>(j) * 1000);
    EXPECT_EQ(got[j].v, 200.0 + static_cast<double>(j));
  }
  EXPECT_EQ(*sel.labels(0), x);
  // The store itself no longer has the series.
  EXPECT_EQ(db->SelectChunks("x", nullptr, t0, t0 + 500'000).size(), 0u);
}

// The samples of `want` with lo <= t <= hi.
std::vector<Sample> InRange(const std::vector<Sample>& want, int64_t lo, int64_t hi) {
  std::vector<Sample> out;
  for (const Sample& s : want) {
    if (s.t_ms >= lo && s.t_ms <= hi) out.push_back(s);
  }
  return out;
}

// Select of one series over [lo, hi] must be exactly `want`'s samples in that range.
void ExpectSeries(const Db& db, const Labels& labels, const std::vector<Sample>& want, int64_t lo,
                  int64_t hi) {
  SCOPED_TRACE("range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  auto got = db.Select(
      GetLabel(labels, kMetricNameLabel), [&labels](const Labels& l) { return l == labels; }, lo,
      hi);
  ASSERT_TRUE(got.ok());
  const std::vector<Sample> in = InRange(want, lo, hi);
  if (in.empty()) {
    EXPECT_TRUE(got->empty());
    return;
  }
  ExpectSameAnswer({{labels, in}}, *got);
}

// The open-chunk cache against the chunk bytes it stands for: two stores, one without the
// cache, take the same appends (irregular intervals, cuts by count and by span, special
// values, rejected samples) and must answer every range alike, bit for bit, between appends.
TEST_F(DbTest, OpenChunkCacheAnswersAsDecodingTheChunkDoes) {
  DbOptions cached_options;
  cached_options.max_chunk_span = minutes(20);
  DbOptions plain_options = cached_options;
  plain_options.open_chunk_cache_bytes = 0;
  auto cached = OpenDb(cached_options);
  auto plain = OpenDb(plain_options);
  std::mt19937_64 rng(7);
  const Labels a = L("m", {{"s", "a"}}), b = L("m", {{"s", "b"}});
  std::vector<Sample> want_a;
  int64_t t = NowMs(clock_);
  const double specials[] = {std::bit_cast<double>(uint64_t{0x7ff0000000000123}), StaleNaN(), -0.0,
                             std::numeric_limits<double>::infinity(), 1e300};
  for (int i = 0; i < 1500; ++i) {
    // Mostly 15 s apart, sometimes a long gap (a span cut) or a burst.
    t += rng() % 50 == 0 ? 25 * 60'000 : rng() % 10 == 0 ? 1 : 15'000;
    const double v = i % 13 == 0 ? specials[(i / 13) % 5] : static_cast<double>(i / 3);
    want_a.push_back({t, v});
    for (Db* db : {cached.get(), plain.get()}) {
      std::vector<LabeledSample> batch = {{a, t, v}, {b, t, -v}};
      if (i % 17 == 0) batch.push_back({a, t - 1, 99});  // out of order: must not enter
      if (i % 19 == 0) batch.push_back({a, t, 98});      // duplicate: must not enter
      db->AppendBatch(batch);
    }
    if (i % 7 != 0) continue;
    // Windows ending at the newest sample (the rule engine's), inside the open chunk, and
    // spanning sealed chunks; some start or end between samples.
    for (int64_t back : {int64_t{0}, int64_t{1}, int64_t{30'000}, int64_t{5 * 60'000},
                         int64_t{45 * 60'000}, int64_t{3 * 3'600'000}}) {
      for (int64_t len : {int64_t{0}, int64_t{14'999}, int64_t{5 * 60'000}, int64_t{3'600'000}}) {
        const int64_t hi = t - back, lo = hi - len;
        auto x = cached->Select("m", nullptr, lo, hi);
        auto y = plain->Select("m", nullptr, lo, hi);
        ASSERT_TRUE(x.ok() && y.ok());
        ASSERT_NO_FATAL_FAILURE(ExpectSameAnswer(*x, *y)) << "step " << i << " lo " << lo;
      }
    }
    ASSERT_NO_FATAL_FAILURE(ExpectSeries(*cached, a, want_a, t - 3'600'000, t));
  }
  EXPECT_GT(cached->memory_usage().open_cache_bytes, 0u);  // the cache was in use
  EXPECT_EQ(plain->memory_usage().open_cache_bytes, 0u);
  // Two series at most a chunk's samples each.
  EXPECT_LE(cached->memory_usage().open_cache_bytes, 2 * 120 * sizeof(Sample));
}

TEST_F(DbTest, OpenChunkCacheSelectionKeepsWhatItSawThroughGrowthAndCuts) {
  DbOptions o;
  o.samples_per_chunk = 20;
  auto db = OpenDb(o);
  const int64_t t0 = NowMs(clock_);
  const Labels x = L("x");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(db->Append(x, t0 + i * 1000, i).ok());
  const ChunkSelection before = db->SelectChunks("x", nullptr, t0, t0 + 100'000);
  // Appends fill the buffer the selection shares, grow it (8 -> 16 -> 20 samples) and cut
  // the chunk twice.
  for (int i = 5; i < 50; ++i) ASSERT_TRUE(db->Append(x, t0 + i * 1000, -i).ok());
  std::vector<Sample> got;
  ASSERT_EQ(before.size(), 1u);
  ASSERT_TRUE(before.Decode(0, &got));
  ExpectSameAnswer({{x, {{t0, 0}, {t0 + 1000, 1}, {t0 + 2000, 2}, {t0 + 3000, 3}, {t0 + 4000, 4}}}},
                   {{x, got}});
  std::vector<Sample> want;
  for (int i = 0; i < 50; ++i) want.push_back({t0 + i * 1000, static_cast<double>(i < 5 ? i : -i)});
  ExpectSeries(*db, x, want, t0, t0 + 100'000);
  ExpectSeries(*db, x, want, t0 + 41'500, t0 + 48'000);  // inside the open chunk
  ExpectSeries(*db, x, want, t0 + 39'000, t0 + 40'000);  // across the last cut
  EXPECT_EQ(db->memory_usage().open_cache_bytes, 20 * sizeof(Sample));
}

TEST_F(DbTest, OpenChunkCacheAfterPersistRestartAndRetention) {
  const Labels x = L("x", {{"k", "v"}});
  const int64_t t0 = NowMs(clock_);
  std::vector<Sample> want;
  auto append = [&](Db& db, int from, int to) {
    for (int i = from; i < to; ++i) {
      want.push_back({t0 + i * 15'000, static_cast<double>(i * i)});
      ASSERT_TRUE(db.Append(x, want.back().t_ms, want.back().v).ok());
    }
  };
  {
    auto db = OpenDb(DiskOptions());
    append(*db, 0, 50);
    ExpectSeries(*db, x, want, t0, t0 + 3'600'000);
    // Persist seals the open chunk: the next samples start a new one, cached afresh.
    ASSERT_TRUE(db->Persist().ok());
    append(*db, 50, 70);
    ExpectSeries(*db, x, want, t0 + 40 * 15'000, t0 + 3'600'000);
    ExpectSeries(*db, x, want, t0 + 55 * 15'000, t0 + 65 * 15'000);
    ASSERT_TRUE(db->Persist().ok());
  }
  {
    // After a restart the history comes from blocks; new appends open a cached chunk.
    auto db = OpenDb(DiskOptions());
    ExpectSeries(*db, x, want, t0, t0 + 3'600'000);
    append(*db, 70, 90);
    ExpectSeries(*db, x, want, t0, t0 + 3'600'000);
    ExpectSeries(*db, x, want, t0 + 80 * 15'000, t0 + 3'600'000);
    EXPECT_GT(db->memory_usage().open_cache_bytes, 0u);

    // Idle past the retention: the series goes, and so does its cache memory. A series of
    // the same labels starts from nothing.
    clock_.Advance(hours(24 * 40));
    db->Maintain();
    EXPECT_EQ(db->stats().series, 0u);
    EXPECT_EQ(db->memory_usage().open_cache_bytes, 0u);
    const int64_t t1 = NowMs(clock_);
    ASSERT_TRUE(db->Append(x, t1, 7).ok());
    ExpectSeries(*db, x, {{t1, 7}}, t0, t1 + 1);
  }
}

TEST_F(DbTest, OpenChunkCacheStaysWithinItsBudget) {
  DbOptions o;
  o.open_chunk_cache_bytes = 24 * sizeof(Sample);  // one series' 8 + 16 samples
  auto db = OpenDb(o);
  const int64_t t0 = NowMs(clock_);
  std::vector<Labels> series;
  for (int s = 0; s < 5; ++s) series.push_back(L("m", {{"s", std::to_string(s)}}));
  std::vector<std::vector<Sample>> want(series.size());
  for (int i = 0; i < 300; ++i) {
    for (size_t s = 0; s < series.size(); ++s) {
      want[s].push_back({t0 + i * 15'000, static_cast<double>(i) + static_cast<double>(s) / 8});
      ASSERT_TRUE(db->Append(series[s], want[s].back().t_ms, want[s].back().v).ok());
    }
    EXPECT_LE(db->memory_usage().open_cache_bytes, o.open_chunk_cache_bytes);
    if (i % 11 != 0) continue;
    // Cached, out of step (its growth refused) and uncached series answer alike.
    for (size_t s = 0; s < series.size(); ++s) {
      ExpectSeries(*db, series[s], want[s], t0 + i * 15'000 - 300'000, t0 + i * 15'000);
    }
  }
  EXPECT_GT(db->memory_usage().open_cache_bytes, 0u);
}

TEST_F(DbTest, ConcurrentAppendsAndQueries) {
  auto db = OpenMemory();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> queries{0};
  constexpr int kSeries = 50;
  constexpr int kScrapes = 400;
  const int64_t t0 = NowMs(clock_);
  std::thread writer([&] {
    for (int s = 0; s < kScrapes; ++s) {
      std::vector<LabeledSample> batch;
      for (int i = 0; i < kSeries; ++i) {
        batch.push_back(
            {L("m", {{"i", std::to_string(i)}}), t0 + s * 15'000, static_cast<double>(s)});
      }
      EXPECT_EQ(db->AppendBatch(batch).appended, static_cast<uint64_t>(kSeries));
      if (s % 50 == 0) db->Maintain();
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      while (!done) {
        auto got = db->Select("m", nullptr, 0, std::numeric_limits<int64_t>::max());
        ASSERT_TRUE(got.ok());
        for (const SeriesData& sd : *got) {
          for (size_t i = 1; i < sd.samples.size(); ++i) {
            ASSERT_EQ(sd.samples[i].t_ms - sd.samples[i - 1].t_ms, 15'000);
          }
        }
        if (r == 0) (void)db->LabelValues("i");
        if (r == 1) (void)db->memory_usage();
        queries++;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  auto got = db->Select("m", nullptr, 0, std::numeric_limits<int64_t>::max());
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), static_cast<size_t>(kSeries));
  for (const SeriesData& sd : *got) EXPECT_EQ(sd.samples.size(), static_cast<size_t>(kScrapes));
}

}  // namespace
}  // namespace llmscope::tsdb
