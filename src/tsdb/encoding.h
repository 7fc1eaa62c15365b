#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/crc32c.h"

// Byte-level helpers of the chunk and block formats: little-endian fixed-width integers,
// LEB128 varints (zig-zag for signed values) and CRC-32C.
// Thread-safety: pure functions and a value-type reader; safe from any thread.
namespace llmscope::tsdb::encoding {

void PutFixed32(std::string& out, uint32_t v);
void PutFixed64(std::string& out, uint64_t v);
void PutUvarint(std::string& out, uint64_t v);
void PutVarint(std::string& out, int64_t v);  // zig-zag
void PutLengthPrefixed(std::string& out, std::string_view s);

// The checksum of block sections: CRC-32C (core/crc32c.h).
using core::Crc32c;

// Reads the encodings above from a byte range. Every read is bounds-checked: past the end,
// or on a malformed varint, the reader turns !ok() and returns zeros from then on, so a
// caller checks ok() once after a run of reads instead of after each.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  uint8_t Byte();
  uint32_t Fixed32();
  uint64_t Fixed64();
  uint64_t Uvarint();
  int64_t Varint();
  // `n` bytes, viewing the underlying data.
  std::string_view Bytes(size_t n);
  std::string_view LengthPrefixed() { return Bytes(static_cast<size_t>(Uvarint())); }

  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }

 private:
  bool Need(size_t n);

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace llmscope::tsdb::encoding
