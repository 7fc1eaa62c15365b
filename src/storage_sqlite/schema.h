#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "storage_sqlite/sqlite_db.h"

// Internal to storage_sqlite: the database layout and its versioned migrations.
namespace llmscope::storage_sqlite::internal {

// The version this binary creates and understands (PRAGMA user_version). A migration
// brings version N-1 to N; a file of a newer version is refused, never touched.
inline constexpr int kSchemaVersion = 2;
// PRAGMA application_id of an llmscope event store: "LLMS" in ASCII. Marks the file as
// ours, so another application's SQLite file is refused instead of migrated.
inline constexpr int64_t kApplicationId = 0x4c4c4d53;

// Lookup indexes are split into this many buckets (see schema.cc). Part of the file format:
// changing it needs a migration that recomputes every bucket column.
inline constexpr uint64_t kLookupBuckets = 64;

// The bucket of a looked-up value (request id, trace id bytes, user, session): FNV-1a 64
// of its bytes, mod kLookupBuckets. Part of the file format, like kLookupBuckets.
int64_t LookupBucket(std::string_view bytes);

// Makes the database on `db` (the write connection, opened on `path`) an llmscope event
// store at kSchemaVersion: checks that the file is SQLite, ours or empty, and not newer;
// on an empty file sets auto_vacuum=INCREMENTAL (it must precede the first table); switches
// the file to WAL journaling (persistent in the file); then runs
// each pending migration in its own IMMEDIATE transaction, re-reading the version inside
// it so that two processes opening one new file do not both migrate. Errors name `path`:
// FAILED_PRECONDITION for a newer version or a foreign database, INTERNAL for a file that
// is not SQLite or is corrupt, UNAVAILABLE for I/O and locking failures. `target_version`
// below kSchemaVersion stops there (tests build files of earlier versions with it).
core::Status Migrate(Db& db, const std::string& path, int target_version = kSchemaVersion);

}  // namespace llmscope::storage_sqlite::internal
