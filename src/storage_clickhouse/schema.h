#pragma once

#include <cstdint>
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
inline constexpr int kSchemaVersion = 2;

// The table that holds the calls (since schema version 2; version 1 named it "calls").
inline constexpr std::string_view kCallsTable = "calls_v2";

// The minimum compressed block that calls_v2 is laid out for: a page's row read decompresses
// a block of each column for every granule that holds one of its rows, so blocks about one
// granule of a column long keep that read proportional to the rows wanted. ClickHouse's
// default is 65536; current releases take it per table (Migrations), 18.16 only from the
// server's default profile (README.md, "Server settings").
inline constexpr int64_t kCallsBlockBytes = 4096;

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

// One step of the schema: `statements`, then `copies`, then `finally`. Every part is
// idempotent (IF NOT EXISTS, IF EXISTS; a copied row keeps its key and version, so rows
// copied twice are one row to every read and merge), so a migration cut short by a crash
// is simply run again at the next start. A table is dropped (in `finally`) only after its
// rows are copied.
struct Migration {
  // A table's rows copied into another, one day partition per INSERT ... SELECT (a large
  // table in one statement could outlast the statement timeout).
  struct Copy {
    std::string from;  // table names within the database
    std::string to;
    std::string columns;  // the columns of `to` inserted
    // What is selected from `from` for them; "{day}" stands for the day being copied (a
    // Date literal), for subqueries that should read that day only.
    std::string select;

    // The INSERT ... SELECT that copies the day `day_literal` (a SQL Date expression) in the
    // database `db`.
    std::string InsertFor(std::string_view db, std::string_view day_literal) const;
  };
  int version;
  std::string description;
  std::vector<std::string> statements;
  std::vector<Copy> copies;
  std::vector<std::string> finally;
};

// What the server supports, for statements that differ between releases.
struct ServerFeatures {
  // The MergeTree table setting min_compress_block_size (current releases; not 18.16).
  bool table_compress_block_size = false;
};

// Every migration in version order, for the database `db` (a plain identifier).
std::vector<Migration> Migrations(std::string_view db, const ServerFeatures& features = {});

// The advice to log when the calls table's compressed blocks are the server's default size
// (`profile_min_block` is the server's min_compress_block_size; 18.16 offers no table
// setting): list pages then read several times the bytes they need. Empty when nothing
// needs saying.
std::string BlockSizeAdvice(const ServerFeatures& features, int64_t profile_min_block);

// The schema_migrations table: one row per applied version.
std::string SchemaMigrationsDdl(std::string_view db);

}  // namespace llmscope::storage_clickhouse
