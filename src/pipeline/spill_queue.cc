#include "pipeline/spill_queue.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/crc32c.h"

namespace llmscope::pipeline {
namespace {

constexpr std::array<uint8_t, 4> kMagic = {0xC7, 'S', 'P', 'L'};
constexpr uint8_t kFrameVersion = 1;
constexpr size_t kHeaderBytes = 24;
constexpr size_t kCrcOffset = 20;

constexpr std::string_view kPositionFile = "read_position";
constexpr std::string_view kPositionTempFile = "read_position.tmp";
constexpr std::string_view kLockFile = "LOCK";
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr size_t kSegmentDigits = 20;
constexpr std::array<uint8_t, 8> kPositionMagic = {'L', 'S', 'P', 'Q', 'P', 'O', 'S', '1'};
constexpr size_t kPositionBytes = 8 + 8 + 8 + 4;

// Resync scans this many bytes per read when looking for the next frame.
constexpr size_t kScanChunk = 64 * 1024;

void PutLe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

core::Status IoError(std::string_view what, const std::string& path, int err) {
  return core::Internal("spill queue: " + std::string(what) + " " + path + ": " +
                        std::error_code(err, std::generic_category()).message());
}

// Reads up to n bytes at off, looping over short reads; returns the bytes read (< n only at
// end of file) or -1 with errno set.
ssize_t PreadFull(int fd, void* buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

// Writes all n bytes at off; returns 0 or an errno value.
int PwriteFull(int fd, const void* buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pwrite(fd, static_cast<const char*>(buf) + done, n - done,
                               static_cast<off_t>(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (r == 0) return EIO;
    done += static_cast<size_t>(r);
  }
  return 0;
}

struct FrameHeader {
  RecordKind kind = RecordKind::kCalls;
  uint32_t length = 0;
  int64_t unix_nanos = 0;
  uint32_t crc = 0;
};

// Checks the fields a header can be judged by alone.
std::optional<FrameHeader> ParseHeader(const uint8_t* h, uint32_t max_record_bytes) {
  if (std::memcmp(h, kMagic.data(), kMagic.size()) != 0) return std::nullopt;
  if (h[4] != kFrameVersion) return std::nullopt;
  if (h[5] != static_cast<uint8_t>(RecordKind::kCalls) &&
      h[5] != static_cast<uint8_t>(RecordKind::kSpans)) {
    return std::nullopt;
  }
  if (h[6] != 0 || h[7] != 0) return std::nullopt;
  FrameHeader f;
  f.kind = static_cast<RecordKind>(h[5]);
  f.length = static_cast<uint32_t>(GetLe(h + 8, 4));
  f.unix_nanos = static_cast<int64_t>(GetLe(h + 12, 8));
  f.crc = static_cast<uint32_t>(GetLe(h + kCrcOffset, 4));
  if (f.length > max_record_bytes) return std::nullopt;
  return f;
}

uint32_t FrameCrc(const uint8_t* header, std::string_view payload) {
  // The magic is left out: it only finds frames. Everything that gives a frame its meaning
  // (version, kind, length, time) is covered with the payload.
  const uint32_t c = core::Crc32cExtend(0, header + 4, kCrcOffset - 4);
  return core::Crc32cExtend(c, payload.data(), payload.size());
}

std::array<uint8_t, kHeaderBytes> MakeHeader(RecordKind kind, std::string_view payload,
                                             int64_t unix_nanos) {
  std::array<uint8_t, kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic.data(), kMagic.size());
  h[4] = kFrameVersion;
  h[5] = static_cast<uint8_t>(kind);
  PutLe(h.data() + 8, payload.size(), 4);
  PutLe(h.data() + 12, static_cast<uint64_t>(unix_nanos), 8);
  PutLe(h.data() + kCrcOffset, FrameCrc(h.data(), payload), 4);
  return h;
}

enum class FrameCheck { kValid, kInvalid, kIoError };

// Reads and checks the frame at `off`, which must end at or before `end`. On kValid fills
// `header` and `payload`; on kIoError errno is set.
FrameCheck ReadFrame(int fd, uint64_t off, uint64_t end, uint32_t max_record_bytes,
                     FrameHeader& header, std::string& payload) {
  if (off > end || end - off < kHeaderBytes) return FrameCheck::kInvalid;
  std::array<uint8_t, kHeaderBytes> h;
  const ssize_t r = PreadFull(fd, h.data(), h.size(), off);
  if (r < 0) return FrameCheck::kIoError;
  if (static_cast<size_t>(r) < h.size()) return FrameCheck::kInvalid;
  std::optional<FrameHeader> parsed = ParseHeader(h.data(), max_record_bytes);
  if (!parsed) return FrameCheck::kInvalid;
  if (end - off - kHeaderBytes < parsed->length) return FrameCheck::kInvalid;
  payload.resize(parsed->length);
  const ssize_t p = PreadFull(fd, payload.data(), parsed->length, off + kHeaderBytes);
  if (p < 0) return FrameCheck::kIoError;
  if (static_cast<size_t>(p) < parsed->length) return FrameCheck::kInvalid;
  if (FrameCrc(h.data(), payload) != parsed->crc) return FrameCheck::kInvalid;
  header = *parsed;
  return FrameCheck::kValid;
}

// The offset of the first valid frame that starts in [from, end), or `end` when there is
// none. Looks for the magic bytes and checks each candidate completely (a payload may
// contain the magic by chance; its CRC will not match).
core::Result<uint64_t> FindNextFrame(int fd, const std::string& path, uint64_t from, uint64_t end,
                                     uint32_t max_record_bytes, std::string& scratch) {
  std::vector<uint8_t> chunk(kScanChunk);
  FrameHeader header;
  uint64_t base = from;
  while (base < end && end - base >= kHeaderBytes) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kScanChunk, end - base));
    const ssize_t r = PreadFull(fd, chunk.data(), want, base);
    if (r < 0) return IoError("read", path, errno);
    const auto got = static_cast<size_t>(r);
    if (got < kMagic.size()) break;
    for (size_t i = 0; i + kMagic.size() <= got; ++i) {
      if (chunk[i] != kMagic[0] || std::memcmp(&chunk[i], kMagic.data(), kMagic.size()) != 0) {
        continue;
      }
      switch (ReadFrame(fd, base + i, end, max_record_bytes, header, scratch)) {
        case FrameCheck::kValid:
          return base + i;
        case FrameCheck::kIoError:
          return IoError("read", path, errno);
        case FrameCheck::kInvalid:
          break;
      }
    }
    if (got < want) break;  // the file is shorter than we were told
    // Overlap by the magic's length minus one so a magic split across chunks is found.
    base += got - (kMagic.size() - 1);
  }
  return end;
}

// The sequence number in a segment file name, or nullopt for any other name.
std::optional<uint64_t> ParseSegmentName(std::string_view name) {
  if (name.size() != kSegmentDigits + kSegmentSuffix.size() ||
      name.substr(kSegmentDigits) != kSegmentSuffix) {
    return std::nullopt;
  }
  uint64_t seq = 0;
  const char* first = name.data();
  const char* last = name.data() + kSegmentDigits;
  auto [ptr, ec] = std::from_chars(first, last, seq);
  if (ec != std::errc() || ptr != last) return std::nullopt;
  return seq;
}

}  // namespace

// An owned file descriptor and the path it was opened from (for error messages).
class SpillQueue::File {
 public:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  const int fd_;
  const std::string path_;
};

SpillQueue::SpillQueue(SpillQueueOptions options, const core::Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

SpillQueue::~SpillQueue() {
  reader_.reset();
  active_.reset();
  unsynced_files_.clear();
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

core::Result<std::unique_ptr<SpillQueue>> SpillQueue::Open(SpillQueueOptions options,
                                                           const core::Clock& clock) {
  std::vector<std::string> problems;
  if (options.dir.empty()) problems.push_back("dir must not be empty");
  if (options.max_bytes == 0) problems.push_back("max_bytes must be at least 1");
  if (options.segment_bytes == 0) problems.push_back("segment_bytes must be at least 1");
  if (options.max_record_bytes == 0 || options.max_record_bytes == UINT32_MAX) {
    problems.push_back("max_record_bytes must be in 1..4294967294");
  }
  if (options.sync_interval.count() < 0) problems.push_back("sync_interval must be >= 0");
  if (!problems.empty()) {
    std::string message = "spill queue options:";
    for (const std::string& p : problems) message += " " + p + ";";
    message.pop_back();
    return core::InvalidArgument(std::move(message));
  }
  std::unique_ptr<SpillQueue> q(new SpillQueue(std::move(options), clock));
  if (core::Status s = q->Recover(); !s.ok()) return s;
  return q;
}

std::string SpillQueue::SegmentPath(uint64_t seq) const {
  std::array<char, kSegmentDigits + 1> digits;
  std::snprintf(digits.data(), digits.size(), "%020llu", static_cast<unsigned long long>(seq));
  return options_.dir + "/" + digits.data() + std::string(kSegmentSuffix);
}

core::Status SpillQueue::Recover() {
  const std::string& dir = options_.dir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return core::Internal("spill queue: create directory " + dir + ": " + ec.message());
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) return IoError("open directory", dir, errno);

  const std::string lock_path = dir + "/" + std::string(kLockFile);
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return IoError("open", lock_path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return core::FailedPrecondition("spill queue: " + dir +
                                      " is in use by another spill queue (" + lock_path +
                                      " is locked)");
    }
    return IoError("lock", lock_path, errno);
  }

  // The persisted position. A missing or damaged file means "from the start": records are
  // delivered again rather than skipped (consumers are idempotent).
  Position start;
  const std::string pos_path = dir + "/" + std::string(kPositionFile);
  if (int fd = ::open(pos_path.c_str(), O_RDONLY | O_CLOEXEC); fd >= 0) {
    std::array<uint8_t, kPositionBytes> buf{};
    const ssize_t r = PreadFull(fd, buf.data(), buf.size(), 0);
    ::close(fd);
    if (r == static_cast<ssize_t>(buf.size()) &&
        std::memcmp(buf.data(), kPositionMagic.data(), kPositionMagic.size()) == 0 &&
        core::Crc32cExtend(0, buf.data(), kPositionBytes - 4) == GetLe(buf.data() + 24, 4)) {
      start.seq = GetLe(buf.data() + 8, 8);
      start.offset = GetLe(buf.data() + 16, 8);
    }
  } else if (errno != ENOENT) {
    return IoError("open", pos_path, errno);
  }
  const std::string tmp_path = dir + "/" + std::string(kPositionTempFile);
  if (::unlink(tmp_path.c_str()) != 0 && errno != ENOENT) {
    return IoError("remove", tmp_path, errno);
  }

  std::vector<uint64_t> seqs;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (std::optional<uint64_t> seq = ParseSegmentName(it->path().filename().string())) {
      seqs.push_back(*seq);
    }
  }
  if (ec) return core::Internal("spill queue: list " + dir + ": " + ec.message());
  std::sort(seqs.begin(), seqs.end());

  std::lock_guard lock(mu_);
  for (uint64_t seq : seqs) {
    if (seq < start.seq) {
      // Consumed before the last position was persisted; its deletion did not happen.
      const std::string path = SegmentPath(seq);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return IoError("remove", path, errno);
      dir_dirty_ = true;
      continue;
    }
    Segment& segment = segments_.emplace_back();
    segment.seq = seq;
    if (core::Status s = RecoverSegment(segment, seq == start.seq ? start.offset : 0); !s.ok()) {
      return s;
    }
  }
  next_seq_ = std::max(seqs.empty() ? 1 : seqs.back() + 1, start.seq + 1);
  if (segments_.empty()) {
    read_ = {next_seq_, 0};
  } else if (segments_.front().seq == start.seq) {
    read_ = {start.seq, std::min(start.offset, segments_.front().size)};
  } else {
    read_ = {segments_.front().seq, 0};
  }
  // A position that had to be moved to the first segment needs no write: recovery moves it
  // the same way next time.
  std::vector<std::string> consumed;
  CollectConsumedLocked(consumed);
  if (dir_dirty_) MarkUnsyncedLocked();
  return Unlink(consumed);
}

core::Status SpillQueue::RecoverSegment(Segment& segment, uint64_t start_offset) {
  const std::string path = SegmentPath(segment.seq);
  File file(::open(path.c_str(), O_RDWR | O_CLOEXEC), path);
  if (file.fd() < 0) return IoError("open", path, errno);
  struct stat st {};
  if (::fstat(file.fd(), &st) != 0) return IoError("stat", path, errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t off = std::min(start_offset, size);
  FrameHeader header;
  while (off < size) {
    switch (ReadFrame(file.fd(), off, size, options_.max_record_bytes, header, scratch_)) {
      case FrameCheck::kValid:
        ++records_;
        if (!oldest_unix_nanos_) oldest_unix_nanos_ = header.unix_nanos;
        off += kHeaderBytes + header.length;
        continue;
      case FrameCheck::kIoError:
        return IoError("read", path, errno);
      case FrameCheck::kInvalid:
        break;
    }
    core::Result<uint64_t> next =
        FindNextFrame(file.fd(), path, off + 1, size, options_.max_record_bytes, scratch_);
    if (!next.ok()) return next.status();
    if (*next < size) {
      ++corrupt_;
      known_corrupt_[{segment.seq, off}] = *next;
      off = *next;
      continue;
    }
    // Nothing valid follows: the write of the last frame was cut short.
    if (::ftruncate(file.fd(), static_cast<off_t>(off)) != 0) {
      return IoError("truncate", path, errno);
    }
    if (::fdatasync(file.fd()) != 0) return IoError("sync", path, errno);
    ++torn_;
    size = off;
  }
  segment.size = size;
  bytes_ += size;
  scratch_.clear();
  scratch_.shrink_to_fit();  // recovery may have read one very large frame
  return core::Status::Ok();
}

void SpillQueue::MarkUnsyncedLocked() {
  if (!unsynced_since_) unsynced_since_ = clock_.Now();
}

void SpillQueue::CollectConsumedLocked(std::vector<std::string>& unlink) {
  while (!segments_.empty() && read_.seq == segments_.front().seq &&
         read_.offset >= segments_.front().size) {
    // The back segment is the active one when active_ is set; deleting it (the queue is
    // empty) makes the next append start a fresh segment, so idle queues take no space.
    if (segments_.size() == 1) active_.reset();
    unlink.push_back(SegmentPath(segments_.front().seq));
    bytes_ -= segments_.front().size;
    segments_.pop_front();
    read_ = segments_.empty() ? Position{next_seq_, 0} : Position{segments_.front().seq, 0};
    dir_dirty_ = true;
    position_dirty_ = true;
    MarkUnsyncedLocked();
  }
  if (segments_.empty()) {
    // Only corruption found after recovery can leave the count above zero here.
    records_ = 0;
    oldest_unix_nanos_.reset();
  }
}

core::Status SpillQueue::Unlink(const std::vector<std::string>& paths) {
  core::Status first;
  for (const std::string& path : paths) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && first.ok()) {
      first = IoError("remove", path, errno);
    }
  }
  return first;
}

core::Status SpillQueue::Append(RecordKind kind, std::string_view payload) {
  if (payload.size() > options_.max_record_bytes) {
    std::lock_guard lock(mu_);
    ++dropped_;
    return core::InvalidArgument("spill queue: record of " + std::to_string(payload.size()) +
                                 " bytes exceeds max_record_bytes " +
                                 std::to_string(options_.max_record_bytes));
  }
  const int64_t now = clock_.UnixNanos();
  const std::array<uint8_t, kHeaderBytes> header = MakeHeader(kind, payload, now);
  const uint64_t frame = kHeaderBytes + payload.size();

  std::lock_guard lock(mu_);
  if (bytes_ + frame > options_.max_bytes) {
    ++dropped_;
    return core::Status(core::StatusCode::kResourceExhausted,
                        "spill queue: full (" + std::to_string(bytes_) + " of " +
                            std::to_string(options_.max_bytes) + " bytes used, record needs " +
                            std::to_string(frame) + ")");
  }
  if (active_ != nullptr && segments_.back().size > 0 &&
      segments_.back().size + frame > options_.segment_bytes) {
    active_.reset();  // roll; a pending sync of it stays in unsynced_files_
  }
  if (active_ == nullptr) {
    const uint64_t seq = next_seq_;
    std::string path = SegmentPath(seq);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
      ++dropped_;
      return IoError("create", path, errno);
    }
    ++next_seq_;
    active_ = std::make_shared<File>(fd, std::move(path));
    if (segments_.empty()) read_ = {seq, 0};
    segments_.push_back({seq, 0});
    dir_dirty_ = true;
  }
  Segment& segment = segments_.back();
  const uint64_t off = segment.size;
  int err = PwriteFull(active_->fd(), header.data(), header.size(), off);
  if (err == 0) err = PwriteFull(active_->fd(), payload.data(), payload.size(), off + kHeaderBytes);
  if (err != 0) {
    // Cut the partial frame off; if even that fails, the reader never looks past
    // segment.size in this process and recovery treats the rest as a torn tail.
    (void)::ftruncate(active_->fd(), static_cast<off_t>(off));
    core::Status s = IoError("write", active_->path(), err);
    active_.reset();
    ++dropped_;
    return s;
  }
  segment.size += frame;
  bytes_ += frame;
  ++records_;
  if (!oldest_unix_nanos_) oldest_unix_nanos_ = now;
  if (unsynced_files_.empty() || unsynced_files_.back() != active_) {
    unsynced_files_.push_back(active_);
  }
  MarkUnsyncedLocked();
  return core::Status::Ok();
}

core::Result<SpillQueue::File*> SpillQueue::ReaderFile(uint64_t seq) {
  if (reader_ != nullptr && reader_seq_ == seq) return reader_.get();
  reader_.reset();
  std::string path = SegmentPath(seq);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open", path, errno);
  reader_ = std::make_unique<File>(fd, std::move(path));
  reader_seq_ = seq;
  return reader_.get();
}

core::Result<std::optional<SpillRecord>> SpillQueue::Peek() {
  peeked_.reset();
  FrameHeader header;
  while (true) {
    Position at;
    uint64_t end = 0;
    bool skipped_known = false;
    std::vector<std::string> consumed;
    {
      std::lock_guard lock(mu_);
      CollectConsumedLocked(consumed);
      if (segments_.empty()) {
        if (!consumed.empty()) (void)Unlink(consumed);
        return std::optional<SpillRecord>();
      }
      if (auto it = known_corrupt_.find({read_.seq, read_.offset}); it != known_corrupt_.end()) {
        read_.offset = it->second;  // counted by recovery already
        known_corrupt_.erase(it);
        position_dirty_ = true;
        MarkUnsyncedLocked();
        skipped_known = true;
      } else {
        at = read_;
        end = segments_.front().size;
      }
    }
    if (!consumed.empty()) {
      if (core::Status s = Unlink(consumed); !s.ok()) return s;
    }
    if (skipped_known) continue;  // look again from the resync point

    core::Result<File*> file = ReaderFile(at.seq);
    if (!file.ok()) return file.status();
    std::string payload;
    switch (ReadFrame((*file)->fd(), at.offset, end, options_.max_record_bytes, header, payload)) {
      case FrameCheck::kValid: {
        peeked_ = Peeked{at, kHeaderBytes + header.length};
        SpillRecord record;
        record.kind = header.kind;
        record.append_unix_nanos = header.unix_nanos;
        record.payload = std::move(payload);
        return std::optional<SpillRecord>(std::move(record));
      }
      case FrameCheck::kIoError:
        return IoError("read", (*file)->path(), errno);
      case FrameCheck::kInvalid:
        break;
    }
    core::Result<uint64_t> next = FindNextFrame((*file)->fd(), (*file)->path(), at.offset + 1, end,
                                                options_.max_record_bytes, scratch_);
    if (!next.ok()) return next.status();
    std::lock_guard lock(mu_);
    if (read_.seq == at.seq && read_.offset == at.offset) {
      ++corrupt_;
      // How many records the region held is unknown; one is the best estimate, and the
      // count is reset to 0 whenever the queue is found empty.
      if (records_ > 0) --records_;
      read_.offset = *next;
      position_dirty_ = true;
      MarkUnsyncedLocked();
    }
  }
}

core::Status SpillQueue::Ack() {
  if (!peeked_) return core::FailedPrecondition("spill queue: Ack without a peeked record");
  const Peeked done = *peeked_;
  peeked_.reset();
  std::vector<std::string> consumed;
  Position head;
  bool refresh = false;
  {
    std::lock_guard lock(mu_);
    if (read_.seq != done.at.seq || read_.offset != done.at.offset) {
      return core::FailedPrecondition("spill queue: Ack of a record that is no longer next");
    }
    read_.offset += done.frame_bytes;
    if (records_ > 0) --records_;
    position_dirty_ = true;
    MarkUnsyncedLocked();
    CollectConsumedLocked(consumed);
    if (records_ == 0) {
      oldest_unix_nanos_.reset();
    } else {
      head = read_;
      refresh = true;
    }
  }
  core::Status s = Unlink(consumed);
  if (refresh) RefreshHeadTimestamp(head);
  return s;
}

void SpillQueue::RefreshHeadTimestamp(Position at) {
  core::Result<File*> file = ReaderFile(at.seq);
  if (!file.ok()) return;
  std::array<uint8_t, kHeaderBytes> h;
  if (PreadFull((*file)->fd(), h.data(), h.size(), at.offset) != static_cast<ssize_t>(h.size())) {
    return;
  }
  std::optional<FrameHeader> parsed = ParseHeader(h.data(), options_.max_record_bytes);
  if (!parsed) return;  // Peek will resync; the previous (older) time stays meanwhile
  std::lock_guard lock(mu_);
  if (read_.seq == at.seq && read_.offset == at.offset && records_ > 0) {
    oldest_unix_nanos_ = parsed->unix_nanos;
  }
}

core::Status SpillQueue::WritePosition(Position pos) {
  std::array<uint8_t, kPositionBytes> buf{};
  std::memcpy(buf.data(), kPositionMagic.data(), kPositionMagic.size());
  PutLe(buf.data() + 8, pos.seq, 8);
  PutLe(buf.data() + 16, pos.offset, 8);
  PutLe(buf.data() + 24, core::Crc32cExtend(0, buf.data(), kPositionBytes - 4), 4);
  const std::string tmp = options_.dir + "/" + std::string(kPositionTempFile);
  const std::string final_path = options_.dir + "/" + std::string(kPositionFile);
  {
    File f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), tmp);
    if (f.fd() < 0) return IoError("create", tmp, errno);
    if (int err = PwriteFull(f.fd(), buf.data(), buf.size(), 0); err != 0) {
      return IoError("write", tmp, err);
    }
    if (::fdatasync(f.fd()) != 0) return IoError("sync", tmp, errno);
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) return IoError("rename", tmp, errno);
  if (::fsync(dir_fd_) != 0) return IoError("sync directory", options_.dir, errno);
  return core::Status::Ok();
}

core::Status SpillQueue::Sync() {
  std::vector<std::shared_ptr<File>> files;
  bool dir = false;
  std::optional<Position> pos;
  std::optional<core::MonoTime> since;
  {
    std::lock_guard lock(mu_);
    files.swap(unsynced_files_);
    dir = dir_dirty_;
    if (position_dirty_) pos = read_;
    since = unsynced_since_;
    dir_dirty_ = false;
    position_dirty_ = false;
    unsynced_since_.reset();
  }
  core::Status status;
  for (const std::shared_ptr<File>& f : files) {
    if (::fdatasync(f->fd()) != 0) {
      status = IoError("sync", f->path(), errno);
      break;
    }
  }
  if (status.ok() && dir && ::fsync(dir_fd_) != 0) {
    status = IoError("sync directory", options_.dir, errno);
  }
  if (status.ok() && pos) status = WritePosition(*pos);
  if (status.ok()) return status;

  std::lock_guard lock(mu_);
  // Linux may drop dirty pages after a failed fdatasync and report success on a retry, so
  // new appends go to a fresh segment; the pending work is kept for the next Sync.
  active_.reset();
  files.insert(files.end(), unsynced_files_.begin(), unsynced_files_.end());
  unsynced_files_ = std::move(files);
  dir_dirty_ = dir_dirty_ || dir;
  position_dirty_ = position_dirty_ || pos.has_value();
  if (since && (!unsynced_since_ || *since < *unsynced_since_)) unsynced_since_ = since;
  return status;
}

core::Status SpillQueue::MaybeSync() {
  std::optional<core::MonoTime> due = sync_due();
  if (!due || clock_.Now() < *due) return core::Status::Ok();
  return Sync();
}

std::optional<core::MonoTime> SpillQueue::sync_due() const {
  std::lock_guard lock(mu_);
  if (!unsynced_since_) return std::nullopt;
  return *unsynced_since_ + options_.sync_interval;
}

uint64_t SpillQueue::bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

uint64_t SpillQueue::records() const {
  std::lock_guard lock(mu_);
  return records_;
}

std::optional<int64_t> SpillQueue::oldest_append_unix_nanos() const {
  std::lock_guard lock(mu_);
  return oldest_unix_nanos_;
}

std::optional<core::Nanos> SpillQueue::oldest_age() const {
  std::optional<int64_t> oldest = oldest_append_unix_nanos();
  if (!oldest) return std::nullopt;
  return core::Nanos(std::max<int64_t>(0, clock_.UnixNanos() - *oldest));
}

uint64_t SpillQueue::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

uint64_t SpillQueue::corrupt_records() const {
  std::lock_guard lock(mu_);
  return corrupt_;
}

uint64_t SpillQueue::torn_tails() const {
  std::lock_guard lock(mu_);
  return torn_;
}

}  // namespace llmscope::pipeline
