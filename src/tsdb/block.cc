#include "tsdb/block.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "tsdb/encoding.h"

namespace llmscope::tsdb {
namespace {

constexpr std::string_view kMagic = "LTSB";
constexpr uint8_t kVersion = 1;
// Bounds that reject absurd counts before anything is allocated for them.
constexpr uint64_t kMaxLabelsPerSeries = 1024;
constexpr uint64_t kMaxSources = 1 << 20;

core::Status Corrupt(std::string_view what) {
  return core::Internal("corrupt block: " + std::string(what));
}

core::Status IoError(std::string_view op, std::string_view path, int err) {
  return core::Internal(std::string(op) + " " + std::string(path) + ": " + std::strerror(err));
}

// Writes all of `data` to `fd`, retrying short writes and EINTR.
bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string_view TierName(Tier tier) { return tier == Tier::kRaw ? "raw" : "downsampled"; }

int64_t Block::MinTime() const {
  int64_t t = std::numeric_limits<int64_t>::max();
  for (const BlockSeries& s : series) {
    for (const Chunk& c : s.chunks) t = std::min(t, c.min_t);
  }
  return t == std::numeric_limits<int64_t>::max() ? 0 : t;
}

int64_t Block::MaxTime() const {
  int64_t t = std::numeric_limits<int64_t>::min();
  for (const BlockSeries& s : series) {
    for (const Chunk& c : s.chunks) t = std::max(t, c.max_t);
  }
  return t == std::numeric_limits<int64_t>::min() ? 0 : t;
}

std::string EncodeBlock(const Block& block) {
  std::string series;
  std::string chunks;
  uint64_t num_chunks = 0;
  for (size_t i = 0; i < block.series.size(); ++i) {
    const BlockSeries& s = block.series[i];
    encoding::PutUvarint(series, s.labels.size());
    for (const Label& l : s.labels) {
      encoding::PutLengthPrefixed(series, l.name);
      encoding::PutLengthPrefixed(series, l.value);
    }
    for (const Chunk& c : s.chunks) {
      encoding::PutUvarint(chunks, i);
      encoding::PutVarint(chunks, c.min_t);
      encoding::PutUvarint(chunks, static_cast<uint64_t>(c.max_t - c.min_t));
      encoding::PutUvarint(chunks, c.num_samples);
      encoding::PutLengthPrefixed(chunks, c.bytes());
      ++num_chunks;
    }
  }
  std::string out;
  out.reserve(64 + 8 * block.sources.size() + series.size() + chunks.size() + 12);
  out.append(kMagic);
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(block.tier));
  out.append(2, '\0');  // reserved
  encoding::PutFixed64(out, block.seq);
  encoding::PutFixed64(out, static_cast<uint64_t>(block.MinTime()));
  encoding::PutFixed64(out, static_cast<uint64_t>(block.MaxTime()));
  encoding::PutFixed64(out, block.series.size());
  encoding::PutFixed64(out, num_chunks);
  encoding::PutFixed64(out, series.size());
  encoding::PutFixed64(out, chunks.size());
  encoding::PutFixed32(out, static_cast<uint32_t>(block.sources.size()));
  for (uint64_t s : block.sources) encoding::PutFixed64(out, s);
  encoding::PutFixed32(out, encoding::Crc32c(out));
  out += series;
  encoding::PutFixed32(out, encoding::Crc32c(series));
  out += chunks;
  encoding::PutFixed32(out, encoding::Crc32c(chunks));
  return out;
}

core::Result<Block> DecodeBlock(std::string_view data) {
  encoding::Reader r(data);
  if (r.Bytes(4) != kMagic) return Corrupt("bad magic");
  const uint8_t version = r.Byte();
  if (version != kVersion) return Corrupt("unsupported version " + std::to_string(version));
  const uint8_t tier = r.Byte();
  const uint8_t reserved0 = r.Byte();
  const uint8_t reserved1 = r.Byte();
  Block block;
  block.seq = r.Fixed64();
  const int64_t min_t = static_cast<int64_t>(r.Fixed64());
  const int64_t max_t = static_cast<int64_t>(r.Fixed64());
  const uint64_t num_series = r.Fixed64();
  const uint64_t num_chunks = r.Fixed64();
  const uint64_t series_bytes = r.Fixed64();
  const uint64_t chunk_bytes = r.Fixed64();
  const uint32_t num_sources = r.Fixed32();
  if (!r.ok()) return Corrupt("truncated header");
  if (num_sources > kMaxSources || num_sources * uint64_t{8} > r.remaining()) {
    return Corrupt("truncated header");
  }
  for (uint32_t i = 0; i < num_sources; ++i) block.sources.push_back(r.Fixed64());
  const size_t header_len = r.pos();
  const uint32_t header_crc = r.Fixed32();
  if (!r.ok()) return Corrupt("truncated header");
  if (encoding::Crc32c(data.substr(0, header_len)) != header_crc) {
    return Corrupt("header checksum mismatch");
  }
  if (tier > 1 || reserved0 != 0 || reserved1 != 0) return Corrupt("bad tier or reserved bytes");
  block.tier = static_cast<Tier>(tier);
  // The sections must fill the rest of the file exactly; checked before reading them so a
  // truncated file is reported as such, not as a checksum mismatch.
  if (series_bytes > r.remaining() || chunk_bytes > r.remaining() ||
      r.remaining() != series_bytes + chunk_bytes + 8) {
    return Corrupt("truncated or oversized file (sections do not match the header)");
  }
  const std::string_view series_sec = r.Bytes(series_bytes);
  if (encoding::Crc32c(series_sec) != r.Fixed32()) return Corrupt("series checksum mismatch");
  const std::string_view chunk_sec = r.Bytes(chunk_bytes);
  if (encoding::Crc32c(chunk_sec) != r.Fixed32()) return Corrupt("chunk checksum mismatch");

  // Each series takes at least one byte, each chunk at least five.
  if (num_series > series_bytes || num_chunks > chunk_bytes / 5 + 1) {
    return Corrupt("counts exceed section sizes");
  }
  encoding::Reader sr(series_sec);
  block.series.resize(num_series);
  for (BlockSeries& s : block.series) {
    const uint64_t n = sr.Uvarint();
    if (!sr.ok() || n > kMaxLabelsPerSeries) return Corrupt("bad label count");
    s.labels.reserve(n);
    for (uint64_t i = 0; i < n && sr.ok(); ++i) {
      Label l;
      l.name = std::string(sr.LengthPrefixed());
      l.value = std::string(sr.LengthPrefixed());
      s.labels.push_back(std::move(l));
    }
    if (!sr.ok()) return Corrupt("truncated series section");
    if (!IsValidLabels(s.labels)) return Corrupt("invalid label set " + LabelsToString(s.labels));
  }
  if (sr.remaining() != 0) return Corrupt("trailing bytes in series section");

  encoding::Reader cr(chunk_sec);
  int64_t seen_min = std::numeric_limits<int64_t>::max();
  int64_t seen_max = std::numeric_limits<int64_t>::min();
  for (uint64_t i = 0; i < num_chunks; ++i) {
    const uint64_t idx = cr.Uvarint();
    Chunk c;
    c.min_t = cr.Varint();
    const uint64_t span = cr.Uvarint();
    const uint64_t n = cr.Uvarint();
    const std::string_view bytes = cr.LengthPrefixed();
    if (!cr.ok()) return Corrupt("truncated chunk section");
    if (idx >= num_series) return Corrupt("chunk names a series out of range");
    if (n == 0 || n > ChunkEncoder::kMaxSamples || bytes.empty()) {
      return Corrupt("bad chunk sample count");
    }
    if (span > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() - c.min_t)) {
      return Corrupt("bad chunk time range");
    }
    c.max_t = c.min_t + static_cast<int64_t>(span);
    c.num_samples = static_cast<uint32_t>(n);
    c.size = static_cast<uint32_t>(bytes.size());
    auto buf = std::make_shared_for_overwrite<uint8_t[]>(bytes.size());
    std::memcpy(buf.get(), bytes.data(), bytes.size());
    c.data = std::move(buf);
    std::vector<Chunk>& list = block.series[idx].chunks;
    if (!list.empty() && c.min_t <= list.back().max_t) return Corrupt("overlapping chunks");
    seen_min = std::min(seen_min, c.min_t);
    seen_max = std::max(seen_max, c.max_t);
    list.push_back(std::move(c));
  }
  if (cr.remaining() != 0) return Corrupt("trailing bytes in chunk section");
  if (num_chunks > 0 && (seen_min != min_t || seen_max != max_t)) {
    return Corrupt("header time range does not match the chunks");
  }
  return block;
}

std::string BlockPath(std::string_view dir, Tier tier, uint64_t seq) {
  char num[32];
  std::snprintf(num, sizeof num, "%020llu", static_cast<unsigned long long>(seq));
  std::string path(dir);
  path += '/';
  path += TierName(tier);
  path += '-';
  path += num;
  path += ".block";
  return path;
}

core::Status WriteBlockFile(std::string_view dir, const Block& block, BlockMeta* meta) {
  const std::string path = BlockPath(dir, block.tier, block.seq);
  const std::string tmp = path + ".tmp";
  const std::string data = EncodeBlock(block);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("create", tmp, errno);
  if (!WriteAll(fd, data) || ::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return IoError("write", tmp, err);
  }
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return IoError("close", tmp, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return IoError("rename", tmp, err);
  }
  const std::string dir_str(dir);
  const int dfd = ::open(dir_str.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return IoError("open directory", dir_str, errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return IoError("sync directory", dir_str, err);
  if (meta != nullptr) {
    meta->path = path;
    meta->tier = block.tier;
    meta->seq = block.seq;
    meta->min_t = block.MinTime();
    meta->max_t = block.MaxTime();
    meta->bytes = data.size();
    meta->sources = block.sources;
  }
  return core::Status::Ok();
}

core::Result<Block> ReadBlockFile(const std::string& path, uint64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError("stat", path, err);
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return core::Internal(path + ": block file larger than the limit of " +
                          std::to_string(max_bytes) + " bytes");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(got);
  auto block = DecodeBlock(data);
  if (!block.ok()) return core::Internal(path + ": " + block.status().message());
  return block;
}

}  // namespace llmscope::tsdb
