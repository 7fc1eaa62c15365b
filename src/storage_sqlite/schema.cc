#include "storage_sqlite/schema.h"

#include <string_view>

namespace llmscope::storage_sqlite::internal {
namespace {

struct Migration {
  int version;
  const char* what;
  const char* sql;
};

// Ordered; a released migration is never edited, only followed by a new one.
//
// Layout (docs/decisions/0005-sqlite-event-store.md explains the choices):
// - calls is a WITHOUT ROWID table clustered on its key (start_unix_nanos, request_id):
//   list pages, aggregates and retention all read or cut a contiguous range of it, keyset
//   paging in start order walks the key itself, and a replayed call lands on its own row.
// - No index has a random insert position. Lookups by request id, trace id, user and
//   session go through "bucketed" indexes (bucket, start_unix_nanos, value): the bucket is
//   LookupBucket(value) (FNV-1a 64 of the bytes, mod kLookupBuckets), so each commit appends
//   to at most kLookupBuckets places per index instead of dirtying one page per call, and a
//   lookup scans one bucket's entries (1/kLookupBuckets of them), newest first, matching
//   the value inside the index without touching the table.
// - Times are INTEGER nanoseconds; enums are their INTEGER values; ids are BLOBs (NULL for
//   the zero id, so the trace index holds traced calls only).
// - Tags and finish reasons are BLOBs in a flat, byte-exact encoding (sqlite_store.cc,
//   EncodeTags): a tag filter is one instr() on the row, grouping by a tag one memmem in
//   the scan, and no side table costs an extra B-tree insert per tag.
// - call_content and spans are rowid tables: their rows are large (bodies, attribute JSON),
//   which WITHOUT ROWID tables handle poorly.
constexpr Migration kMigrations[] = {
    {1, "calls, call_content, spans", R"sql(
CREATE TABLE calls (
  start_unix_nanos INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  trace_id BLOB,
  span_id BLOB,
  parent_span_id BLOB,
  first_byte_nanos INTEGER NOT NULL,
  first_content_nanos INTEGER NOT NULL,
  end_nanos INTEGER NOT NULL,
  overhead_nanos INTEGER NOT NULL,
  endpoint INTEGER NOT NULL,
  stream INTEGER NOT NULL,
  requested_model TEXT NOT NULL,
  response_model TEXT NOT NULL,
  provider TEXT NOT NULL,
  provider_kind TEXT NOT NULL,
  http_status INTEGER NOT NULL,
  error INTEGER NOT NULL,
  error_message TEXT NOT NULL,
  client_cancelled INTEGER NOT NULL,
  max_tokens INTEGER,
  temperature REAL,
  top_p REAL,
  finish_reasons BLOB NOT NULL,
  input_tokens INTEGER NOT NULL,
  output_tokens INTEGER NOT NULL,
  cache_read_tokens INTEGER NOT NULL,
  cache_write_tokens INTEGER NOT NULL,
  reasoning_tokens INTEGER NOT NULL,
  usage_source INTEGER NOT NULL,
  cost_usd REAL,
  unpriced INTEGER NOT NULL,
  user TEXT NOT NULL,
  session TEXT NOT NULL,
  tags BLOB NOT NULL,
  id_bucket INTEGER NOT NULL,
  trace_bucket INTEGER NOT NULL,
  user_bucket INTEGER NOT NULL,
  session_bucket INTEGER NOT NULL,
  PRIMARY KEY (start_unix_nanos, request_id)
) WITHOUT ROWID;
CREATE INDEX calls_by_id ON calls (id_bucket, start_unix_nanos);
CREATE INDEX calls_by_trace ON calls (trace_bucket, start_unix_nanos, trace_id)
  WHERE trace_id IS NOT NULL;
CREATE INDEX calls_by_user ON calls (user_bucket, start_unix_nanos, user);
CREATE INDEX calls_by_session ON calls (session_bucket, start_unix_nanos, session)
  WHERE session != '';
CREATE INDEX calls_by_model ON calls (requested_model, start_unix_nanos);
CREATE INDEX calls_by_response_model ON calls (response_model, start_unix_nanos);

CREATE TABLE call_content (
  start_unix_nanos INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  request_body TEXT NOT NULL,
  response_text TEXT NOT NULL,
  UNIQUE (start_unix_nanos, request_id)
);

CREATE TABLE spans (
  trace_id BLOB NOT NULL,
  span_id BLOB NOT NULL,
  parent_span_id BLOB,
  name TEXT NOT NULL,
  kind INTEGER NOT NULL,
  service TEXT NOT NULL,
  scope TEXT NOT NULL,
  start_unix_nanos INTEGER NOT NULL,
  end_unix_nanos INTEGER NOT NULL,
  status INTEGER NOT NULL,
  status_message TEXT NOT NULL,
  resource_attributes TEXT NOT NULL,
  attributes TEXT NOT NULL,
  events TEXT NOT NULL,
  links TEXT NOT NULL,
  UNIQUE (trace_id, span_id)
);
-- Covers the trace summary scan (ListTraces) without touching the wide rows. (The unique
-- key of spans, random in trace id, is what OTLP ingestion pays per span.)
CREATE INDEX spans_start ON spans (start_unix_nanos, trace_id, end_unix_nanos, status, service);
)sql"},
    // Spans without a key on random trace ids. Version 1's UNIQUE (trace_id, span_id) put
    // every span at a random place of a growing index: a dirtied index page, written to the
    // WAL and checkpointed, per span, the largest single cost of storing spans. Now:
    // - the table is append-only in rowid order; a span's key is (start, trace_id, span_id),
    //   found through spans_start, which also covers the trace summary scan (ListTraces);
    // - spans_by_trace (trace_bucket, start, trace_id) serves GetTrace and the root lookup of
    //   ListTraces, bucketed as the calls' lookup indexes (64 append points per commit);
    // - attributes, events and links are BLOBs in the binary encoding of span_codec.h (rows
    //   copied from version 1 keep their JSON text, which the reader still decodes).
    // Every row is copied; llmscope_lookup_bucket is LookupBucket, registered by Migrate.
    {2, "spans keyed by start, trace and span id; binary attributes", R"sql(
CREATE TABLE spans_v2 (
  trace_id BLOB NOT NULL,
  span_id BLOB NOT NULL,
  parent_span_id BLOB,
  name TEXT NOT NULL,
  kind INTEGER NOT NULL,
  service TEXT NOT NULL,
  scope TEXT NOT NULL,
  start_unix_nanos INTEGER NOT NULL,
  end_unix_nanos INTEGER NOT NULL,
  status INTEGER NOT NULL,
  status_message TEXT NOT NULL,
  resource_attributes BLOB NOT NULL,
  attributes BLOB NOT NULL,
  events BLOB NOT NULL,
  links BLOB NOT NULL,
  trace_bucket INTEGER NOT NULL
);
INSERT INTO spans_v2 SELECT trace_id, span_id, parent_span_id, name, kind, service, scope,
  start_unix_nanos, end_unix_nanos, status, status_message, resource_attributes, attributes,
  events, links, llmscope_lookup_bucket(trace_id) FROM spans ORDER BY start_unix_nanos;
DROP TABLE spans;
ALTER TABLE spans_v2 RENAME TO spans;
CREATE INDEX spans_start
  ON spans (start_unix_nanos, trace_id, span_id, end_unix_nanos, status, service);
CREATE INDEX spans_by_trace ON spans (trace_bucket, start_unix_nanos, trace_id);
)sql"},
};

// llmscope_lookup_bucket(blob or text): LookupBucket of its bytes, for migrations.
void LookupBucketFunction(sqlite3_context* ctx, int, sqlite3_value** argv) {
  const void* p = sqlite3_value_blob(argv[0]);
  const int n = sqlite3_value_bytes(argv[0]);
  sqlite3_result_int64(
      ctx, LookupBucket(std::string_view(static_cast<const char*>(p), static_cast<size_t>(n))));
}

core::Status WithPath(const core::Status& s, const std::string& path) {
  return core::Status(s.code(), path + ": " + s.message());
}

}  // namespace

int64_t LookupBucket(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return static_cast<int64_t>(h % kLookupBuckets);
}

core::Status Migrate(Db& db, const std::string& path, int target_version) {
  // The first statement that reads the file: a file that is not SQLite fails here.
  auto app_id = db.QueryInt("PRAGMA application_id", "read the header");
  if (!app_id.ok()) {
    return WithPath(app_id.status(), path + " is not a usable SQLite database");
  }
  auto version = db.QueryInt("PRAGMA user_version", "read the schema version");
  if (!version.ok()) return WithPath(version.status(), path);
  auto objects = db.QueryInt("SELECT count(*) FROM sqlite_schema", "read the schema");
  if (!objects.ok()) return WithPath(objects.status(), path + " is corrupt or not SQLite");

  if (*app_id != 0 && *app_id != kApplicationId) {
    return core::FailedPrecondition(path + ": an SQLite database of another application " +
                                    "(application_id " + std::to_string(*app_id) +
                                    "); refusing to use it as an llmscope event store");
  }
  if (*version > kSchemaVersion) {
    return core::FailedPrecondition(
        path + ": schema version " + std::to_string(*version) + " is newer than the " +
        std::to_string(kSchemaVersion) +
        " this llmscope understands (written by a later release); refusing to open it. " +
        "Run the release that wrote it, or point storage at another file");
  }
  if (*version == 0 && *objects > 0) {
    return core::FailedPrecondition(path + ": an SQLite database with tables but no " +
                                    "llmscope schema version; refusing to use it as an " +
                                    "llmscope event store");
  }
  if (*version == 0) {
    // Only possible before the first table exists; lets retention give pages back to the
    // file system (PRAGMA incremental_vacuum) instead of keeping them on the free list.
    if (auto s = db.Exec("PRAGMA auto_vacuum = INCREMENTAL", "set auto_vacuum"); !s.ok()) {
      return WithPath(s, path);
    }
  }
  // Persistent in the file: readers then run beside the writer.
  auto mode = db.QueryText("PRAGMA journal_mode = WAL", "switch to WAL");
  if (!mode.ok()) return WithPath(mode.status(), path);
  if (*mode != "wal") {
    return core::Unavailable(path + ": cannot switch to WAL journaling (journal_mode is " + *mode +
                             "); is the file on a network file system?");
  }

  if (int rc = sqlite3_create_function_v2(db.get(), "llmscope_lookup_bucket", 1,
                                          SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                                          LookupBucketFunction, nullptr, nullptr, nullptr);
      rc != SQLITE_OK) {
    return WithPath(SqliteError(db.get(), rc, "register llmscope_lookup_bucket"), path);
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= *version || m.version > target_version) continue;
    std::string what =
        "migrate to schema version " + std::to_string(m.version) + " (" + m.what + ")";
    if (auto s = db.Exec("BEGIN IMMEDIATE", what); !s.ok()) return WithPath(s, path);
    // Another process may have migrated while this one waited for the lock.
    auto now = db.QueryInt("PRAGMA user_version", what);
    core::Status s = now.status();
    if (s.ok() && *now < m.version) {
      s = db.Exec(m.sql, what);
      if (s.ok()) {
        s = db.Exec("PRAGMA application_id = " + std::to_string(kApplicationId) +
                        "; PRAGMA user_version = " + std::to_string(m.version),
                    what);
      }
    }
    if (s.ok()) s = db.Exec("COMMIT", what);
    if (!s.ok()) {
      (void)db.Exec("ROLLBACK", "roll back");  // the error to report is the first one
      return WithPath(s, path);
    }
  }
  return core::Status::Ok();
}

}  // namespace llmscope::storage_sqlite::internal
