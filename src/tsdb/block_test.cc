#include "tsdb/block.h"

#include <gtest/gtest.h>

#include <bit>
#include <filesystem>
#include <fstream>
#include <random>

namespace llmscope::tsdb {
namespace {

Chunk MakeChunk(int64_t start, int n, double base) {
  std::vector<Sample> s;
  for (int i = 0; i < n; ++i) s.push_back({start + i * 15'000, base + i});
  return *EncodeChunk(s);
}

Block MakeBlock() {
  Block b;
  b.tier = Tier::kRaw;
  b.seq = 7;
  b.sources = {3, 4};
  b.series.push_back({MakeLabels({{"__name__", "up"}, {"job", "a"}}),
                      {MakeChunk(1000, 10, 1), MakeChunk(200'000, 5, 2)}});
  b.series.push_back(
      {MakeLabels({{"__name__", "x_total"}, {"le", "+Inf"}}), {MakeChunk(500, 3, StaleNaN())}});
  return b;
}

void ExpectSameBlock(const Block& a, const Block& b) {
  EXPECT_EQ(a.tier, b.tier);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.sources, b.sources);
  ASSERT_EQ(a.series.size(), b.series.size());
  for (size_t i = 0; i < a.series.size(); ++i) {
    EXPECT_EQ(a.series[i].labels, b.series[i].labels);
    ASSERT_EQ(a.series[i].chunks.size(), b.series[i].chunks.size());
    for (size_t j = 0; j < a.series[i].chunks.size(); ++j) {
      const Chunk& x = a.series[i].chunks[j];
      const Chunk& y = b.series[i].chunks[j];
      EXPECT_EQ(x.min_t, y.min_t);
      EXPECT_EQ(x.max_t, y.max_t);
      EXPECT_EQ(x.num_samples, y.num_samples);
      EXPECT_EQ(x.bytes(), y.bytes());
    }
  }
}

TEST(BlockTest, EncodeDecodeRoundTrip) {
  const Block b = MakeBlock();
  EXPECT_EQ(b.MinTime(), 500);
  EXPECT_EQ(b.MaxTime(), 200'000 + 4 * 15'000);
  auto decoded = DecodeBlock(EncodeBlock(b));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSameBlock(b, *decoded);
  Block empty;
  empty.tier = Tier::kDownsampled;
  auto e = DecodeBlock(EncodeBlock(empty));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tier, Tier::kDownsampled);
  EXPECT_TRUE(e->series.empty());
}

TEST(BlockTest, EveryBitFlipAndTruncationIsDetected) {
  const std::string good = EncodeBlock(MakeBlock());
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_FALSE(DecodeBlock(good.substr(0, len)).ok()) << len;
  }
  EXPECT_FALSE(DecodeBlock(good + "x").ok());
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[byte] ^= static_cast<char>(1 << bit);
      auto r = DecodeBlock(bad);
      EXPECT_FALSE(r.ok()) << byte << ":" << bit;
      if (!r.ok()) {
        EXPECT_NE(r.status().message().find("corrupt block"), std::string::npos);
      }
    }
  }
}

TEST(BlockTest, RandomBytesNeverCrash) {
  std::mt19937 rng(3);
  const std::string good = EncodeBlock(MakeBlock());
  for (int i = 0; i < 500; ++i) {
    std::string junk(rng() % 300, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (i % 2 == 0) junk = good.substr(0, 4) + junk;
    EXPECT_FALSE(DecodeBlock(junk).ok());
  }
}

TEST(BlockTest, FileWriteIsAtomicAndReadable) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "tsdb_block_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  BlockMeta meta;
  ASSERT_TRUE(WriteBlockFile(dir.string(), MakeBlock(), &meta).ok());
  EXPECT_EQ(meta.path, (dir / "raw-00000000000000000007.block").string());
  EXPECT_EQ(meta.min_t, 500);
  EXPECT_FALSE(std::filesystem::exists(meta.path + ".tmp"));
  auto read = ReadBlockFile(meta.path, 1 << 20);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ExpectSameBlock(MakeBlock(), *read);
  auto too_big = ReadBlockFile(meta.path, 10);
  EXPECT_FALSE(too_big.ok());
  auto missing = ReadBlockFile((dir / "nope.block").string(), 1 << 20);
  EXPECT_FALSE(missing.ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmscope::tsdb
