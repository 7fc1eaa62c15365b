#include "pipeline/store_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "metrics/registry.h"
#include "testing/fake_clock.h"

namespace llmscope::pipeline {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr core::Nanos kWait = seconds(30);  // generous upper bound on waits that succeed

// A one-shot event a test thread can wait on with a deadline (never a sleep).
class Event {
 public:
  void Set() {
    std::lock_guard lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool WaitFor(core::Nanos timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// A Store that keeps what it is given, counted by key, and can be switched between
// answering, failing (UNAVAILABLE, Ping included) and blocking inside writes until switched
// back.
class FakeStore final : public storage::Store {
 public:
  enum class Mode { kOk, kFail, kBlock };

  void SetMode(Mode mode) {
    std::lock_guard lock(mu_);
    mode_ = mode;
    cv_.notify_all();
  }
  // Waits until a write is blocked inside the store.
  bool WaitBlocked(core::Nanos timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return blocked_ > 0; });
  }

  std::string_view name() const override { return "fake"; }
  core::Status Ping() override {
    std::lock_guard lock(mu_);
    ++pings_;
    return mode_ == Mode::kFail ? core::Unavailable("fake: down") : core::Status::Ok();
  }
  core::Status WriteCalls(std::span<const core::LlmCall> calls) override {
    std::unique_lock lock(mu_);
    if (core::Status s = WaitAndCheck(lock); !s.ok()) return s;
    for (const core::LlmCall& c : calls) ++calls_[c.request_id];
    ++call_writes_;
    return core::Status::Ok();
  }
  core::Status WriteSpans(std::span<const core::Span> spans) override {
    std::unique_lock lock(mu_);
    if (core::Status s = WaitAndCheck(lock); !s.ok()) return s;
    for (const core::Span& s : spans) ++spans_[core::ToHex(s.trace_id) + core::ToHex(s.span_id)];
    return core::Status::Ok();
  }

  core::Result<storage::CallPage> ListCalls(const storage::CallQuery&) override {
    return core::Internal("unused");
  }
  core::Result<core::LlmCall> GetCall(std::string_view) override {
    return core::Internal("unused");
  }
  core::Result<storage::AggregateResult> Aggregate(const storage::AggregateQuery&) override {
    return core::Internal("unused");
  }
  core::Result<storage::TopResult> Top(const storage::TopQuery&) override {
    return core::Internal("unused");
  }
  core::Result<storage::TracePage> ListTraces(const storage::TraceQuery&) override {
    return core::Internal("unused");
  }
  core::Result<storage::TraceDetail> GetTrace(const core::TraceId&) override {
    return core::Internal("unused");
  }
  core::Result<storage::RetentionReport> ApplyRetention(int64_t,
                                                        const storage::RetentionOptions&) override {
    return core::Internal("unused");
  }
  core::Result<storage::StoreStats> Stats() override { return core::Internal("unused"); }

  // Successful writes per request id / per trace+span id.
  std::map<std::string, int> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::map<std::string, int> spans() const {
    std::lock_guard lock(mu_);
    return spans_;
  }
  int pings() const {
    std::lock_guard lock(mu_);
    return pings_;
  }
  int call_writes() const {
    std::lock_guard lock(mu_);
    return call_writes_;
  }

 private:
  core::Status WaitAndCheck(std::unique_lock<std::mutex>& lock) {
    ++blocked_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return mode_ != Mode::kBlock; });
    --blocked_;
    if (mode_ == Mode::kFail) return core::Unavailable("fake: down");
    return core::Status::Ok();
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Mode mode_ = Mode::kOk;
  int blocked_ = 0;
  int pings_ = 0;
  int call_writes_ = 0;
  std::map<std::string, int> calls_;
  std::map<std::string, int> spans_;
};

// Keeps warnings and errors for inspection.
class CapturingLogger final : public core::Logger {
 public:
  void Log(core::LogLevel level, std::string_view message,
           std::initializer_list<Field> fields) override {
    std::string line(message);
    for (const Field& f : fields) line += " " + std::string(f.first) + "=" + std::string(f.second);
    std::lock_guard lock(mu_);
    lines_.push_back(line);
  }
  size_t Count(std::string_view needle) const {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const std::string& l : lines_) n += l.find(needle) != std::string::npos;
    return n;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "store_writer_test.XXXXXX";
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

size_t SegmentFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().extension() == ".seg";
  }
  return n;
}

std::vector<core::LlmCall> Calls(const std::string& prefix, int n) {
  std::vector<core::LlmCall> out(n);
  for (int i = 0; i < n; ++i) {
    out[i].request_id = prefix + "-" + std::to_string(i);
    out[i].requested_model = "m";
    out[i].request_body = "body of " + out[i].request_id;
    out[i].start_unix_nanos = 1'700'000'000'000'000'000 + i;
  }
  return out;
}

std::vector<core::Span> Spans(uint8_t trace, int n) {
  std::vector<core::Span> out(n);
  for (int i = 0; i < n; ++i) {
    out[i].trace_id[0] = trace;
    out[i].span_id[0] = static_cast<uint8_t>(i + 1);
    out[i].span_id[1] = static_cast<uint8_t>((i + 1) >> 8);
    out[i].name = "span";
    out[i].attributes = {{"k", int64_t{i}}};
  }
  return out;
}

double SampleValue(const metrics::Registry& r, std::string_view family, std::string_view suffix,
                   const std::vector<metrics::Label>& labels) {
  std::vector<metrics::FamilySnapshot> all;
  r.Collect(all);
  for (const metrics::FamilySnapshot& f : all) {
    if (f.name != family) continue;
    for (const metrics::Sample& s : f.samples) {
      if (s.suffix == suffix && s.labels == labels) return s.value;
    }
  }
  return -1;
}

double Metric(const metrics::Registry& r, std::string_view family) {
  return SampleValue(r, family, "", {});
}
double Dropped(const metrics::Registry& r, std::string reason) {
  return SampleValue(r, "llmscope_storage_records_dropped", "", {{"reason", std::move(reason)}});
}
double Written(const metrics::Registry& r, std::string kind) {
  return SampleValue(r, "llmscope_storage_records_written", "", {{"kind", std::move(kind)}});
}

// Batches are written as soon as they are queued unless a test says otherwise, so the Clock
// never needs to move for a write to happen.
StoreWriterOptions TestOptions(std::string spill_dir = "") {
  StoreWriterOptions o;
  o.spill_dir = std::move(spill_dir);
  o.max_write_delay = core::Nanos(0);
  o.retry_backoff_min = milliseconds(100);
  o.retry_backoff_max = seconds(10);
  return o;
}

// Every key exactly once.
void ExpectExactlyOnce(const std::map<std::string, int>& got, size_t expected) {
  EXPECT_EQ(got.size(), expected);
  for (const auto& [key, count] : got) EXPECT_EQ(count, 1) << key;
}

TEST(StoreWriterTest, WritesBatchesToTheStore) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  w.Consume(Calls("a", 10));
  w.Consume(Calls("b", 10));
  ASSERT_TRUE(w.Flush(kWait));
  ExpectExactlyOnce(store.calls(), 20);
  EXPECT_EQ(Written(registry, "calls"), 20);
  EXPECT_EQ(Metric(registry, "llmscope_storage_backend_up"), 1);
  EXPECT_EQ(Metric(registry, "llmscope_storage_pending_records"), 0);
  EXPECT_GE(SampleValue(registry, "llmscope_storage_write_duration_seconds", "_count", {}), 1);
  w.Stop();
}

TEST(StoreWriterTest, WaitsForAFullBatchOrTheDelayOnTheClock) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions();
  o.max_write_delay = seconds(1);
  o.write_batch_records = 10;
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  w.Consume(Calls("full", 10));  // a full batch goes at once
  ASSERT_TRUE(w.Drain(kWait));
  EXPECT_EQ(store.calls().size(), 10u);
  w.Consume(Calls("partial", 3));
  clock.Advance(seconds(1));
  ASSERT_TRUE(w.Drain(kWait));  // the delay has passed on the Clock
  EXPECT_EQ(store.calls().size(), 13u);
  EXPECT_EQ(store.call_writes(), 2);
  w.Stop();
}

TEST(StoreWriterTest, BackendDownForTheWholeLoadSpillsEverythingThenReplaysExactlyOnce) {
  TempDir dir;
  FakeStore store;
  metrics::Registry registry;
  CapturingLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(dir.path()), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  store.SetMode(FakeStore::Mode::kFail);

  w.Consume(Calls("b0", 50));
  ASSERT_TRUE(w.Flush(kWait));  // the write failed; the batch went to the spill, synced
  EXPECT_FALSE(w.backend_up());
  for (int b = 1; b < 20; ++b) {
    w.Consume(Calls("b" + std::to_string(b), 50));
    EXPECT_EQ(w.pending_records(), 0u);  // straight to the spill while the backend is down
  }
  ASSERT_TRUE(w.SubmitSpans(Spans(7, 30)));
  ASSERT_TRUE(w.Flush(kWait));
  EXPECT_TRUE(store.calls().empty());
  EXPECT_EQ(w.spill()->records(), 21u);
  EXPECT_EQ(Metric(registry, "llmscope_storage_backend_up"), 0);
  EXPECT_EQ(Metric(registry, "llmscope_storage_spill_records"), 21);
  EXPECT_GT(Metric(registry, "llmscope_storage_spill_bytes"), 0);
  EXPECT_GE(Metric(registry, "llmscope_storage_write_errors"), 1);
  clock.Advance(seconds(4));
  EXPECT_EQ(Metric(registry, "llmscope_storage_spill_oldest_age_seconds"), 4);
  EXPECT_EQ(logger.Count("storage backend down"), 1u);  // once per change of state

  store.SetMode(FakeStore::Mode::kOk);
  clock.Advance(minutes(1));  // past any backoff
  ASSERT_TRUE(w.Drain(kWait));
  ExpectExactlyOnce(store.calls(), 1000);
  ExpectExactlyOnce(store.spans(), 30);
  EXPECT_TRUE(w.backend_up());
  EXPECT_EQ(logger.Count("storage backend up again"), 1u);
  EXPECT_EQ(w.spill()->records(), 0u);
  EXPECT_EQ(w.spill()->bytes(), 0u);
  EXPECT_EQ(SegmentFiles(dir.path()), 0u);
  EXPECT_EQ(Written(registry, "calls"), 1000);
  EXPECT_EQ(Written(registry, "spans"), 30);
  EXPECT_EQ(Metric(registry, "llmscope_storage_spill_records"), 0);
  EXPECT_EQ(Metric(registry, "llmscope_storage_spill_oldest_age_seconds"), 0);
  EXPECT_GE(store.pings(), 1);
  w.Stop();
}

TEST(StoreWriterTest, SlowBackendDoesNotBlockConsume) {
  TempDir dir;
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions(dir.path());
  o.max_pending_records = 100;
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  store.SetMode(FakeStore::Mode::kBlock);
  w.Consume(Calls("first", 10));
  ASSERT_TRUE(store.WaitBlocked(kWait));  // the writer thread is stuck inside WriteCalls

  // While it stays stuck, 500 more records are handed in from another thread: they must
  // all be accepted (memory up to its bound, then the spill) without waiting on the store.
  Event consumed;
  std::thread producer([&] {
    for (int b = 0; b < 50; ++b) w.Consume(Calls("more" + std::to_string(b), 10));
    ASSERT_TRUE(w.SubmitSpans(Spans(1, 10)));
    consumed.Set();
  });
  EXPECT_TRUE(consumed.WaitFor(kWait));
  EXPECT_LE(w.pending_records(), 100u);
  EXPECT_GT(w.spill()->records(), 0u);
  EXPECT_EQ(Dropped(registry, "spill_full") + Dropped(registry, "memory_full_no_spill"), 0);
  store.SetMode(FakeStore::Mode::kOk);
  producer.join();
  ASSERT_TRUE(w.Drain(kWait));
  ExpectExactlyOnce(store.calls(), 510);
  ExpectExactlyOnce(store.spans(), 10);
  w.Stop();
}

TEST(StoreWriterTest, RestartReplaysWhatThePreviousWriterLeft) {
  TempDir dir;
  FakeStore store;
  testing::FakeClock clock;
  core::NullLogger logger;
  store.SetMode(FakeStore::Mode::kFail);
  {
    metrics::Registry registry;
    StoreWriterOptions o = TestOptions(dir.path());
    o.max_write_delay = minutes(10);  // nothing is written before Stop
    StoreWriter w(o, store, registry, logger, clock);
    ASSERT_TRUE(w.Start().ok());
    for (int b = 0; b < 5; ++b) w.Consume(Calls("old" + std::to_string(b), 20));
    ASSERT_TRUE(w.SubmitSpans(Spans(3, 5)));
    w.Stop();  // the write fails; everything goes to the spill, synced
    EXPECT_EQ(Dropped(registry, "abandoned"), 0);
  }
  store.SetMode(FakeStore::Mode::kOk);
  metrics::Registry registry;
  StoreWriter w(TestOptions(dir.path()), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(w.Drain(kWait));
  ExpectExactlyOnce(store.calls(), 100);
  ExpectExactlyOnce(store.spans(), 5);
  EXPECT_EQ(SegmentFiles(dir.path()), 0u);
  w.Stop();
}

// The promise Flush makes: after it returns true, a kill -9 loses none of the records. The
// child process spills (the backend is down), flushes and kills itself; a writer in this
// process over the same directory then stores every record.
TEST(StoreWriterDeathTest, KillNineAfterFlushLosesNothing) {
  TempDir dir;
  EXPECT_EXIT(
      {
        FakeStore down;
        down.SetMode(FakeStore::Mode::kFail);
        metrics::Registry registry;
        core::NullLogger logger;
        testing::FakeClock clock;
        StoreWriterOptions o = TestOptions(dir.path());
        o.spill_sync_interval = minutes(10);  // only Flush syncs
        o.max_pending_records = 30;           // some batches overflow memory to the spill
        StoreWriter w(o, down, registry, logger, clock);
        if (!w.Start().ok()) std::_Exit(2);
        for (int b = 0; b < 10; ++b) w.Consume(Calls("k" + std::to_string(b), 10));
        (void)w.SubmitSpans(Spans(9, 4));
        if (!w.Flush(kWait)) std::_Exit(3);
        ::kill(::getpid(), SIGKILL);
        std::_Exit(4);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(dir.path()), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(w.Drain(kWait));
  ExpectExactlyOnce(store.calls(), 100);
  ExpectExactlyOnce(store.spans(), 4);
  w.Stop();
}

TEST(StoreWriterTest, FlushWaitsForDurabilityAndTimesOutWithoutIt) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);  // no spill
  ASSERT_TRUE(w.Start().ok());
  EXPECT_TRUE(w.Flush(core::Nanos(0)));  // nothing accepted: durable at once

  store.SetMode(FakeStore::Mode::kBlock);
  w.Consume(Calls("slow", 5));
  ASSERT_TRUE(store.WaitBlocked(kWait));
  EXPECT_FALSE(w.Flush(milliseconds(20)));  // still inside the store
  store.SetMode(FakeStore::Mode::kOk);
  EXPECT_TRUE(w.Flush(kWait));
  ExpectExactlyOnce(store.calls(), 5);

  // Down without a spill: memory is not durable, so Flush cannot succeed...
  store.SetMode(FakeStore::Mode::kFail);
  w.Consume(Calls("held", 5));
  EXPECT_FALSE(w.Flush(milliseconds(20)));
  EXPECT_EQ(w.pending_records(), 5u);
  // ...until the backend is back and the batch is written.
  store.SetMode(FakeStore::Mode::kOk);
  clock.Advance(minutes(1));
  EXPECT_TRUE(w.Flush(kWait));
  EXPECT_EQ(store.calls().size(), 10u);
  w.Stop();
}

TEST(StoreWriterTest, DropsAreCountedWhenMemoryIsFullAndThereIsNoSpill) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions();
  o.max_pending_records = 20;
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  store.SetMode(FakeStore::Mode::kBlock);
  w.Consume(Calls("a", 10));
  ASSERT_TRUE(store.WaitBlocked(kWait));
  w.Consume(Calls("b", 10));  // memory now holds 20
  w.Consume(Calls("c", 5));   // dropped
  EXPECT_FALSE(w.SubmitSpans(Spans(1, 1)));
  EXPECT_EQ(Dropped(registry, "memory_full_no_spill"), 6);
  EXPECT_EQ(Metric(registry, "llmscope_storage_pending_records"), 20);
  store.SetMode(FakeStore::Mode::kOk);
  ASSERT_TRUE(w.Drain(kWait));
  EXPECT_EQ(store.calls().size(), 20u);
  w.Stop();
}

TEST(StoreWriterTest, DropsAreCountedWhenMemoryAndSpillAreFull) {
  TempDir dir;
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions(dir.path());
  o.max_pending_records = 20;
  o.spill_max_bytes = 4096;
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  store.SetMode(FakeStore::Mode::kBlock);
  w.Consume(Calls("first", 10));
  ASSERT_TRUE(store.WaitBlocked(kWait));
  constexpr int kBatches = 100;
  for (int b = 0; b < kBatches; ++b) w.Consume(Calls("x" + std::to_string(b), 5));
  const double dropped = Dropped(registry, "spill_full");
  EXPECT_GT(dropped, 0);
  EXPECT_LE(w.spill()->bytes(), 4096u);
  EXPECT_GT(w.spill()->dropped(), 0u);
  store.SetMode(FakeStore::Mode::kOk);
  ASSERT_TRUE(w.Drain(kWait));
  // Every record is either stored exactly once or counted as dropped.
  ExpectExactlyOnce(store.calls(), static_cast<size_t>(10 + kBatches * 5 - dropped));
  w.Stop();
}

TEST(StoreWriterTest, StopDrainsMemoryToTheStore) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions();
  o.max_write_delay = minutes(10);  // only Stop makes them go
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  for (int b = 0; b < 3; ++b) w.Consume(Calls("s" + std::to_string(b), 7));
  ASSERT_TRUE(w.SubmitSpans(Spans(2, 3)));
  w.Stop();
  ExpectExactlyOnce(store.calls(), 21);
  ExpectExactlyOnce(store.spans(), 3);
  EXPECT_EQ(w.pending_records(), 0u);
  w.Consume(Calls("late", 2));  // after Stop: dropped, counted
  EXPECT_EQ(Dropped(registry, "abandoned"), 2);
}

TEST(StoreWriterTest, StopWithoutSpillAbandonsWhatTheStoreRefuses) {
  FakeStore store;
  metrics::Registry registry;
  CapturingLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  store.SetMode(FakeStore::Mode::kFail);
  w.Consume(Calls("lost", 8));
  EXPECT_FALSE(w.Flush(milliseconds(20)));
  w.Stop();
  EXPECT_EQ(Dropped(registry, "abandoned"), 8);
  EXPECT_EQ(logger.Count("records abandoned"), 1u);
}

TEST(StoreWriterTest, StopTimeoutSendsTheRestToTheSpill) {
  TempDir dir;
  FakeStore store;
  testing::FakeClock clock;
  core::NullLogger logger;
  {
    metrics::Registry registry;
    StoreWriterOptions o = TestOptions(dir.path());
    o.max_write_delay = minutes(10);
    o.stop_timeout = core::Nanos(0);  // no time to write: all of it is spilled
    StoreWriter w(o, store, registry, logger, clock);
    ASSERT_TRUE(w.Start().ok());
    w.Consume(Calls("late", 12));
    w.Stop();
    EXPECT_TRUE(store.calls().empty());
    EXPECT_EQ(w.spill()->records(), 1u);
  }
  metrics::Registry registry;
  StoreWriter w(TestOptions(dir.path()), store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(w.Drain(kWait));
  ExpectExactlyOnce(store.calls(), 12);
}

TEST(StoreWriterTest, LargeBatchesAreWrittenInChunks) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriterOptions o = TestOptions();
  o.write_batch_records = 7;
  StoreWriter w(o, store, registry, logger, clock);
  ASSERT_TRUE(w.Start().ok());
  w.Consume(Calls("big", 30));
  ASSERT_TRUE(w.Flush(kWait));
  ExpectExactlyOnce(store.calls(), 30);
  EXPECT_EQ(store.call_writes(), 5);  // 7 + 7 + 7 + 7 + 2
  w.Stop();
}

TEST(StoreWriterTest, RecordsBeforeStartWaitInMemory) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);
  w.Consume(Calls("early", 3));
  EXPECT_EQ(w.pending_records(), 3u);
  ASSERT_TRUE(w.Start().ok());
  ASSERT_TRUE(w.Flush(kWait));
  ExpectExactlyOnce(store.calls(), 3);
  w.Stop();
}

TEST(StoreWriterTest, StopWithoutStartAbandonsAndCounts) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);
  w.Consume(Calls("never", 4));
  w.Stop();
  EXPECT_EQ(Dropped(registry, "abandoned"), 4);
  EXPECT_FALSE(w.Flush(milliseconds(1)));
}

TEST(StoreWriterTest, StartErrors) {
  FakeStore store;
  core::NullLogger logger;
  testing::FakeClock clock;
  {
    metrics::Registry registry;
    StoreWriterOptions o = TestOptions();
    o.max_pending_records = 0;
    o.retry_backoff_max = milliseconds(1);
    StoreWriter w(o, store, registry, logger, clock);
    core::Status s = w.Start();
    EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("max_pending_records"));
    EXPECT_THAT(s.message(), HasSubstr("retry_backoff_max"));
  }
  {
    metrics::Registry registry;
    StoreWriter first(TestOptions(), store, registry, logger, clock);
    StoreWriter second(TestOptions(), store, registry, logger, clock);
    EXPECT_EQ(second.Start().code(), core::StatusCode::kAlreadyExists);
    ASSERT_TRUE(first.Start().ok());
    EXPECT_EQ(first.Start().code(), core::StatusCode::kFailedPrecondition);
  }
  {
    TempDir dir;
    metrics::Registry r1;
    metrics::Registry r2;
    StoreWriter first(TestOptions(dir.path()), store, r1, logger, clock);
    StoreWriter second(TestOptions(dir.path()), store, r2, logger, clock);
    ASSERT_TRUE(first.Start().ok());
    EXPECT_EQ(second.Start().code(), core::StatusCode::kFailedPrecondition);  // dir in use
  }
}

TEST(StoreWriterTest, ExposesEveryMetricFromTheStart) {
  FakeStore store;
  metrics::Registry registry;
  core::NullLogger logger;
  testing::FakeClock clock;
  StoreWriter w(TestOptions(), store, registry, logger, clock);
  const std::string text = registry.Render(metrics::Format::kPrometheusText);
  for (const char* name :
       {"llmscope_storage_records_written_total{kind=\"calls\"} 0",
        "llmscope_storage_records_written_total{kind=\"spans\"} 0",
        "llmscope_storage_write_errors_total 0", "llmscope_storage_write_duration_seconds_count 0",
        "llmscope_storage_backend_up 1", "llmscope_storage_pending_records 0",
        "llmscope_storage_spill_bytes 0", "llmscope_storage_spill_records 0",
        "llmscope_storage_spill_oldest_age_seconds 0",
        "llmscope_storage_records_dropped_total{reason=\"memory_full_no_spill\"} 0",
        "llmscope_storage_records_dropped_total{reason=\"spill_full\"} 0",
        "llmscope_storage_records_dropped_total{reason=\"spill_error\"} 0",
        "llmscope_storage_records_dropped_total{reason=\"abandoned\"} 0",
        "llmscope_storage_spill_corrupt_records_total 0",
        "llmscope_storage_spill_torn_tails_total 0"}) {
    EXPECT_THAT(text, HasSubstr(name));
  }
}

}  // namespace
}  // namespace llmscope::pipeline
