#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"
#include "storage/store.h"

// The embedded event store: storage::Store on one SQLite file (docs/decisions/0005).
namespace llmscope::storage_sqlite {

// Settings of a SqliteStore, fixed at Open.
struct SqliteOptions {
  // The database file, created with its schema when absent (its directory must exist). WAL
  // journaling keeps two companion files beside it, <path>-wal and <path>-shm. REQUIRES: a
  // file path: "" and ":memory:" are refused (an in-memory database has no WAL and cannot be
  // shared by the read connections).
  std::string path;
  // Connections kept open for queries. WAL lets each read while the writer writes; a query
  // that finds them all busy waits for one, up to its own timeout. REQUIRES: 1..64.
  int read_connections = 2;
  // How long a statement waits for a lock another process holds (SQLite's busy timeout)
  // before failing with UNAVAILABLE. REQUIRES: >= 0.
  int64_t busy_timeout_ms = 5000;
  // Page cache of each read connection, in KiB (SQLite's cache_size). REQUIRES: >= 0.
  int64_t cache_kib_per_connection = 64 * 1024;
  // Page cache of the write connection, in KiB. Every commit updates each lookup index at up
  // to 64 places (one per bucket) plus the table's tail; the writer keeps those pages and
  // the interior pages above them cached, so that a commit reads none of them back from the
  // file. Memory is only taken as pages are used. REQUIRES: >= 0.
  int64_t writer_cache_kib = 256 * 1024;
  // Memory-mapped reads per connection, in bytes; 0 reads through the page cache only.
  // The mapping is address space, shared by every connection through the OS page cache.
  // REQUIRES: >= 0.
  int64_t mmap_bytes = 1LL << 30;
  // synchronous=FULL instead of NORMAL: every commit also survives power loss and OS
  // crashes, at one extra fsync per commit. NORMAL (the default) already survives a crash
  // or kill -9 of the process: WAL frames are in the OS before a commit returns.
  bool sync_every_commit = false;
  // WAL pages written before the writer copies them back into the database file
  // (wal_autocheckpoint). Larger means a page changed by many commits (the tail pages of
  // the lookup indexes change in every commit) is copied once per checkpoint instead of
  // once per commit, at the cost of a larger WAL file (up to about this many pages times
  // the 4 KiB page size, trimmed back to 64 MiB after each checkpoint). REQUIRES: >= 1.
  int64_t wal_autocheckpoint_pages = 16384;
  // Checkpoints off the write path: the writer does not copy the WAL back itself
  // (wal_autocheckpoint off); a thread of the store with its own connection runs a PASSIVE
  // checkpoint whenever a commit leaves wal_autocheckpoint_pages or more in the WAL, while
  // the writer goes on committing, then catches up on the commits made meanwhile under the
  // write lock (usually a batch or two), so that the next transaction starts the WAL over.
  // It takes about a tenth of the ingest CPU off the writing thread for the same total, so
  // it raises the ingest rate only where a core is idle; on a busy 2-core machine the
  // extra thread competes with the writer and ingest was slower (docs/BENCHMARKS.md), so
  // the default (false) is SQLite's own: the writer checkpoints inside its commits.
  bool background_checkpoint = false;
  // With background_checkpoint: the WAL bound. A commit that leaves more than this many
  // pages in the WAL (the checkpointer fell behind, e.g. on a starved machine) is followed
  // by a checkpoint in the writer itself, so the WAL file never holds more than this plus
  // one transaction. REQUIRES: >= wal_autocheckpoint_pages.
  int64_t wal_max_pages = 65536;
  // The most latency and time-to-first-token values one Aggregate may hold to compute
  // exact percentiles (8 bytes each); beyond it the query fails with RESOURCE_EXHAUSTED
  // asking for a narrower range. Bounds the memory of one aggregate query. REQUIRES: >= 1.
  int64_t max_percentile_values = 64 * 1024 * 1024;
  // The most distinct groups one Top query may sum before ranking them (about 100 bytes
  // each); beyond it the query fails with RESOURCE_EXHAUSTED. REQUIRES: >= 1.
  int64_t max_top_groups = 2'000'000;
  // Rows deleted per transaction by ApplyRetention; the write lock is released between
  // batches so that ingestion goes on during a large cut. REQUIRES: >= 1.
  int64_t retention_batch_rows = 50'000;
  // Measures query deadlines (CallQuery::timeout, ...). Borrowed: must outlive the store.
  // Null means the system clock.
  const core::Clock* clock = nullptr;
};

// Thread-safety: every method may be called from any number of threads at once. Writes
// (WriteCalls, WriteSpans, ApplyRetention) take turns on the one write connection under a
// mutex; queries borrow one of `read_connections` pooled connections and run beside them
// (WAL readers see the last committed state and never block the writer).
//
// The storage::Store seam on one SQLite file: calls, their tags and content, and spans, in
// the schema described in schema.cc. Each WriteCalls/WriteSpans is one transaction; an OK
// means it is committed (and, with synchronous=NORMAL, survives a crash of the process).
// Queries stop at their timeout via a progress handler (DEADLINE_EXCEEDED). Every SQLite
// failure becomes a Status naming the operation; nothing throws.
class SqliteStore final : public storage::Store {
 public:
  // Opens (creating and migrating when needed) the store at options.path. Errors name the
  // path: INVALID_ARGUMENT for bad options; FAILED_PRECONDITION for a schema newer than
  // this binary or another application's database; INTERNAL for a file that is not SQLite
  // or is corrupt; UNAVAILABLE when the file cannot be opened or locked.
  static core::Result<std::unique_ptr<SqliteStore>> Open(SqliteOptions options);

  // The schema version this binary creates (PRAGMA user_version of its files).
  static int SchemaVersion();

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  std::string_view name() const override { return "sqlite"; }
  core::Status Ping() override;
  core::Status WriteCalls(std::span<const core::LlmCall> calls) override;
  core::Status WriteSpans(std::span<const core::Span> spans) override;
  core::Result<storage::CallPage> ListCalls(const storage::CallQuery& query) override;
  core::Result<core::LlmCall> GetCall(std::string_view request_id) override;
  core::Result<storage::AggregateResult> Aggregate(const storage::AggregateQuery& query) override;
  core::Result<storage::TopResult> Top(const storage::TopQuery& query) override;
  core::Result<storage::TracePage> ListTraces(const storage::TraceQuery& query) override;
  core::Result<storage::TraceDetail> GetTrace(const core::TraceId& trace_id) override;
  // Deletes in batches of retention_batch_rows (one transaction each), then gives the freed
  // pages back to the file system with PRAGMA incremental_vacuum.
  core::Result<storage::RetentionReport> ApplyRetention(
      int64_t now_unix_nanos, const storage::RetentionOptions& options) override;
  // bytes_on_disk: the database's pages (page_count * page_size) plus the WAL file.
  core::Result<storage::StoreStats> Stats() override;

 private:
  struct Impl;
  explicit SqliteStore(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

}  // namespace llmscope::storage_sqlite
