#include "tsdb/chunk.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "tsdb/encoding.h"

namespace llmscope::tsdb {
namespace {

void ExpectBitExact(const std::vector<Sample>& want, const std::vector<Sample>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].t_ms, got[i].t_ms) << i;
    EXPECT_EQ(std::bit_cast<uint64_t>(want[i].v), std::bit_cast<uint64_t>(got[i].v)) << i;
  }
}

std::vector<Sample> RoundTrip(const std::vector<Sample>& in) {
  auto chunk = EncodeChunk(in);
  EXPECT_TRUE(chunk.ok()) << chunk.status().ToString();
  if (!chunk.ok()) return {};
  EXPECT_EQ(chunk->num_samples, in.size());
  EXPECT_EQ(chunk->min_t, in.front().t_ms);
  EXPECT_EQ(chunk->max_t, in.back().t_ms);
  auto out = DecodeChunk(chunk->bytes(), chunk->num_samples);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : std::vector<Sample>{};
}

TEST(EncodingTest, Crc32cKnownVector) {
  EXPECT_EQ(encoding::Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(encoding::Crc32c(""), 0u);
}

TEST(EncodingTest, VarintsRoundTripAndRejectOverlong) {
  std::string buf;
  const std::vector<int64_t> values = {0,
                                       1,
                                       -1,
                                       63,
                                       -64,
                                       1'700'000'000'000,
                                       std::numeric_limits<int64_t>::min(),
                                       std::numeric_limits<int64_t>::max()};
  for (int64_t v : values) encoding::PutVarint(buf, v);
  encoding::PutUvarint(buf, std::numeric_limits<uint64_t>::max());
  encoding::Reader r(buf);
  for (int64_t v : values) EXPECT_EQ(r.Varint(), v);
  EXPECT_EQ(r.Uvarint(), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.remaining(), 0u);
  r.Byte();
  EXPECT_FALSE(r.ok());

  const std::string overlong(11, '\xff');
  encoding::Reader bad(overlong);
  bad.Uvarint();
  EXPECT_FALSE(bad.ok());
}

TEST(ChunkTest, SpecialValuesRoundTripBitExactly) {
  double payload_nan;
  const uint64_t payload_bits = 0x7ff8dead0000beefull;
  std::memcpy(&payload_nan, &payload_bits, sizeof payload_nan);
  const std::vector<Sample> in = {
      {1'700'000'000'000, 0.0},
      {1'700'000'015'000, -0.0},
      {1'700'000'030'000, std::numeric_limits<double>::quiet_NaN()},
      {1'700'000'045'000, StaleNaN()},
      {1'700'000'060'000, std::numeric_limits<double>::infinity()},
      {1'700'000'075'000, -std::numeric_limits<double>::infinity()},
      {1'700'000'090'000, payload_nan},
      {1'700'000'105'000, StaleNaN()},
      {1'700'000'120'000, std::numeric_limits<double>::denorm_min()},
      {1'700'000'135'000, std::numeric_limits<double>::max()},
      {1'700'000'150'000, -std::numeric_limits<double>::max()},
      {1'700'000'165'000, 1.5},
  };
  const auto out = RoundTrip(in);
  ExpectBitExact(in, out);
  EXPECT_TRUE(IsStaleNaN(out[3].v));
  EXPECT_TRUE(std::signbit(out[1].v));
}

TEST(ChunkTest, SingleSampleAndNegativeTimes) {
  ExpectBitExact({{-5, 1.25}}, RoundTrip({{-5, 1.25}}));
  const std::vector<Sample> in = {{-100'000, 1}, {-1, 2}, {0, 3}, {1, 4}};
  ExpectBitExact(in, RoundTrip(in));
}

TEST(ChunkTest, EveryDeltaOfDeltaBucketAndExtremes) {
  // Deltas chosen so the delta-of-delta lands in each bucket and at each bucket's edges.
  const std::vector<int64_t> dods = {
      0,     1,      -1,     8192,    -8191,  8193,    -8192,   65536,      -65535,
      65537, -65536, 524288, -524287, 524289, -524288, 1 << 30, -(1 << 29), int64_t{1} << 40,
      0,     0};
  std::vector<Sample> in = {{0, 0}, {1'000'000'000, 1}};
  int64_t delta = 1'000'000'000;
  for (int64_t dod : dods) {
    delta += dod;
    ASSERT_GT(delta, 0);
    in.push_back({in.back().t_ms + delta, static_cast<double>(in.size())});
  }
  ExpectBitExact(in, RoundTrip(in));
}

TEST(ChunkTest, RandomSeriesRoundTrip) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    const int n = 1 + static_cast<int>(rng() % 500);
    std::vector<Sample> in;
    int64_t t = static_cast<int64_t>(rng() % 2'000'000'000'000ull) - 1'000'000'000'000;
    double counter = 0;
    for (int i = 0; i < n; ++i) {
      t += 1 + static_cast<int64_t>(rng() % (round % 3 == 0 ? 30'000 : 100));
      double v;
      switch (rng() % 5) {
        case 0:
          v = std::bit_cast<double>(rng());  // any bit pattern, NaNs included
          break;
        case 1:
          counter += static_cast<double>(rng() % 10);
          v = counter;
          break;
        case 2:
          v = std::ldexp(static_cast<double>(rng() % 1000), static_cast<int>(rng() % 40) - 20);
          break;
        case 3:
          v = i > 0 ? in.back().v : 0;
          break;
        default:
          v = StaleNaN();
      }
      in.push_back({t, v});
    }
    ExpectBitExact(in, RoundTrip(in));
  }
}

TEST(ChunkTest, RegularScrapesCompressWell) {
  // 120 samples of a slowly growing counter scraped every 15 s exactly: about 1.1 bytes each.
  std::vector<Sample> in;
  double v = 1000;
  for (int i = 0; i < 120; ++i) {
    v += (i % 4 == 0) ? 3 : 0;
    in.push_back({1'700'000'000'000 + i * 15'000, v});
  }
  auto chunk = EncodeChunk(in);
  ASSERT_TRUE(chunk.ok());
  EXPECT_LT(chunk->size, 140u);
  ExpectBitExact(in, RoundTrip(in));
}

TEST(ChunkTest, EncoderIsIncrementalAndSealCopies) {
  ChunkEncoder enc;
  EXPECT_TRUE(enc.empty());
  std::vector<Sample> in;
  for (int i = 0; i < 50; ++i) {
    in.push_back({i * 1000, i * 0.5});
    enc.Append(i * 1000, i * 0.5);
    // The bytes written so far always decode to the samples appended so far.
    auto partial = DecodeChunk(enc.bytes(), enc.num_samples());
    ASSERT_TRUE(partial.ok());
    ExpectBitExact(in, *partial);
  }
  const Chunk sealed = enc.Seal();
  enc.Reset();
  EXPECT_TRUE(enc.empty());
  auto out = DecodeChunk(sealed.bytes(), sealed.num_samples);
  ASSERT_TRUE(out.ok());
  ExpectBitExact(in, *out);
}

TEST(ChunkTest, RejectsBadInput) {
  EXPECT_FALSE(EncodeChunk({}).ok());
  const std::vector<Sample> dup = {{1, 1}, {1, 2}};
  EXPECT_FALSE(EncodeChunk(dup).ok());
}

TEST(ChunkTest, MalformedBytesNeverCrash) {
  std::vector<Sample> in;
  for (int i = 0; i < 100; ++i) in.push_back({i * 15'000, i * 1.1});
  auto chunk = EncodeChunk(in);
  ASSERT_TRUE(chunk.ok());
  const std::string good(chunk->bytes());
  // Claiming more samples than written, truncations and random bit flips: each either
  // decodes (flips may yield other valid streams) or reports corruption.
  // (The count is part of the format: zero padding bits of the last byte would read as
  // repeats of the last sample, so only a claim beyond them is detectable from the bits.)
  EXPECT_FALSE(DecodeChunk(good, 104).ok());
  for (size_t len = 0; len < good.size(); ++len) {
    EXPECT_FALSE(DecodeChunk(good.substr(0, len), 100).ok()) << len;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bad = good;
    bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
    (void)DecodeChunk(bad, 100);
  }
  std::string garbage(64, '\xff');
  EXPECT_FALSE(DecodeChunk(garbage, 1000).ok());
}

// Next one sample at a time, keeping those in [from, to]: the reference for AppendRange.
std::vector<Sample> NextInRange(std::string_view bytes, uint32_t n, int64_t from, int64_t to,
                                bool* ok) {
  std::vector<Sample> out;
  ChunkIterator it(bytes, n);
  while (it.Next()) {
    if (it.t() > to) break;
    if (it.t() >= from) out.push_back({it.t(), it.v()});
  }
  *ok = !it.corrupt();
  return out;
}

TEST(ChunkTest, AppendRangeAgreesWithNextOnAnyBytes) {
  // AppendRange has its own reader for the middle of a chunk (no bounds checks while 32
  // bytes remain): on valid chunks, damaged ones and any range it must answer as Next does.
  std::mt19937_64 rng(5);
  for (int round = 0; round < 300; ++round) {
    const int n = 1 + static_cast<int>(rng() % 300);
    std::vector<Sample> in;
    int64_t t = static_cast<int64_t>(rng() % 1'000'000);
    for (int i = 0; i < n; ++i) {
      t += round % 4 == 0 ? 15'000
                          : 1 + static_cast<int64_t>(rng() % (round % 3 ? 60'000 : 1u << 30));
      const double v = rng() % 3 == 0 ? std::bit_cast<double>(rng()) : std::floor(i * 1.5);
      in.push_back({t, v});
    }
    auto chunk = EncodeChunk(in);
    ASSERT_TRUE(chunk.ok());
    std::string bytes(chunk->bytes());
    if (round % 2 == 1) bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    if (round % 5 == 4) bytes.resize(rng() % bytes.size());
    const int64_t from = in[rng() % in.size()].t_ms - static_cast<int64_t>(rng() % 2);
    const int64_t to = rng() % 4 == 0 ? std::numeric_limits<int64_t>::max()
                                      : from + static_cast<int64_t>(rng() % 10'000'000);
    bool want_ok = false;
    const std::vector<Sample> want = NextInRange(bytes, chunk->num_samples, from, to, &want_ok);
    std::vector<Sample> got;
    ChunkIterator it(bytes, chunk->num_samples);
    EXPECT_EQ(it.AppendRange(from, to, &got), want_ok) << round;
    ExpectBitExact(want, got);
  }
}

}  // namespace
}  // namespace llmscope::tsdb
