#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tsdb/labels.h"

namespace llmscope::tsdb {

// An immutable compressed run of samples of one series (the "XOR chunk" of Gorilla, as
// Prometheus stores it; format in README.md). Copying a Chunk copies a reference to the
// bytes, never the bytes, so queries take chunks out of the head cheaply.
// Thread-safety: immutable; safe to share between threads.
struct Chunk {
  int64_t min_t = 0;  // time of the first sample
  int64_t max_t = 0;  // time of the last sample
  uint32_t num_samples = 0;
  uint32_t size = 0;  // bytes in `data`
  std::shared_ptr<const uint8_t[]> data;

  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(data.get()), static_cast<size_t>(size)};
  }
  // Bytes of memory this chunk holds besides the Chunk itself (payload + control block).
  size_t HeapBytes() const { return data ? size + 16 : 0; }
};

// Builds a chunk sample by sample: delta-of-delta timestamps and XOR'd float bits, so any
// value (NaN payloads, the stale marker, infinities, -0.0) round-trips bit-exactly.
// Thread-safety: none; the owner serializes access (Db holds its lock).
class ChunkEncoder {
 public:
  // The most samples one chunk may hold (the count is stored in 16 bits in blocks).
  static constexpr uint32_t kMaxSamples = 65535;

  // REQUIRES: num_samples() < kMaxSamples and, unless empty(), t > max_t().
  void Append(int64_t t, double v);

  bool empty() const { return num_samples_ == 0; }
  uint32_t num_samples() const { return num_samples_; }
  int64_t min_t() const { return min_t_; }
  int64_t max_t() const { return t_; }
  // The bits written so far (the last byte may be partly used).
  std::string_view bytes() const { return buf_; }

  // An immutable copy, sized exactly. REQUIRES: !empty().
  Chunk Seal() const;
  // Back to empty, releasing the buffer.
  void Reset();
  // Heap bytes held by the buffer.
  size_t HeapBytes() const { return buf_.capacity() > 15 ? buf_.capacity() + 1 : 0; }

 private:
  void WriteBits(uint64_t bits, int n);

  std::string buf_;
  uint8_t free_bits_ = 0;   // unused low bits of buf_.back()
  uint8_t leading_ = 0xff;  // of the last written XOR window; 0xff = none yet
  uint8_t trailing_ = 0;
  uint32_t num_samples_ = 0;
  int64_t min_t_ = 0;
  int64_t t_ = 0;
  int64_t delta_ = 0;
  uint64_t v_bits_ = 0;
};

// Reads a chunk's samples in order. A malformed chunk (bits run out early, an impossible
// field) ends the iteration with corrupt() set; nothing it reads can crash it.
// Thread-safety: none (a value type); the bytes it views must outlive it.
class ChunkIterator {
 public:
  ChunkIterator(std::string_view data, uint32_t num_samples) : data_(data), left_(num_samples) {}
  explicit ChunkIterator(const Chunk& c) : ChunkIterator(c.bytes(), c.num_samples) {}

  // Advances to the next sample; false at the end or on corruption.
  bool Next();
  int64_t t() const { return t_; }
  double v() const;
  bool corrupt() const { return corrupt_; }

  // Reads the remaining samples and appends those with from <= t <= to to `out` as
  // P{t, v}, in order; stops after the first sample past `to` (the rest is not read). False
  // when the bytes read are malformed (corrupt() is then set). One loop with the bit reader
  // inlined: the query path's decoder. Instantiated for tsdb::Sample and promql::Point.
  template <typename P>
  bool AppendRange(int64_t from, int64_t to, std::vector<P>* out);

 private:
  bool Step();  // Next's body, inlined into AppendRange's loop
  // Step for the third sample on, while at least kUncheckedBytes bytes remain: every field
  // of one sample lies within them, so the reads need no bounds checks.
  static constexpr size_t kUncheckedBytes = 32;
  bool StepUnchecked();
  uint64_t ReadBits(int n);
  uint64_t ReadUvarintAligned();

  std::string_view data_;
  size_t bit_pos_ = 0;
  uint32_t left_;
  uint32_t read_ = 0;
  bool corrupt_ = false;
  uint8_t leading_ = 0;
  uint8_t trailing_ = 0;
  int64_t t_ = 0;
  int64_t delta_ = 0;
  uint64_t v_bits_ = 0;
};

// Encodes `samples` (strictly increasing times, 1..kMaxSamples of them) into one chunk.
// INVALID_ARGUMENT otherwise.
core::Result<Chunk> EncodeChunk(std::span<const Sample> samples);
// Every sample of a chunk; INTERNAL when the bytes are malformed.
core::Result<std::vector<Sample>> DecodeChunk(std::string_view data, uint32_t num_samples);

}  // namespace llmscope::tsdb
