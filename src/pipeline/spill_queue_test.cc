#include "pipeline/spill_queue.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "testing/fake_clock.h"

namespace llmscope::pipeline {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr uint64_t kFrameHeader = 24;

// A fresh directory under the test temp dir, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "spill_queue_test.XXXXXX";
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> SegmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FlipByte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5A);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

SpillQueueOptions Options(const std::string& dir) {
  SpillQueueOptions o;
  o.dir = dir;
  return o;
}

std::unique_ptr<SpillQueue> MustOpen(const SpillQueueOptions& o, const core::Clock& clock) {
  core::Result<std::unique_ptr<SpillQueue>> q = SpillQueue::Open(o, clock);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return q.ok() ? std::move(*q) : nullptr;
}

// Peeks and acknowledges everything, returning the payloads in order.
std::vector<std::string> DrainAll(SpillQueue& q) {
  std::vector<std::string> out;
  for (int guard = 0; guard < 100000; ++guard) {
    core::Result<std::optional<SpillRecord>> r = q.Peek();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !r->has_value()) break;
    out.push_back((*r)->payload);
    EXPECT_TRUE(q.Ack().ok());
  }
  return out;
}

TEST(SpillQueueTest, AppendPeekAckInOrderWithSizeCountAndAge) {
  TempDir dir;
  testing::FakeClock clock;
  auto q = MustOpen(Options(dir.path()), clock);
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->records(), 0u);
  EXPECT_FALSE(q->oldest_age().has_value());
  ASSERT_TRUE(q->Peek().value() == std::nullopt);

  const int64_t t0 = clock.UnixNanos();
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "one").ok());
  clock.Advance(seconds(2));
  ASSERT_TRUE(q->Append(RecordKind::kSpans, "two").ok());
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "").ok());  // empty payloads are records too
  EXPECT_EQ(q->records(), 3u);
  EXPECT_EQ(q->bytes(), 3 * kFrameHeader + 6);
  EXPECT_EQ(q->oldest_append_unix_nanos(), t0);
  clock.Advance(seconds(3));
  EXPECT_EQ(q->oldest_age(), seconds(5));

  core::Result<std::optional<SpillRecord>> first = q->Peek();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->payload, "one");
  EXPECT_EQ((*first)->kind, RecordKind::kCalls);
  EXPECT_EQ((*first)->append_unix_nanos, t0);
  EXPECT_EQ(q->Peek().value()->payload, "one");  // peek again: the same record
  ASSERT_TRUE(q->Ack().ok());
  EXPECT_EQ(q->oldest_age(), seconds(3));  // the second record's age

  core::Result<std::optional<SpillRecord>> second = q->Peek();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->kind, RecordKind::kSpans);
  EXPECT_EQ((*second)->payload, "two");
  ASSERT_TRUE(q->Ack().ok());
  EXPECT_EQ(DrainAll(*q), std::vector<std::string>{""});
  EXPECT_EQ(q->records(), 0u);
  EXPECT_FALSE(q->oldest_age().has_value());
  // The fully consumed segment is gone: an idle queue takes no space.
  EXPECT_EQ(q->bytes(), 0u);
  EXPECT_TRUE(SegmentFiles(dir.path()).empty());
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "again").ok());
  EXPECT_EQ(DrainAll(*q), std::vector<std::string>{"again"});
}

TEST(SpillQueueTest, AckWithoutPeekIsRefused) {
  TempDir dir;
  testing::FakeClock clock;
  auto q = MustOpen(Options(dir.path()), clock);
  EXPECT_EQ(q->Ack().code(), core::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "a").ok());
  ASSERT_TRUE(q->Peek().ok());
  ASSERT_TRUE(q->Ack().ok());
  EXPECT_EQ(q->Ack().code(), core::StatusCode::kFailedPrecondition);
}

TEST(SpillQueueTest, RestartResumesAtTheSyncedReadPosition) {
  TempDir dir;
  testing::FakeClock clock;
  {
    auto q = MustOpen(Options(dir.path()), clock);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(q->Append(RecordKind::kCalls, std::to_string(i)).ok());
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(q->Peek().ok());
      ASSERT_TRUE(q->Ack().ok());
    }
    ASSERT_TRUE(q->Sync().ok());
  }
  auto q = MustOpen(Options(dir.path()), clock);
  EXPECT_EQ(q->records(), 3u);
  EXPECT_EQ(q->corrupt_records(), 0u);
  EXPECT_EQ(q->torn_tails(), 0u);
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "5").ok());  // after the recovered ones
  EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"2", "3", "4", "5"}));
}

TEST(SpillQueueTest, AcknowledgementsNotSyncedAreDeliveredAgain) {
  TempDir dir;
  testing::FakeClock clock;
  {
    auto q = MustOpen(Options(dir.path()), clock);
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(q->Append(RecordKind::kCalls, std::to_string(i)).ok());
    ASSERT_TRUE(q->Sync().ok());
    ASSERT_TRUE(q->Peek().ok());
    ASSERT_TRUE(q->Ack().ok());  // never synced: at least once, so "0" comes back
  }
  auto q = MustOpen(Options(dir.path()), clock);
  EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"0", "1", "2"}));
}

TEST(SpillQueueTest, TornTailIsTruncatedAndCounted) {
  TempDir dir;
  testing::FakeClock clock;
  {
    auto q = MustOpen(Options(dir.path()), clock);
    for (std::string p : {"first", "second", "third-record"}) {
      ASSERT_TRUE(q->Append(RecordKind::kCalls, p).ok());
    }
  }
  std::vector<std::string> files = SegmentFiles(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const uint64_t full = std::filesystem::file_size(files[0]);
  std::filesystem::resize_file(files[0], full - 5);  // a write cut short by a crash

  auto q = MustOpen(Options(dir.path()), clock);
  EXPECT_EQ(q->torn_tails(), 1u);
  EXPECT_EQ(q->corrupt_records(), 0u);
  EXPECT_EQ(q->records(), 2u);
  EXPECT_EQ(std::filesystem::file_size(files[0]), 2 * kFrameHeader + 11);  // truncated
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "fourth").ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 2u);  // appends go to a fresh segment
  EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"first", "second", "fourth"}));
}

TEST(SpillQueueTest, HeaderOnlyTornTailIsTruncated) {
  TempDir dir;
  testing::FakeClock clock;
  {
    auto q = MustOpen(Options(dir.path()), clock);
    ASSERT_TRUE(q->Append(RecordKind::kCalls, "kept").ok());
    ASSERT_TRUE(q->Append(RecordKind::kCalls, "lost").ok());
  }
  std::vector<std::string> files = SegmentFiles(dir.path());
  std::filesystem::resize_file(files[0], kFrameHeader + 4 + 10);  // 10 bytes of a header
  auto q = MustOpen(Options(dir.path()), clock);
  EXPECT_EQ(q->torn_tails(), 1u);
  EXPECT_EQ(DrainAll(*q), std::vector<std::string>{"kept"});
}

TEST(SpillQueueTest, CorruptMiddleRecordIsSkippedAndCounted) {
  for (uint64_t damage_at : {uint64_t{0}, uint64_t{9}, kFrameHeader + 2}) {
    SCOPED_TRACE(damage_at);  // magic, length, payload of the middle frame
    TempDir dir;
    testing::FakeClock clock;
    {
      auto q = MustOpen(Options(dir.path()), clock);
      for (std::string p : {"alpha", "bravo", "charlie"}) {
        ASSERT_TRUE(q->Append(RecordKind::kCalls, p).ok());
      }
    }
    std::vector<std::string> files = SegmentFiles(dir.path());
    FlipByte(files[0], kFrameHeader + 5 + damage_at);
    auto q = MustOpen(Options(dir.path()), clock);
    EXPECT_EQ(q->corrupt_records(), 1u);
    EXPECT_EQ(q->torn_tails(), 0u);
    EXPECT_EQ(q->records(), 2u);
    EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"alpha", "charlie"}));
    EXPECT_EQ(q->corrupt_records(), 1u);  // counted once, not again when read
  }
}

TEST(SpillQueueTest, CorruptionAppearingAfterOpenIsSkippedWhenRead) {
  TempDir dir;
  testing::FakeClock clock;
  auto q = MustOpen(Options(dir.path()), clock);
  for (std::string p : {"alpha", "bravo", "charlie"}) {
    ASSERT_TRUE(q->Append(RecordKind::kCalls, p).ok());
  }
  FlipByte(SegmentFiles(dir.path())[0], kFrameHeader + 5 + kFrameHeader + 1);
  EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"alpha", "charlie"}));
  EXPECT_EQ(q->corrupt_records(), 1u);
  EXPECT_EQ(q->records(), 0u);
}

TEST(SpillQueueTest, SizeBoundRefusesAndCountsUntilSpaceIsFreed) {
  TempDir dir;
  testing::FakeClock clock;
  SpillQueueOptions o = Options(dir.path());
  o.max_bytes = 3 * (kFrameHeader + 10);
  o.segment_bytes = kFrameHeader + 10;  // one record per segment
  auto q = MustOpen(o, clock);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(q->Append(RecordKind::kCalls, "0123456789").ok());
  core::Status full = q->Append(RecordKind::kCalls, "0123456789");
  EXPECT_EQ(full.code(), core::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.message(), HasSubstr("full"));
  EXPECT_EQ(q->dropped(), 1u);
  EXPECT_EQ(q->records(), 3u);
  EXPECT_EQ(q->bytes(), o.max_bytes);

  ASSERT_TRUE(q->Peek().ok());
  ASSERT_TRUE(q->Ack().ok());  // deletes the first segment
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 2u);
  EXPECT_TRUE(q->Append(RecordKind::kCalls, "0123456789").ok());
  EXPECT_EQ(q->dropped(), 1u);
}

TEST(SpillQueueTest, OversizedRecordIsRefused) {
  TempDir dir;
  testing::FakeClock clock;
  SpillQueueOptions o = Options(dir.path());
  o.max_record_bytes = 8;
  auto q = MustOpen(o, clock);
  EXPECT_EQ(q->Append(RecordKind::kCalls, "123456789").code(), core::StatusCode::kInvalidArgument);
  EXPECT_EQ(q->dropped(), 1u);
  EXPECT_TRUE(q->Append(RecordKind::kCalls, "12345678").ok());
}

TEST(SpillQueueTest, SegmentsRollAndAreDeletedOnceConsumed) {
  TempDir dir;
  testing::FakeClock clock;
  SpillQueueOptions o = Options(dir.path());
  o.segment_bytes = 2 * (kFrameHeader + 1);  // two one-byte records per segment
  auto q = MustOpen(o, clock);
  for (char c = 'a'; c <= 'e'; ++c) ASSERT_TRUE(q->Append(RecordKind::kSpans, {&c, 1}).ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 3u);
  ASSERT_TRUE(q->Peek().ok());
  ASSERT_TRUE(q->Ack().ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 3u);  // half of the first is still needed
  ASSERT_TRUE(q->Peek().ok());
  ASSERT_TRUE(q->Ack().ok());
  EXPECT_EQ(SegmentFiles(dir.path()).size(), 2u);
  EXPECT_EQ(q->bytes(), 3 * (kFrameHeader + 1));
  EXPECT_EQ(DrainAll(*q), (std::vector<std::string>{"c", "d", "e"}));
  EXPECT_TRUE(SegmentFiles(dir.path()).empty());
  ASSERT_TRUE(q->Sync().ok());
}

TEST(SpillQueueTest, OneQueuePerDirectory) {
  TempDir dir;
  testing::FakeClock clock;
  auto q = MustOpen(Options(dir.path()), clock);
  core::Result<std::unique_ptr<SpillQueue>> second = SpillQueue::Open(Options(dir.path()), clock);
  EXPECT_EQ(second.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  q.reset();
  EXPECT_TRUE(SpillQueue::Open(Options(dir.path()), clock).ok());
}

TEST(SpillQueueTest, InvalidOptionsAreListed) {
  testing::FakeClock clock;
  SpillQueueOptions o;
  o.max_bytes = 0;
  core::Status s = SpillQueue::Open(o, clock).status();
  EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("dir must not be empty"));
  EXPECT_THAT(s.message(), HasSubstr("max_bytes"));
}

TEST(SpillQueueTest, SyncIsDueOneIntervalAfterTheFirstUnsyncedChange) {
  TempDir dir;
  testing::FakeClock clock;
  SpillQueueOptions o = Options(dir.path());
  o.sync_interval = seconds(1);
  auto q = MustOpen(o, clock);
  EXPECT_FALSE(q->sync_due().has_value());
  const core::MonoTime t0 = clock.Now();
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "a").ok());
  clock.Advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(q->Append(RecordKind::kCalls, "b").ok());
  EXPECT_EQ(q->sync_due(), t0 + seconds(1));
  ASSERT_TRUE(q->MaybeSync().ok());
  EXPECT_TRUE(q->sync_due().has_value());  // not due yet: nothing done
  clock.Advance(std::chrono::milliseconds(500));
  ASSERT_TRUE(q->MaybeSync().ok());
  EXPECT_FALSE(q->sync_due().has_value());
  ASSERT_TRUE(q->Peek().ok());
  ASSERT_TRUE(q->Ack().ok());  // the read position is a change too
  EXPECT_EQ(q->sync_due(), clock.Now() + seconds(1));
}

// Arbitrary damage to segment files and the position file: Open and reading must never
// crash, and every record that is read back is one that was written.
TEST(SpillQueueTest, RandomDamageNeverCrashes) {
  std::mt19937 rng(1234);
  testing::FakeClock clock;
  for (int round = 0; round < 40; ++round) {
    TempDir dir;
    SpillQueueOptions o = Options(dir.path());
    o.segment_bytes = 200;
    std::vector<std::string> written;
    {
      auto q = MustOpen(o, clock);
      for (int i = 0; i < 12; ++i) {
        std::string p(rng() % 60, static_cast<char>('a' + i));
        if (i % 3 == 0) p += "\xC7SPL";  // the frame magic inside a payload
        written.push_back(p);
        ASSERT_TRUE(q->Append(RecordKind::kCalls, p).ok());
      }
      for (int i = 0; i < static_cast<int>(rng() % 4); ++i) {
        ASSERT_TRUE(q->Peek().ok());
        ASSERT_TRUE(q->Ack().ok());
      }
      ASSERT_TRUE(q->Sync().ok());
    }
    std::vector<std::string> files = SegmentFiles(dir.path());
    files.push_back(dir.path() + "/read_position");
    for (int e = 0; e < 1 + static_cast<int>(rng() % 6); ++e) {
      const std::string& f = files[rng() % files.size()];
      if (!std::filesystem::exists(f)) continue;
      const uint64_t size = std::filesystem::file_size(f);
      if (size == 0) continue;
      if (rng() % 5 == 0) {
        std::filesystem::resize_file(f, rng() % size);
      } else {
        FlipByte(f, rng() % size);
      }
    }
    if (rng() % 3 == 0) {
      std::ofstream junk(dir.path() + "/00000000000000000099.seg", std::ios::binary);
      for (int i = 0; i < 300; ++i) junk.put(static_cast<char>(rng()));
    }
    core::Result<std::unique_ptr<SpillQueue>> q = SpillQueue::Open(o, clock);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    for (const std::string& got : DrainAll(**q)) {
      EXPECT_NE(std::find(written.begin(), written.end(), got), written.end());
    }
    EXPECT_EQ((*q)->records(), 0u);
  }
}

}  // namespace
}  // namespace llmscope::pipeline
