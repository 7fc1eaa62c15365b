#include "otlp/gzip.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

namespace llmscope::otlp {
namespace {

// gzip-compresses `data` with zlib, as an OTLP exporter does.
std::string Gzip(std::string_view data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY),
            Z_OK);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string RandomBytes(size_t n) {
  std::mt19937 rng(7);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

TEST(Gunzip, RoundTrips) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{4096}, size_t{300'000}}) {
    std::string data = RandomBytes(n);
    auto out = Gunzip(Gzip(data), 1 << 20);
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(*out, data);
  }
}

TEST(Gunzip, OutputExactlyAtTheLimitIsAccepted) {
  std::string data(1000, 'x');
  auto out = Gunzip(Gzip(data), 1000);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->size(), 1000u);
  auto over = Gunzip(Gzip(data), 999);
  EXPECT_EQ(over.status().code(), core::StatusCode::kResourceExhausted);
}

TEST(Gunzip, ConcatenatedMembersAreJoined) {
  auto out = Gunzip(Gzip("hello, ") + Gzip("world"), 100);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "hello, world");
}

TEST(Gunzip, ZipBombStopsAtTheLimit) {
  // 64 MiB of zeros compress to about 64 KiB: a 1000:1 bomb.
  std::string zeros(64u << 20, '\0');
  std::string bomb = Gzip(zeros);
  ASSERT_LT(bomb.size(), 100u << 10);
  auto out = Gunzip(bomb, 4u << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), core::StatusCode::kResourceExhausted);
  EXPECT_EQ(out.status().message(), "gzip body inflates to more than 4194304 bytes (limit)");
}

TEST(Gunzip, CorruptTruncatedAndNonGzipInputAreErrors) {
  std::string good = Gzip(RandomBytes(10'000));
  std::string corrupt = good;
  corrupt[corrupt.size() / 2] ^= 0x55;
  std::string crc = good;
  crc[crc.size() - 6] ^= 0x01;  // the CRC-32 in the trailer
  for (const std::string& bad :
       {corrupt, crc, good.substr(0, good.size() / 2), std::string("plain text, not gzip"),
        std::string(), good + "trailing garbage"}) {
    auto out = Gunzip(bad, 1 << 20);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), core::StatusCode::kInvalidArgument) << out.status().ToString();
    EXPECT_EQ(out.status().message().substr(0, 10), "gzip body ") << out.status().ToString();
  }
}

}  // namespace
}  // namespace llmscope::otlp
