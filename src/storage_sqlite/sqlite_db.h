#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

// Internal to storage_sqlite: thin RAII owners of SQLite handles that turn every result code
// into a core::Status. The only header that names sqlite3 types; included by this module's
// .cc files, never by its public header (sqlite_store.h) or by another module.
namespace llmscope::storage_sqlite::internal {

// The Status for SQLite result `rc` of operation `what` on `db` (may be null):
// "<what>: <sqlite3_errmsg> (<sqlite3_errstr>)". Codes: busy, locked, I/O, full disk and
// cannot-open are UNAVAILABLE (worth a retry); interrupt is DEADLINE_EXCEEDED (the progress
// handler stopped a query past its deadline); everything else is INTERNAL.
core::Status SqliteError(sqlite3* db, int rc, std::string_view what);

// Owns one connection. Thread-safety: a connection is used by one thread at a time (the
// store's mutex or pool guarantees it); SQLite is opened with SQLITE_OPEN_NOMUTEX.
class Db {
 public:
  Db() = default;
  ~Db();
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens `path` read-write, creating it when absent. Errors name the path.
  static core::Result<Db> Open(const std::string& path);

  sqlite3* get() const { return db_; }
  // Runs one or more statements that return no rows we need (PRAGMAs, DDL, BEGIN).
  core::Status Exec(const std::string& sql, std::string_view what);
  // The first column of the first row of `sql` as an integer / text (0 / "" for no row).
  core::Result<int64_t> QueryInt(const std::string& sql, std::string_view what);
  core::Result<std::string> QueryText(const std::string& sql, std::string_view what);

 private:
  sqlite3* db_ = nullptr;
};

// Owns one prepared statement. Thread-safety: as its connection.
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // `persistent`: the statement is kept and reused many times (SQLITE_PREPARE_PERSISTENT).
  static core::Result<Stmt> Prepare(sqlite3* db, std::string_view sql, bool persistent);

  sqlite3_stmt* get() const { return stmt_; }
  sqlite3* db() const { return sqlite3_db_handle(stmt_); }
  // Ready for new bindings and a new run: reset and bindings cleared.
  void Reset();

  // Binding, 1-based as SQLite counts. Text and blobs are copied (SQLITE_TRANSIENT) unless
  // `Static` says the bytes outlive the next Step/Reset.
  void BindInt(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindDouble(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  void BindText(int i, std::string_view v);
  void BindTextStatic(int i, std::string_view v);
  void BindBlob(int i, std::span<const uint8_t> v);
  void BindBlobStatic(int i, std::string_view v);

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(stmt_); }
  // Steps a statement that returns no rows; the Status names `what` on error.
  core::Status Run(std::string_view what);

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  // Valid until the next Step, Reset or a conversion of the same column.
  std::string_view Text(int col) const;
  std::span<const uint8_t> Blob(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace llmscope::storage_sqlite::internal
