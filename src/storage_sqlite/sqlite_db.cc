#include "storage_sqlite/sqlite_db.h"

#include <utility>

namespace llmscope::storage_sqlite::internal {

core::Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  core::StatusCode code = core::StatusCode::kInternal;
  switch (rc & 0xff) {  // the primary code of an extended one
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
      code = core::StatusCode::kUnavailable;
      break;
    case SQLITE_INTERRUPT:
      code = core::StatusCode::kDeadlineExceeded;
      break;
    default:
      break;
  }
  std::string message(what);
  message += ": ";
  // errmsg describes the most recent failure on the connection, which is `rc`'s when the
  // caller asks right away; without a connection only the generic text is known.
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  message += " (";
  message += sqlite3_errstr(rc);
  message += ")";
  return core::Status(code, std::move(message));
}

Db::~Db() {
  // sqlite3_close_v2 defers the close until every statement is finalized; the owners
  // finalize theirs first anyway.
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    if (db_ != nullptr) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

core::Result<Db> Db::Open(const std::string& path) {
  Db db;
  int rc = sqlite3_open_v2(
      path.c_str(), &db.db_,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  if (rc != SQLITE_OK) return SqliteError(db.db_, rc, "open " + path);
  return db;
}

core::Status Db::Exec(const std::string& sql, std::string_view what) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, what);
  return core::Status::Ok();
}

core::Result<int64_t> Db::QueryInt(const std::string& sql, std::string_view what) {
  auto stmt = Stmt::Prepare(db_, sql, false);
  if (!stmt.ok())
    return core::Status(stmt.status().code(), std::string(what) + ": " + stmt.status().message());
  int rc = stmt->Step();
  if (rc == SQLITE_ROW) return stmt->Int(0);
  if (rc == SQLITE_DONE) return int64_t{0};
  return SqliteError(db_, rc, what);
}

core::Result<std::string> Db::QueryText(const std::string& sql, std::string_view what) {
  auto stmt = Stmt::Prepare(db_, sql, false);
  if (!stmt.ok())
    return core::Status(stmt.status().code(), std::string(what) + ": " + stmt.status().message());
  int rc = stmt->Step();
  if (rc == SQLITE_ROW) return std::string(stmt->Text(0));
  if (rc == SQLITE_DONE) return std::string();
  return SqliteError(db_, rc, what);
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) sqlite3_finalize(stmt_);
}

Stmt::Stmt(Stmt&& other) noexcept : stmt_(std::exchange(other.stmt_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    if (stmt_ != nullptr) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

core::Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql, bool persistent) {
  Stmt stmt;
  int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &stmt.stmt_, nullptr);
  if (rc != SQLITE_OK) {
    return SqliteError(db, rc, "prepare \"" + std::string(sql.substr(0, 80)) + "\"");
  }
  return stmt;
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

void Stmt::BindText(int i, std::string_view v) {
  // A non-null pointer even for "": a null one would bind NULL, not the empty string.
  sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void Stmt::BindTextStatic(int i, std::string_view v) {
  sqlite3_bind_text64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC, SQLITE_UTF8);
}

void Stmt::BindBlob(int i, std::span<const uint8_t> v) {
  sqlite3_bind_blob64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT);
}

void Stmt::BindBlobStatic(int i, std::string_view v) {
  // A non-null pointer even when empty: a null one would bind NULL, not an empty BLOB.
  sqlite3_bind_blob64(stmt_, i, v.empty() ? "" : v.data(), v.size(), SQLITE_STATIC);
}

core::Status Stmt::Run(std::string_view what) {
  int rc = Step();
  if (rc == SQLITE_DONE || rc == SQLITE_ROW) return core::Status::Ok();
  return SqliteError(db(), rc, what);
}

std::string_view Stmt::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);  // after the text call, as SQLite requires
  return p == nullptr ? std::string_view() : std::string_view(p, static_cast<size_t>(n));
}

std::span<const uint8_t> Stmt::Blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::span<const uint8_t>()
                      : std::span<const uint8_t>(p, static_cast<size_t>(n));
}

}  // namespace llmscope::storage_sqlite::internal
