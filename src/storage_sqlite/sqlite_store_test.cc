#include "storage_sqlite/sqlite_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "storage/store_contract.h"
#include "storage_sqlite/schema.h"
#include "storage_sqlite/span_codec.h"
#include "storage_sqlite/sqlite_db.h"

namespace llmscope::storage_sqlite {
namespace {

namespace fs = std::filesystem;
using storage::StoreContract;

// A directory for this process's database files, removed at exit.
class TestDir {
 public:
  TestDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "sqlite_store_test.XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    path_ = made != nullptr ? made : tmpl;
  }
  ~TestDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  // A new file name in the directory; the file does not exist yet.
  std::string NewPath() { return (path_ / ("db-" + std::to_string(next_++) + ".sqlite")).string(); }

 private:
  fs::path path_;
  std::atomic<int> next_{0};
};

TestDir& Dir() {
  static TestDir dir;
  return dir;
}

SqliteOptions OptionsFor(std::string path) {
  SqliteOptions o;
  o.path = std::move(path);
  o.cache_kib_per_connection = 4096;
  return o;
}

std::unique_ptr<SqliteStore> OpenOrFail(const SqliteOptions& options) {
  auto store = SqliteStore::Open(options);
  if (!store.ok()) {
    ADD_FAILURE() << "open " << options.path << ": " << store.status().ToString();
    return nullptr;
  }
  return std::move(*store);
}

// The contract suite, on default settings, on settings that stress the edges: one read
// connection (queries queue for it) and tiny retention batches (many transactions), and
// with checkpoints on their own thread every few pages.
INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreContract,
    ::testing::Values(storage::StoreFactory{"defaults",
                                            []() -> std::unique_ptr<storage::Store> {
                                              return OpenOrFail(OptionsFor(Dir().NewPath()));
                                            }},
                      storage::StoreFactory{"one_reader_small_batches",
                                            []() -> std::unique_ptr<storage::Store> {
                                              SqliteOptions o = OptionsFor(Dir().NewPath());
                                              o.read_connections = 1;
                                              o.retention_batch_rows = 7;
                                              o.mmap_bytes = 0;
                                              return OpenOrFail(o);
                                            }},
                      storage::StoreFactory{"background_checkpoints",
                                            []() -> std::unique_ptr<storage::Store> {
                                              SqliteOptions o = OptionsFor(Dir().NewPath());
                                              o.background_checkpoint = true;
                                              o.wal_autocheckpoint_pages = 8;
                                              o.wal_max_pages = 32;
                                              return OpenOrFail(o);
                                            }}),
    storage::StoreFactoryName);

// Raw access to a database file, for checks the Store interface does not expose.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "raw open " << path << ": " << sqlite3_errmsg(db_);
    }
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      v = sqlite3_column_int64(stmt, 0);
    } else {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_finalize(stmt);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string v;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    } else {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_finalize(stmt);
    return v;
  }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (err != nullptr ? err : "?");
    }
    sqlite3_free(err);
  }

 private:
  sqlite3* db_ = nullptr;
};

constexpr int64_t kBase = int64_t{1'709'251'200} * storage::kNanosPerSecond;

std::vector<core::LlmCall> Calls(int n, int64_t from, int64_t step, const std::string& prefix,
                                 size_t body_bytes = 0) {
  std::vector<core::LlmCall> calls;
  for (int i = 0; i < n; ++i) {
    core::LlmCall c;
    c.request_id = prefix + std::to_string(i);
    c.start_unix_nanos = from + i * step;
    c.end_nanos = (i % 97) * 1'000'000;
    c.first_content_nanos = (i % 13) * 1'000'000;
    c.requested_model = i % 3 == 0 ? "gpt-4o" : "gpt-4o-mini";
    c.provider = "openai";
    c.user = "user-" + std::to_string(i % 50);
    c.usage.input = i % 1000;
    c.usage.output = i % 300;
    c.cost_usd = (i % 64) / 1024.0;
    c.tags = {{"team", i % 2 == 0 ? "search" : "ads"}};
    if (body_bytes > 0) c.request_body = std::string(body_bytes, static_cast<char>('a' + i % 26));
    calls.push_back(std::move(c));
  }
  return calls;
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

TEST(SqliteStore, CreatesAVersionedWalSchemaWithIncrementalVacuum) {
  std::string path = Dir().NewPath();
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->name(), "sqlite");
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), SqliteStore::SchemaVersion());
  EXPECT_EQ(raw.Int("PRAGMA application_id"), 0x4c4c4d53);
  EXPECT_EQ(raw.Int("PRAGMA auto_vacuum"), 2);  // INCREMENTAL
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
}

// A file written by schema version 1 (spans keyed by a unique (trace_id, span_id), their
// attributes, events and links as JSON) opens as the current version with every span intact,
// and a replay of a migrated span replaces it instead of adding a second one.
TEST(SqliteStore, MigratesAVersionOneFileKeepingItsSpans) {
  const std::string path = Dir().NewPath();
  core::Span old;
  old.trace_id = {0xab, 0x01};
  old.span_id = {0xcd, 0x02};
  old.parent_span_id = {0xef};
  old.name = "chat gpt-4o";
  old.kind = core::SpanKind::kClient;
  old.service = "checkout";
  old.scope = "openai";
  old.start_unix_nanos = kBase;
  old.end_unix_nanos = kBase + 1000;
  old.status = core::SpanStatus::kError;
  old.status_message = "boom";
  old.resource_attributes = {{"service.name", std::string("checkout")}};
  old.attributes = {{"gen_ai.request.model", std::string("gpt-4o")},
                    {"n", int64_t{-7}},
                    {"d", 0.5},
                    {"b", true},
                    {"arr", core::JsonText{"[1,\"x\"]"}}};
  old.events = {{kBase + 5, "exception", {{"exception.message", std::string("boom")}}}};
  old.links = {{core::TraceId{0x11}, core::SpanId{0x22}, {{"k", std::string("v")}}}};
  {
    auto db = internal::Db::Open(path);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    ASSERT_TRUE(internal::Migrate(*db, path, 1).ok());
    auto insert = internal::Stmt::Prepare(
        db->get(),
        "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, scope, "
        "start_unix_nanos, end_unix_nanos, status, status_message, resource_attributes, "
        "attributes, events, links) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
        "?13, ?14, ?15)",
        false);
    ASSERT_TRUE(insert.ok()) << insert.status().ToString();
    const std::string resource = storage::AttributesToJson(old.resource_attributes);
    const std::string attributes = storage::AttributesToJson(old.attributes);
    const std::string events = storage::EventsToJson(old.events);
    const std::string links = storage::LinksToJson(old.links);
    insert->BindBlob(1, old.trace_id);
    insert->BindBlob(2, old.span_id);
    insert->BindBlob(3, old.parent_span_id);
    insert->BindText(4, old.name);
    insert->BindInt(5, static_cast<int64_t>(old.kind));
    insert->BindText(6, old.service);
    insert->BindText(7, old.scope);
    insert->BindInt(8, old.start_unix_nanos);
    insert->BindInt(9, old.end_unix_nanos);
    insert->BindInt(10, static_cast<int64_t>(old.status));
    insert->BindText(11, old.status_message);
    insert->BindText(12, resource);
    insert->BindText(13, attributes);
    insert->BindText(14, events);
    insert->BindText(15, links);
    ASSERT_TRUE(insert->Run("insert a version 1 span").ok());
  }
  {
    RawDb raw(path);
    ASSERT_EQ(raw.Int("PRAGMA user_version"), 1);
  }
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  {
    RawDb raw(path);
    EXPECT_EQ(raw.Int("PRAGMA user_version"), SqliteStore::SchemaVersion());
  }
  auto trace = store->GetTrace(old.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->spans.size(), 1u);
  EXPECT_EQ(trace->spans[0], old);
  auto page = store->ListTraces(storage::TraceQuery{});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->traces.size(), 1u);
  EXPECT_EQ(page->traces[0].root_name, "chat gpt-4o");
  EXPECT_TRUE(page->traces[0].has_error);

  // A replay of the migrated span (as an exporter retry sends it) replaces it.
  core::Span replay = old;
  replay.status = core::SpanStatus::kOk;
  replay.attributes.push_back({"added", std::string("later")});
  ASSERT_TRUE(store->WriteSpans(std::vector<core::Span>{replay}).ok());
  trace = store->GetTrace(old.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->spans.size(), 1u);
  EXPECT_EQ(trace->spans[0], replay);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->spans, 1);
}

// Attribute blobs round-trip byte-exactly, keep known and unknown keys and every value
// kind apart, and a damaged blob is an error, never a crash or a wrong value.
TEST(SpanCodec, RoundTripsExactlyAndRefusesDamagedBytes) {
  core::Attributes attributes = {{"gen_ai.request.model", std::string("gpt-4o")},  // a known key
                                 {"custom.key", std::string("h\xC3\xA9\n\x01")},
                                 {"", std::string()},
                                 {"i_min", std::numeric_limits<int64_t>::min()},
                                 {"i_max", std::numeric_limits<int64_t>::max()},
                                 {"whole", 2.0},
                                 {"two", int64_t{2}},
                                 {"negative_zero", -0.0},
                                 {"f", false},
                                 {"t", true},
                                 {"map", core::JsonText{"{\"a\":[]}"}}};
  std::string blob;
  internal::EncodeAttributes(attributes, blob);
  auto back = internal::DecodeAttributes(blob);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, attributes);
  EXPECT_TRUE(std::signbit(std::get<double>((*back)[7].value)));

  internal::EncodeAttributes({}, blob);
  EXPECT_TRUE(blob.empty());
  ASSERT_TRUE(internal::DecodeAttributes(blob).ok());
  EXPECT_TRUE(internal::DecodeAttributes(blob)->empty());

  internal::EncodeAttributes(attributes, blob);
  for (size_t cut = 1; cut < blob.size(); ++cut) {
    auto damaged = internal::DecodeAttributes(std::string_view(blob).substr(0, cut));
    EXPECT_FALSE(damaged.ok()) << "truncated at " << cut;
  }
  EXPECT_FALSE(internal::DecodeAttributes(blob + "x").ok());
  EXPECT_FALSE(internal::DecodeAttributes("\x01\x01\xff\x7f").ok());  // unknown key index
  EXPECT_FALSE(internal::DecodeEvents("\x01\x05").ok());
  EXPECT_FALSE(internal::DecodeLinks("\x01\x01\x00").ok());
}

TEST(SqliteStore, RefusesBadOptionsListingEachProblem) {
  SqliteOptions o;
  o.path = ":memory:";
  o.read_connections = 0;
  o.busy_timeout_ms = -1;
  o.background_checkpoint = true;
  o.wal_max_pages = o.wal_autocheckpoint_pages - 1;
  auto store = SqliteStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kInvalidArgument);
  for (const char* field : {"path", "read_connections", "busy_timeout_ms", "wal_max_pages"}) {
    EXPECT_NE(store.status().message().find(field), std::string::npos) << store.status().message();
  }
  o = SqliteOptions{};
  EXPECT_EQ(SqliteStore::Open(o).status().code(), core::StatusCode::kInvalidArgument);
}

TEST(SqliteStore, ReopeningKeepsEverything) {
  std::string path = Dir().NewPath();
  auto calls = Calls(300, kBase, 1'000'000'000, "r-", 100);
  core::Span span;
  span.trace_id[0] = 7;
  span.span_id[0] = 8;
  span.name = "kept";
  {
    auto store = OpenOrFail(OptionsFor(path));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->WriteCalls(calls).ok());
    ASSERT_TRUE(store->WriteSpans(std::vector<core::Span>{span}).ok());
  }
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 300);
  EXPECT_EQ(stats->content, 300);
  EXPECT_EQ(stats->spans, 1);
  auto got = store->GetCall("r-123");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, calls[123]);
  auto trace = store->GetTrace(span.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  EXPECT_EQ(trace->spans.at(0), span);
}

// A committed batch survives the process dying without closing anything (no checkpoint,
// no destructor): the WAL is replayed by the next open. This is the kill -9 guarantee of
// synchronous=NORMAL.
TEST(SqliteStore, CommittedWritesSurviveAProcessThatDiesWithoutClosing) {
  std::string path = Dir().NewPath();
  auto calls = Calls(500, kBase, 1'000'000, "crash-");
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = SqliteStore::Open(OptionsFor(path));
    bool ok = store.ok() && (*store)->WriteCalls(calls).ok();
    ::_exit(ok ? 0 : 1);  // no destructors, no close, no checkpoint
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the writer child failed";
  EXPECT_GT(FileSize(path + "-wal"), 0);  // the batch is still only in the WAL
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 500);
}

// Checkpoints run off the write path, yet the WAL stays bounded whatever the checkpoint
// thread manages: a commit leaving more than wal_max_pages in the WAL is followed by a
// checkpoint in the writer, so the WAL file (which never shrinks below its high-water mark
// short of journal_size_limit) holds at most the bound plus one transaction. Every call is
// still there after reopening.
TEST(SqliteStore, BackgroundCheckpointsKeepTheWalBoundedAndLoseNothing) {
  constexpr int64_t kFrameBytes = 4096 + 24;  // page plus WAL frame header
  constexpr int kBatches = 60;
  constexpr int kPerBatch = 200;
  auto batch = [](int b) {
    return Calls(kPerBatch, kBase + b * int64_t{kPerBatch} * 1'000'000'000, 1'000'000'000,
                 "b" + std::to_string(b) + "-");
  };
  // The same writes to a store that never checkpoints: each commit's growth of its WAL is
  // that transaction's pages.
  int64_t largest_commit = 0;
  int64_t unchecked_wal = 0;
  {
    SqliteOptions ref = OptionsFor(Dir().NewPath());
    ref.background_checkpoint = false;
    ref.wal_autocheckpoint_pages = int64_t{1} << 30;
    auto store = OpenOrFail(ref);
    ASSERT_NE(store, nullptr);
    for (int b = 0; b < kBatches; ++b) {
      const int64_t before = FileSize(ref.path + "-wal");
      ASSERT_TRUE(store->WriteCalls(batch(b)).ok());
      unchecked_wal = FileSize(ref.path + "-wal");
      largest_commit = std::max(largest_commit, unchecked_wal - before);
    }
  }

  std::string path = Dir().NewPath();
  SqliteOptions o = OptionsFor(path);
  o.background_checkpoint = true;
  o.wal_autocheckpoint_pages = 16;
  o.wal_max_pages = 64;
  const int64_t bound = 32 + o.wal_max_pages * kFrameBytes + largest_commit;
  ASSERT_GT(unchecked_wal, 3 * bound);  // the bound is what keeps the WAL small
  std::vector<core::LlmCall> all;
  {
    auto store = OpenOrFail(o);
    ASSERT_NE(store, nullptr);
    for (int b = 0; b < kBatches; ++b) {
      auto calls = batch(b);
      ASSERT_TRUE(store->WriteCalls(calls).ok());
      all.insert(all.end(), calls.begin(), calls.end());
      EXPECT_LE(FileSize(path + "-wal"), bound) << "after batch " << b;
    }
  }
  auto store = OpenOrFail(o);
  ASSERT_NE(store, nullptr);
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, kBatches * kPerBatch);
  for (size_t i : {size_t{0}, all.size() / 2, all.size() - 1}) {
    auto got = store->GetCall(all[i].request_id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, all[i]);
  }
}

TEST(SqliteStore, RefusesANewerSchemaVersionAndLeavesTheFileAlone) {
  std::string path = Dir().NewPath();
  {
    auto store = OpenOrFail(OptionsFor(path));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->WriteCalls(Calls(10, kBase, 1, "n-")).ok());
  }
  {
    RawDb raw(path);
    raw.Exec("PRAGMA user_version = 99");
  }
  auto store = SqliteStore::Open(OptionsFor(path));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  const std::string m = store.status().message();
  EXPECT_NE(m.find(path), std::string::npos) << m;
  EXPECT_NE(m.find("99"), std::string::npos) << m;
  EXPECT_NE(m.find("newer"), std::string::npos) << m;
  RawDb raw(path);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), 99);
  EXPECT_EQ(raw.Int("SELECT count(*) FROM calls"), 10);
}

TEST(SqliteStore, RefusesAFileThatIsNotSqliteNamingThePath) {
  std::string path = Dir().NewPath();
  const std::string garbage = "this is a text file, not a database\n" + std::string(8192, 'x');
  {
    std::ofstream out(path, std::ios::binary);
    out << garbage;
  }
  auto store = SqliteStore::Open(OptionsFor(path));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().ToString();
  EXPECT_NE(store.status().message().find("not a database"), std::string::npos)
      << store.status().ToString();
  EXPECT_EQ(FileSize(path), static_cast<int64_t>(garbage.size()));  // untouched
}

TEST(SqliteStore, RefusesACorruptFileNamingThePath) {
  std::string path = Dir().NewPath();
  {
    auto store = OpenOrFail(OptionsFor(path));
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->WriteCalls(Calls(100, kBase, 1, "c-")).ok());
  }
  {
    // Keep the 100-byte header, wreck the rest of page 1 (the schema's root page).
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    const std::string junk(3000, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto store = SqliteStore::Open(OptionsFor(path));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().ToString();
  EXPECT_NE(store.status().message().find("malformed"), std::string::npos)
      << store.status().ToString();
}

TEST(SqliteStore, RefusesAnotherApplicationsDatabase) {
  std::string path = Dir().NewPath();
  {
    RawDb raw(path);
    raw.Exec("CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('mine')");
  }
  auto store = SqliteStore::Open(OptionsFor(path));
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status().ToString();

  std::string other = Dir().NewPath();
  {
    RawDb raw(other);
    raw.Exec("PRAGMA application_id = 1234");
  }
  store = SqliteStore::Open(OptionsFor(other));
  EXPECT_EQ(store.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("1234"), std::string::npos) << store.status().ToString();
}

TEST(SqliteStore, AnEmptyFileBecomesAStore) {
  std::string path = Dir().NewPath();
  { std::ofstream out(path); }
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->WriteCalls(Calls(3, kBase, 1, "e-")).ok());
}

TEST(SqliteStore, RetentionGivesTheSpaceBackToTheFileSystem) {
  std::string path = Dir().NewPath();
  auto store = OpenOrFail(OptionsFor(path));
  ASSERT_NE(store, nullptr);
  // 10 days of calls with 2 KiB of content each; retention keeps the last 3 days.
  constexpr int kCalls = 4000;
  const int64_t step = 10 * storage::kNanosPerDay / kCalls;
  auto calls = Calls(kCalls, kBase, step, "ret-", 2048);
  for (size_t i = 0; i < calls.size(); i += 500) {
    ASSERT_TRUE(store->WriteCalls(std::span(calls).subspan(i, 500)).ok());
  }
  RawDb raw(path);
  raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const int64_t pages_before = raw.Int("PRAGMA page_count");
  const int64_t file_before = FileSize(path);
  auto before = store->Stats();
  ASSERT_TRUE(before.ok());

  storage::RetentionOptions keep3{3, 3, 3};
  const int64_t now = kBase + 10 * storage::kNanosPerDay;
  auto report = store->ApplyRetention(now, keep3);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const int64_t cut = storage::RetentionCutoffNanos(now, 3);
  int64_t due = 0;
  for (const auto& c : calls) due += c.start_unix_nanos < cut;
  EXPECT_EQ(report->calls_removed, due);
  EXPECT_EQ(report->content_removed, due);

  EXPECT_EQ(raw.Int("PRAGMA freelist_count"), 0);
  const int64_t pages_after = raw.Int("PRAGMA page_count");
  EXPECT_LT(pages_after, pages_before * 45 / 100) << pages_before << " -> " << pages_after;
  raw.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  EXPECT_LT(FileSize(path), file_before * 45 / 100) << file_before << " -> " << FileSize(path);
  auto after = store->Stats();
  ASSERT_TRUE(after.ok());
  EXPECT_LT(after->bytes_on_disk, before->bytes_on_disk);
}

TEST(SqliteStore, OneWriterAndMoreReadersThanConnectionsRunTogether) {
  SqliteOptions o = OptionsFor(Dir().NewPath());
  o.read_connections = 2;
  auto store = OpenOrFail(o);
  ASSERT_NE(store, nullptr);
  constexpr int kBatches = 40;
  constexpr int kBatch = 250;
  constexpr int kReaders = 4;
  std::atomic<bool> writing{true};
  std::vector<core::Status> errors(kReaders + 1);
  std::vector<int> reads(kReaders, 0);
  {
    std::vector<std::jthread> threads;
    threads.emplace_back([&] {
      for (int b = 0; b < kBatches; ++b) {
        auto batch =
            Calls(kBatch, kBase + b * 1'000'000'000LL, 1000, "b" + std::to_string(b) + "-");
        if (auto s = store->WriteCalls(batch); !s.ok()) {
          errors[0] = s;
          break;
        }
      }
      writing = false;
    });
    for (int r = 0; r < kReaders; ++r) {
      threads.emplace_back([&, r] {
        // At least a few rounds, and on until the writer is done (bounded by its batches).
        for (int i = 0; i < 5 || (writing && i < 10'000); ++i) {
          storage::CallQuery list;
          list.filter.user = "user-7";
          storage::AggregateQuery agg;
          agg.group_by = storage::GroupBy::kModel;
          storage::TopQuery top;
          core::Status s = store->ListCalls(list).status();
          if (s.ok()) s = store->Aggregate(agg).status();
          if (s.ok()) s = store->Top(top).status();
          if (s.ok()) s = store->Stats().status();
          if (!s.ok()) {
            errors[static_cast<size_t>(r + 1)] = s;
            return;
          }
          reads[static_cast<size_t>(r)]++;
        }
      });
    }
  }
  for (const auto& s : errors) EXPECT_TRUE(s.ok()) << s.ToString();
  auto stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->calls, kBatches * kBatch);
}

// A clock that moves 1 ms each time it is read: the progress handler, which reads it every
// thousand VM instructions, sees time pass at a rate fixed by the work done, so a query over
// enough rows passes any small deadline deterministically.
class SteppingClock final : public core::Clock {
 public:
  core::MonoTime Now() const override {
    return core::MonoTime(core::Nanos(mono_.fetch_add(1'000'000) + 1'000'000));
  }
  int64_t UnixNanos() const override { return kBase; }

 private:
  mutable std::atomic<int64_t> mono_{0};
};

TEST(SqliteStore, AQueryPastItsDeadlineIsStoppedWithDeadlineExceeded) {
  SteppingClock clock;
  SqliteOptions o = OptionsFor(Dir().NewPath());
  o.clock = &clock;
  auto store = OpenOrFail(o);
  ASSERT_NE(store, nullptr);
  auto calls = Calls(20'000, kBase, 1'000'000, "d-");
  ASSERT_TRUE(store->WriteCalls(calls).ok());

  storage::AggregateQuery agg;
  agg.group_by = storage::GroupBy::kUser;
  agg.timeout = std::chrono::milliseconds(100);
  auto got = store->Aggregate(agg);
  ASSERT_EQ(got.status().code(), core::StatusCode::kDeadlineExceeded) << got.status().ToString();
  EXPECT_NE(got.status().message().find("stopped after"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("timeout 100 ms"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("narrow the time range"), std::string::npos);

  storage::CallQuery list;  // a full sort of every row before the first one comes out
  list.sort = storage::CallSort::kCost;
  list.timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(store->ListCalls(list).status().code(), core::StatusCode::kDeadlineExceeded);
  storage::TopQuery top;
  top.timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(store->Top(top).status().code(), core::StatusCode::kDeadlineExceeded);
  storage::TraceQuery traces;
  traces.timeout = std::chrono::milliseconds(1);
  (void)store->ListTraces(traces);  // no traced data: may finish, must not hang or crash

  // The connections are fine afterwards, and generous deadlines let the same queries finish.
  agg.timeout = std::chrono::hours(1);
  got = store->Aggregate(agg);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->rows.size(), 50u);
  list.timeout = std::chrono::hours(1);
  EXPECT_TRUE(store->ListCalls(list).ok());
}

TEST(SqliteStore, AggregateRefusesMoreValuesThanItsMemoryBound) {
  SqliteOptions o = OptionsFor(Dir().NewPath());
  o.max_percentile_values = 100;
  auto store = OpenOrFail(o);
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->WriteCalls(Calls(60, kBase, 1, "m-")).ok());  // 120 values
  auto got = store->Aggregate(storage::AggregateQuery{});
  EXPECT_EQ(got.status().code(), core::StatusCode::kResourceExhausted) << got.status().ToString();
  storage::AggregateQuery fewer;
  fewer.filter.to_unix_nanos = kBase + 50;  // 100 values
  EXPECT_TRUE(store->Aggregate(fewer).ok());
}

}  // namespace
}  // namespace llmscope::storage_sqlite
