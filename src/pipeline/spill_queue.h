#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "pipeline/record_codec.h"

namespace llmscope::pipeline {

// Settings of a SpillQueue, fixed at Open.
struct SpillQueueOptions {
  // The directory that holds the segment files, the read position and a lock file. Created
  // (with its parents) when missing. REQUIRES: non-empty.
  std::string dir;
  // The most bytes the segment files may take together: frames with their headers, counting
  // the acknowledged records of a segment not yet deleted. An append that would go beyond is
  // refused (RESOURCE_EXHAUSTED) and counted in dropped(). REQUIRES: >= 1.
  uint64_t max_bytes = uint64_t{1} << 30;  // 1 GiB
  // A new segment is started when the next frame would take the current one past this size
  // (a single frame larger than this gets a segment of its own). Whole segments are deleted
  // once every record in them is acknowledged, so this is also the granularity at which disk
  // space comes back. REQUIRES: >= 1.
  uint64_t segment_bytes = uint64_t{16} << 20;  // 16 MiB
  // The largest payload Append accepts (INVALID_ARGUMENT beyond it). Recovery and reads
  // treat a frame that claims a longer payload as corrupt. REQUIRES: 1..(4 GiB - 1).
  uint32_t max_record_bytes = uint32_t{64} << 20;  // 64 MiB
  // The longest appended data or acknowledgements may stay unsynced: sync_due() is this long
  // after the first change since the last Sync. The queue has no thread of its own; its
  // owner calls MaybeSync (StoreWriter's thread does). REQUIRES: >= 0.
  core::Nanos sync_interval = std::chrono::seconds(1);
};

// One record as read back.
struct SpillRecord {
  RecordKind kind = RecordKind::kCalls;
  int64_t append_unix_nanos = 0;  // the Clock's UnixNanos() when it was appended
  std::string payload;
};

// Thread-safety: Append and every accessor may be called from any number of threads at
// once. Peek, Ack, Sync and MaybeSync are the consumer's and must not run concurrently with
// each other (one consumer thread); they run concurrently with Append. No method holds the
// internal mutex across fdatasync or a payload read, so an Append never waits for a sync.
//
// A bounded, durable FIFO of opaque records on disk: append-only segment files
// <dir>/<20-digit sequence>.seg, each a run of frames:
//
//   magic "\xC7SPL" | version:u8 = 1 | kind:u8 | reserved:u16 = 0 | payload length:u32 |
//   append time:i64 (Unix ns) | crc:u32 | payload
//
// (integers little-endian; crc is CRC-32C of the header bytes from version through the
// append time, then the payload). The read position (segment, offset) is kept in
// <dir>/read_position, replaced atomically (write a temporary, fdatasync, rename, fsync the
// directory), so a restart resumes at the last persisted position. <dir>/LOCK holds an
// exclusive flock for the queue's lifetime: one queue per directory, across processes.
//
// Durability contract:
//   * Append returns OK once the frame is written to the segment file with write(2): from
//     then on it survives the process being killed (kill -9, a crash), because the data is
//     in the kernel. It survives an OS crash or power loss only once a Sync that started
//     after the Append has returned OK (fdatasync of the segment, fsync of the directory
//     for created or deleted segments). So: everything appended before the last successful
//     Sync survives any failure; later appends survive a process death but not a machine
//     failure, where the unsynced tail may be lost or torn (recovery truncates it).
//   * Ack advances the read position in memory; the position is persisted by the next
//     Sync. After a failure, records acknowledged since the last Sync are delivered again
//     (at least once, never lost). Consumers must therefore be idempotent per record;
//     storage::Store writes are (idempotent per key).
//
// Recovery (Open) scans every segment from the read position and checks each frame (magic,
// version, kind, reserved bytes, length within max_record_bytes and the file, CRC). A bad
// region followed by a valid frame is a corrupt record: skipped (the reader resyncs to the
// next valid frame) and counted in corrupt_records(). A bad region that runs to the end of
// its segment is a torn tail (a write cut short by a crash): the file is truncated there
// and it is counted in torn_tails(). New appends always go to a fresh segment. A frame that
// turns bad after recovery (the disk changed under us) is skipped the same way by Peek and
// counted once. Nothing in a segment's content can make Open or Peek crash.
class SpillQueue {
 public:
  // Opens (creating if needed) the queue in options.dir and recovers it (see above).
  // `clock` is borrowed and must outlive the queue. Errors: INVALID_ARGUMENT for options
  // outside their REQUIRES; FAILED_PRECONDITION when another queue holds the directory's
  // lock; INTERNAL (naming the path and the system error) for an I/O failure.
  static core::Result<std::unique_ptr<SpillQueue>> Open(SpillQueueOptions options,
                                                        const core::Clock& clock);
  // Closes the files without syncing: call Sync first to make recent appends and
  // acknowledgements durable against machine failure.
  ~SpillQueue();
  SpillQueue(const SpillQueue&) = delete;
  SpillQueue& operator=(const SpillQueue&) = delete;

  // Appends one record stamped with the Clock's UnixNanos(). Never syncs. Errors (the record
  // is not in the queue, and dropped() counts it): RESOURCE_EXHAUSTED when the segments
  // would exceed max_bytes; INVALID_ARGUMENT for a payload over max_record_bytes; INTERNAL
  // for a failed write (the partial frame is cut off, and the next append starts a new
  // segment).
  core::Status Append(RecordKind kind, std::string_view payload);

  // The oldest record not yet acknowledged, or nullopt when there is none. Skips (and
  // counts) corrupt frames on the way. Peek again without Ack returns the same record.
  // Errors: INTERNAL for a read failure (the position is unchanged; retry later).
  core::Result<std::optional<SpillRecord>> Peek();

  // Consumes the record the last Peek returned, and deletes every segment that is now fully
  // consumed. FAILED_PRECONDITION when there is no such record (no Peek since the last Ack).
  // Deleting a file is best effort: a failure is returned, the position still advances.
  core::Status Ack();

  // Makes every append and the read position up to now durable: fdatasync of every segment
  // written since the last Sync, fsync of the directory when segments were created or
  // deleted, then the read position file. On failure what was pending stays pending (the
  // next Sync retries it) and the error (INTERNAL, naming the path) is returned.
  core::Status Sync();
  // Sync when sync_due() has passed on the Clock; OK without doing anything otherwise.
  core::Status MaybeSync();
  // When the oldest unsynced change must be synced by (its time + sync_interval); nullopt
  // when nothing is unsynced.
  std::optional<core::MonoTime> sync_due() const;

  // Bytes of all segment files (what max_bytes bounds).
  uint64_t bytes() const;
  // Records appended or recovered and not yet acknowledged.
  uint64_t records() const;
  // Append time of the oldest unacknowledged record; nullopt when empty.
  std::optional<int64_t> oldest_append_unix_nanos() const;
  // Now (the Clock's UnixNanos) minus the oldest record's append time, at least 0; nullopt
  // when empty.
  std::optional<core::Nanos> oldest_age() const;
  // Appends refused (full, too large, or a failed write) since Open.
  uint64_t dropped() const;
  // Corrupt regions skipped since Open (each counted once, at recovery or when read).
  uint64_t corrupt_records() const;
  // Torn tails truncated by recovery.
  uint64_t torn_tails() const;

  const SpillQueueOptions& options() const { return options_; }

 private:
  class File;
  struct Segment {
    uint64_t seq = 0;
    uint64_t size = 0;  // bytes in the file: complete frames only
  };
  struct Position {
    uint64_t seq = 0;
    uint64_t offset = 0;
  };
  struct Peeked {
    Position at;
    uint64_t frame_bytes = 0;
  };

  SpillQueue(SpillQueueOptions options, const core::Clock& clock);
  core::Status Recover();
  core::Status RecoverSegment(Segment& segment, uint64_t start_offset);
  std::string SegmentPath(uint64_t seq) const;
  // Persists `pos` to <dir>/read_position atomically.
  core::Status WritePosition(Position pos);
  void MarkUnsyncedLocked();
  // Deletes the front segments that are fully consumed and not needed for appends, moving
  // read_ to the next one; their paths go to `unlink` (removed by the caller, unlocked).
  // REQUIRES: mu_ held.
  void CollectConsumedLocked(std::vector<std::string>& unlink);
  // Removes `paths`; the first failure is returned.
  core::Status Unlink(const std::vector<std::string>& paths);
  // Reads the header at `at` to refresh oldest_unix_nanos_ after an Ack (best effort).
  void RefreshHeadTimestamp(Position at);
  // The reader's file for segment `seq`, opening it when the reader is on another segment.
  core::Result<File*> ReaderFile(uint64_t seq);

  const SpillQueueOptions options_;
  const core::Clock& clock_;
  int dir_fd_ = -1;   // open for the queue's lifetime: fsync of the directory
  int lock_fd_ = -1;  // holds the flock

  mutable std::mutex mu_;
  std::deque<Segment> segments_;              // guarded by mu_: oldest first
  std::shared_ptr<File> active_;              // guarded by mu_: segments_.back()'s, or null
  uint64_t next_seq_ = 1;                     // guarded by mu_: the next segment's number
  Position read_;                             // guarded by mu_: the next record to deliver
  uint64_t bytes_ = 0;                        // guarded by mu_
  uint64_t records_ = 0;                      // guarded by mu_
  std::optional<int64_t> oldest_unix_nanos_;  // guarded by mu_
  uint64_t dropped_ = 0;                      // guarded by mu_
  uint64_t corrupt_ = 0;                      // guarded by mu_
  uint64_t torn_ = 0;                         // guarded by mu_
  // Guarded by mu_: corrupt regions found by recovery, (seq, offset) -> resync offset, so
  // reads skip them without counting them again.
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> known_corrupt_;
  std::vector<std::shared_ptr<File>> unsynced_files_;  // guarded by mu_
  bool dir_dirty_ = false;                             // guarded by mu_: segments created/deleted
  bool position_dirty_ = false;                        // guarded by mu_
  std::optional<core::MonoTime> unsynced_since_;       // guarded by mu_

  // Consumer state (Peek/Ack/Sync thread only).
  std::optional<Peeked> peeked_;
  std::unique_ptr<File> reader_;
  uint64_t reader_seq_ = 0;
  std::string scratch_;  // reused read buffer
};

}  // namespace llmscope::pipeline
