#include "tsdb/chunk.h"

#include <bit>
#include <cassert>
#include <cstring>

#include "tsdb/encoding.h"

namespace llmscope::tsdb {
namespace {

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// Two's-complement wrapping arithmetic: the encoder and decoder agree on every input, and
// corrupt bytes cannot cause signed overflow (undefined behaviour).
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}

// Delta-of-delta buckets as in Gorilla/Prometheus: a prefix then a signed field of `bits`
// bits holding values in [-(2^(bits-1) - 1), 2^(bits-1)].
struct DodBucket {
  uint64_t prefix;
  int prefix_len;
  int bits;
};
constexpr DodBucket kBuckets[] = {{0b10, 2, 14}, {0b110, 3, 17}, {0b1110, 4, 20}};

bool FitsSigned(int64_t v, int bits) {
  return v >= -((int64_t{1} << (bits - 1)) - 1) && v <= (int64_t{1} << (bits - 1));
}

}  // namespace

void ChunkEncoder::WriteBits(uint64_t bits, int n) {
  while (n > 0) {
    if (free_bits_ == 0) {
      buf_.push_back('\0');
      free_bits_ = 8;
    }
    const int take = n < free_bits_ ? n : free_bits_;
    const uint64_t part = (bits >> (n - take)) & ((uint64_t{1} << take) - 1);
    buf_.back() = static_cast<char>(static_cast<uint8_t>(buf_.back()) |
                                    static_cast<uint8_t>(part << (free_bits_ - take)));
    free_bits_ = static_cast<uint8_t>(free_bits_ - take);
    n -= take;
  }
}

void ChunkEncoder::Append(int64_t t, double v) {
  assert(num_samples_ < kMaxSamples);
  assert(num_samples_ == 0 || t > t_);
  const uint64_t vb = Bits(v);
  if (num_samples_ == 0) {
    // Byte-aligned start: the time as a zig-zag varint, the value's 64 bits.
    encoding::PutVarint(buf_, t);
    WriteBits(vb, 64);
    min_t_ = t;
  } else if (num_samples_ == 1) {
    // Still byte-aligned: the first delta as a varint.
    delta_ = WrapSub(t, t_);
    encoding::PutUvarint(buf_, static_cast<uint64_t>(delta_));
    free_bits_ = 0;
  } else {
    const int64_t delta = WrapSub(t, t_);
    const int64_t dod = WrapSub(delta, delta_);
    delta_ = delta;
    if (dod == 0) {
      WriteBits(0, 1);
    } else {
      bool done = false;
      for (const DodBucket& b : kBuckets) {
        if (FitsSigned(dod, b.bits)) {
          WriteBits(b.prefix, b.prefix_len);
          WriteBits(static_cast<uint64_t>(dod), b.bits);
          done = true;
          break;
        }
      }
      if (!done) {
        WriteBits(0b1111, 4);
        WriteBits(static_cast<uint64_t>(dod), 64);
      }
    }
  }
  if (num_samples_ > 0) {
    const uint64_t x = vb ^ v_bits_;
    if (x == 0) {
      WriteBits(0, 1);
    } else {
      int leading = std::countl_zero(x);
      const int trailing = std::countr_zero(x);
      if (leading >= 32) leading = 31;  // 5 bits
      if (leading_ != 0xff && leading >= leading_ && trailing >= trailing_) {
        // The meaningful bits fit the previous window: reuse it.
        WriteBits(0b10, 2);
        const int sig = 64 - leading_ - trailing_;
        WriteBits(x >> trailing_, sig);
      } else {
        leading_ = static_cast<uint8_t>(leading);
        trailing_ = static_cast<uint8_t>(trailing);
        const int sig = 64 - leading - trailing;
        WriteBits(0b11, 2);
        WriteBits(static_cast<uint64_t>(leading), 5);
        WriteBits(static_cast<uint64_t>(sig & 63), 6);  // 64 is written as 0
        WriteBits(x >> trailing, sig);
      }
    }
  }
  v_bits_ = vb;
  t_ = t;
  ++num_samples_;
}

Chunk ChunkEncoder::Seal() const {
  assert(!empty());
  Chunk c;
  c.min_t = min_t_;
  c.max_t = t_;
  c.num_samples = num_samples_;
  c.size = static_cast<uint32_t>(buf_.size());
  auto data = std::make_shared_for_overwrite<uint8_t[]>(buf_.size());
  std::memcpy(data.get(), buf_.data(), buf_.size());
  c.data = std::move(data);
  return c;
}

void ChunkEncoder::Reset() { *this = ChunkEncoder(); }

[[gnu::always_inline]] inline uint64_t ChunkIterator::ReadBits(int n) {
  if (corrupt_ || bit_pos_ + static_cast<size_t>(n) > data_.size() * 8) {
    corrupt_ = true;
    return 0;
  }
  if (n == 0) return 0;
  const size_t first = bit_pos_ / 8;
  const int skip = static_cast<int>(bit_pos_ % 8);
  // The common case in one step: the n bits lie within the 8 bytes from `first`, which all
  // exist. The bytes are read most significant bit first, so as one big-endian word.
  if (skip + n <= 64 && first + 8 <= data_.size()) {
    uint64_t word;
    std::memcpy(&word, data_.data() + first, sizeof word);
    if constexpr (std::endian::native == std::endian::little) word = __builtin_bswap64(word);
    bit_pos_ += static_cast<size_t>(n);
    return (word << skip) >> (64 - n);
  }
  // Near the end of the chunk (or a 64-bit read that straddles nine bytes): byte by byte.
  uint64_t out = 0;
  while (n > 0) {
    const size_t byte = bit_pos_ / 8;
    const int offset = static_cast<int>(bit_pos_ % 8);
    const int avail = 8 - offset;
    const int take = n < avail ? n : avail;
    const uint8_t b = static_cast<uint8_t>(data_[byte]);
    const uint64_t part = (b >> (avail - take)) & ((1u << take) - 1);
    out = (out << take) | part;
    bit_pos_ += static_cast<size_t>(take);
    n -= take;
  }
  return out;
}

[[gnu::always_inline]] inline uint64_t ChunkIterator::ReadUvarintAligned() {
  encoding::Reader r(data_.substr(bit_pos_ / 8));
  const uint64_t v = r.Uvarint();
  if (!r.ok()) {
    corrupt_ = true;
    return 0;
  }
  bit_pos_ += r.pos() * 8;
  return v;
}

[[gnu::always_inline]] inline bool ChunkIterator::Step() {
  if (corrupt_ || left_ == 0) return false;
  if (read_ == 0) {
    const uint64_t zz = ReadUvarintAligned();
    t_ = static_cast<int64_t>(zz >> 1) ^ -static_cast<int64_t>(zz & 1);
    v_bits_ = ReadBits(64);
  } else {
    if (read_ == 1) {
      delta_ = static_cast<int64_t>(ReadUvarintAligned());
    } else {
      int64_t dod = 0;
      if (ReadBits(1) != 0) {
        int bits = 64;
        for (const DodBucket& b : kBuckets) {
          if (ReadBits(1) == 0) {
            bits = b.bits;
            break;
          }
        }
        const uint64_t raw = ReadBits(bits);
        if (bits == 64) {
          dod = static_cast<int64_t>(raw);
        } else {
          dod = static_cast<int64_t>(raw);
          if (raw > (uint64_t{1} << (bits - 1))) dod -= int64_t{1} << bits;
        }
      }
      delta_ = WrapAdd(delta_, dod);
    }
    t_ = WrapAdd(t_, delta_);
    if (ReadBits(1) != 0) {
      if (ReadBits(1) != 0) {
        leading_ = static_cast<uint8_t>(ReadBits(5));
        int sig = static_cast<int>(ReadBits(6));
        if (sig == 0) sig = 64;
        if (leading_ + sig > 64) corrupt_ = true;
        trailing_ = static_cast<uint8_t>(corrupt_ ? 0 : 64 - leading_ - sig);
      } else if (read_ == 1) {
        corrupt_ = true;  // "reuse the window" before any window was written
      }
      const int sig = 64 - leading_ - trailing_;
      if (!corrupt_) v_bits_ ^= ReadBits(sig) << trailing_;
    }
  }
  if (corrupt_) return false;
  ++read_;
  --left_;
  return true;
}

[[gnu::always_inline]] inline bool ChunkIterator::StepUnchecked() {
  // REQUIRES: read_ >= 2, left_ > 0, !corrupt_, and kUncheckedBytes bytes from bit_pos_ / 8
  // on. A sample takes at most 145 bits (a 68-bit delta of delta, a 77-bit value), and each
  // read loads 8 bytes at the current byte: all within the 32 bytes.
  const char* const p = data_.data();
  size_t pos = bit_pos_;
  // The next 57 or more bits, most significant first.
  auto peek = [p, &pos]() {
    uint64_t w;
    std::memcpy(&w, p + (pos >> 3), sizeof w);
    if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
    return w << (pos & 7);
  };
  auto take = [&](int n) {  // 1 <= n <= 64
    if (n <= 57) {
      const uint64_t v = peek() >> (64 - n);
      pos += static_cast<size_t>(n);
      return v;
    }
    const uint64_t hi = peek() >> (64 - (n - 32));
    pos += static_cast<size_t>(n - 32);
    const uint64_t lo = peek() >> 32;
    pos += 32;
    return (hi << 32) | lo;
  };
  uint64_t w = peek();
  int64_t dod = 0;
  if ((w >> 63) != 0) {
    // '10', '110', '1110' then 14, 17 or 20 bits; '1111' then 64.
    const int ones = std::countl_one(w);
    int bits = 64;
    if (ones < 4) {
      bits = kBuckets[ones - 1].bits;
      pos += static_cast<size_t>(ones + 1);
    } else {
      pos += 4;
    }
    const uint64_t raw = take(bits);
    dod = static_cast<int64_t>(raw);
    if (bits != 64 && raw > (uint64_t{1} << (bits - 1))) dod -= int64_t{1} << bits;
  } else {
    pos += 1;
  }
  delta_ = WrapAdd(delta_, dod);
  t_ = WrapAdd(t_, delta_);
  w = peek();
  if ((w >> 63) != 0) {
    if (((w >> 62) & 1) != 0) {
      const auto leading = static_cast<uint8_t>((w >> 57) & 31);
      int sig = static_cast<int>((w >> 51) & 63);
      if (sig == 0) sig = 64;
      pos += 13;
      if (leading + sig > 64) {
        corrupt_ = true;
        bit_pos_ = pos;
        return false;
      }
      leading_ = leading;
      trailing_ = static_cast<uint8_t>(64 - leading - sig);
    } else {
      pos += 2;
    }
    v_bits_ ^= take(64 - leading_ - trailing_) << trailing_;
  } else {
    pos += 1;
  }
  bit_pos_ = pos;
  ++read_;
  --left_;
  return true;
}

bool ChunkIterator::Next() { return Step(); }

double ChunkIterator::v() const { return std::bit_cast<double>(v_bits_); }

template <typename P>
bool ChunkIterator::AppendRange(int64_t from, int64_t to, std::vector<P>* out) {
  // A local copy, so that the decoder's state stays in registers across the appends.
  ChunkIterator it = *this;
  bool ok = true;
  const size_t size = it.data_.size();
  while (it.read_ >= 2 && it.left_ > 0 && !it.corrupt_ &&
                 (it.bit_pos_ >> 3) + kUncheckedBytes <= size
             ? it.StepUnchecked()
             : it.Step()) {
    // Samples are in time order: nothing later can be in range.
    if (it.t_ > to) break;
    if (it.t_ >= from) out->push_back(P{it.t_, std::bit_cast<double>(it.v_bits_)});
  }
  ok = !it.corrupt_;
  *this = it;
  return ok;
}

template bool ChunkIterator::AppendRange(int64_t, int64_t, std::vector<Sample>*);
template bool ChunkIterator::AppendRange(int64_t, int64_t, std::vector<promql::Point>*);

core::Result<Chunk> EncodeChunk(std::span<const Sample> samples) {
  if (samples.empty() || samples.size() > ChunkEncoder::kMaxSamples) {
    return core::InvalidArgument("a chunk holds 1 to 65535 samples");
  }
  ChunkEncoder enc;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (i > 0 && samples[i].t_ms <= samples[i - 1].t_ms) {
      return core::InvalidArgument("chunk sample times must increase strictly");
    }
    enc.Append(samples[i].t_ms, samples[i].v);
  }
  return enc.Seal();
}

core::Result<std::vector<Sample>> DecodeChunk(std::string_view data, uint32_t num_samples) {
  std::vector<Sample> out;
  out.reserve(num_samples);
  ChunkIterator it(data, num_samples);
  while (it.Next()) out.push_back({it.t(), it.v()});
  if (it.corrupt() || out.size() != num_samples) return core::Internal("malformed chunk");
  return out;
}

}  // namespace llmscope::tsdb
