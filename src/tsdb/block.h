#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tsdb/chunk.h"
#include "tsdb/labels.h"

namespace llmscope::tsdb {

// The two resolutions the store keeps (see README.md, "Tiers").
enum class Tier : uint8_t {
  kRaw = 0,          // every appended sample
  kDownsampled = 1,  // the last sample of each downsampling window (plus its stale marker)
};

std::string_view TierName(Tier tier);  // "raw", "downsampled"

struct BlockSeries {
  Labels labels;
  std::vector<Chunk> chunks;  // sorted by min_t, not overlapping
};

// The contents of one immutable block file: chunks of one tier for a set of series.
struct Block {
  Tier tier = Tier::kRaw;
  // Unique and increasing per store directory; names the file.
  uint64_t seq = 0;
  // The sequence numbers of the blocks this one was compacted from (empty for a block cut
  // from the head). A loader that finds both skips (and deletes) the sources.
  std::vector<uint64_t> sources;
  std::vector<BlockSeries> series;

  // Times of the first and last sample over every chunk; {0, 0} without chunks.
  int64_t MinTime() const;
  int64_t MaxTime() const;
};

// What a store keeps in memory about a block file.
struct BlockMeta {
  std::string path;
  Tier tier = Tier::kRaw;
  uint64_t seq = 0;
  int64_t min_t = 0;
  int64_t max_t = 0;
  uint64_t bytes = 0;
  std::vector<uint64_t> sources;
};

// The file format (README.md, "Block files"): a header with counts and section lengths,
// the series section (label sets), the chunk section; each of the three followed by its
// CRC-32C. Integers little-endian; variable fields as LEB128 varints.
std::string EncodeBlock(const Block& block);

// Parses and verifies a block. INTERNAL naming the problem (bad magic, unsupported version,
// checksum mismatch, truncation, an invalid label set, a malformed chunk record) for any
// content that is not exactly a valid block; never crashes on arbitrary bytes.
core::Result<Block> DecodeBlock(std::string_view data);

// "<dir>/<tier>-<seq, 20 digits>.block"
std::string BlockPath(std::string_view dir, Tier tier, uint64_t seq);

// Writes a block durably and atomically: to "<path>.tmp", fsync, rename over the final
// name, fsync the directory. A crash leaves either no file or the whole file (a leftover
// .tmp is deleted by the next Db::Open). On success fills `meta` (may be null).
// INTERNAL naming the path and the system error on failure (the .tmp is removed).
core::Status WriteBlockFile(std::string_view dir, const Block& block, BlockMeta* meta);

// Reads and decodes a block file. INTERNAL for I/O errors, files larger than `max_bytes`
// and everything DecodeBlock rejects.
core::Result<Block> ReadBlockFile(const std::string& path, uint64_t max_bytes);

}  // namespace llmscope::tsdb
