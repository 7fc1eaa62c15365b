#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

// The ClickHouse schema: table and view definitions, the column lists that the row codec
// (records.h) follows, and the versioned migrations. Every statement runs on ClickHouse
// 18.16 (Debian 12's package) and on current releases: plain types only (no DateTime64,
// Map, JSON or LowCardinality), no TTL clause, ReplacingMergeTree with the PARTITION BY /
// ORDER BY syntax that 18.16 introduced. README.md explains the design.
namespace llmscope::storage_clickhouse {

// The schema version this build writes and reads. Open refuses a database whose
// schema_migrations holds a newer version.
inline constexpr int kSchemaVersion = 1;

struct Column {
  std::string_view name;
  std::string_view type;
};

// The columns of one LlmCall in the calls table, in the order the row codec writes and
// reads them (content excluded: it lives in call_content).
std::span<const Column> CallColumns();
// The columns of one Span in the spans table, in codec order.
std::span<const Column> SpanColumns();

// "a, b, c": the names of `columns`, for INSERT and SELECT lists.
std::string ColumnList(std::span<const Column> columns);

// One step of the schema. Statements are idempotent (IF NOT EXISTS), so a migration cut
// short by a crash is simply run again at the next start.
struct Migration {
  int version;
  std::string description;
  std::vector<std::string> statements;
};

// Every migration in version order, for the database `db` (a plain identifier).
std::vector<Migration> Migrations(std::string_view db);

// The schema_migrations table: one row per applied version.
std::string SchemaMigrationsDdl(std::string_view db);

}  // namespace llmscope::storage_clickhouse
