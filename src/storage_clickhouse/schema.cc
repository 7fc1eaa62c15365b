#include "storage_clickhouse/schema.h"

#include <array>

namespace llmscope::storage_clickhouse {

namespace {

// Order matters: records.cc writes and reads the values in exactly this order.
constexpr std::array<Column, 35> kCallColumns = {{
    {"request_id", "String"},
    {"trace_id", "FixedString(16)"},
    {"span_id", "FixedString(8)"},
    {"parent_span_id", "FixedString(8)"},
    {"start_unix_nanos", "Int64"},
    {"first_byte_nanos", "Int64"},
    {"first_content_nanos", "Int64"},
    {"end_nanos", "Int64"},
    {"overhead_nanos", "Int64"},
    {"endpoint", "String"},
    {"stream", "UInt8"},
    {"requested_model", "String"},
    {"response_model", "String"},
    {"provider", "String"},
    {"provider_kind", "String"},
    {"http_status", "Int32"},
    {"error", "String"},
    {"error_message", "String"},
    {"client_cancelled", "UInt8"},
    {"max_tokens", "Nullable(Int64)"},
    {"temperature", "Nullable(Float64)"},
    {"top_p", "Nullable(Float64)"},
    {"finish_reasons", "Array(String)"},
    {"input_tokens", "Int64"},
    {"output_tokens", "Int64"},
    {"cache_read_tokens", "Int64"},
    {"cache_write_tokens", "Int64"},
    {"reasoning_tokens", "Int64"},
    {"usage_source", "String"},
    {"cost_usd", "Nullable(Float64)"},
    {"unpriced", "UInt8"},
    {"user_id", "String"},
    {"session_id", "String"},
    {"tag_keys", "Array(String)"},
    {"tag_values", "Array(String)"},
}};

constexpr std::array<Column, 15> kSpanColumns = {{
    {"trace_id", "FixedString(16)"},
    {"span_id", "FixedString(8)"},
    {"parent_span_id", "FixedString(8)"},
    {"name", "String"},
    {"kind", "UInt8"},
    {"service", "String"},
    {"scope", "String"},
    {"start_unix_nanos", "Int64"},
    {"end_unix_nanos", "Int64"},
    {"status", "UInt8"},
    {"status_message", "String"},
    {"resource_attributes", "String"},
    {"attributes", "String"},
    {"events", "String"},
    {"links", "String"},
}};

std::string Defs(std::span<const Column> columns) {
  std::string out;
  for (const auto& c : columns) {
    out += ",\n  ";
    out += c.name;
    out += ' ';
    out += c.type;
  }
  return out;
}

std::string Table(std::string_view db, std::string_view name) {
  return "`" + std::string(db) + "`." + std::string(name);
}

}  // namespace

std::span<const Column> CallColumns() { return kCallColumns; }
std::span<const Column> SpanColumns() { return kSpanColumns; }

std::string ColumnList(std::span<const Column> columns) {
  std::string out;
  for (const auto& c : columns) {
    if (!out.empty()) out += ", ";
    out += c.name;
  }
  return out;
}

std::string Migration::Copy::InsertFor(std::string_view db, std::string_view day_literal) const {
  std::string day_select = select;
  for (size_t at; (at = day_select.find("{day}")) != std::string::npos;) {
    day_select.replace(at, 5, day_literal);
  }
  return "INSERT INTO " + Table(db, to) + " (" + columns + ") SELECT " + day_select + " FROM " +
         Table(db, from) + " WHERE day = " + std::string(day_literal);
}

std::string BlockSizeAdvice(const ServerFeatures& features, int64_t profile_min_block) {
  if (features.table_compress_block_size || profile_min_block <= 4 * kCallsBlockBytes) return "";
  return "the server compresses in blocks of at least " + std::to_string(profile_min_block) +
         " bytes (min_compress_block_size) and cannot set it per table: list pages that filter "
         "on a user or session read several times the data they need. Set "
         "min_compress_block_size to " +
         std::to_string(kCallsBlockBytes) +
         " in the server's default profile (users.xml); it applies to data written afterwards";
}

std::string SchemaMigrationsDdl(std::string_view db) {
  return "CREATE TABLE IF NOT EXISTS " + Table(db, "schema_migrations") +
         " (version UInt32, applied_unix_nanos Int64, description String)"
         " ENGINE = MergeTree() ORDER BY version";
}

std::vector<Migration> Migrations(std::string_view db, const ServerFeatures& features) {
  const std::string calls_cols = ColumnList(kCallColumns);
  const std::string span_cols = ColumnList(kSpanColumns);
  Migration v1;
  v1.version = 1;
  v1.description = "calls, call_content, call_ids, spans, span_ids and their ingest views";
  auto& s = v1.statements;
  // Ingest tables: a WriteCalls/WriteSpans is one INSERT into a Null table, and the
  // materialized views below copy each row to the tables it belongs in, within that INSERT.
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "calls_in") +
              " (\n  day Date,\n  ver UInt64" + Defs(kCallColumns) +
              ",\n  request_body String,\n  response_text String\n) ENGINE = Null");
  // Calls: one day per partition (retention drops whole days), sorted by the call's key
  // (start, request_id) so that time ranges read only their granules and rows with one key
  // collapse to the highest ver. Reads use FINAL (or pick the highest ver themselves).
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "calls") + " (\n  day Date,\n  ver UInt64" +
              Defs(kCallColumns) +
              "\n) ENGINE = ReplacingMergeTree(ver) PARTITION BY day"
              " ORDER BY (start_unix_nanos, request_id) SETTINGS index_granularity = 2048");
  // Content: a row for every call written, empty when it has none, so that a rewrite
  // without content replaces the old content under the same key; has_content lets counts
  // skip the texts. Small granules because rows are large and read one at a time (18.16
  // has no adaptive granularity).
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "call_content") +
              " (\n  day Date,\n  ver UInt64,\n  start_unix_nanos Int64,\n  request_id String,"
              "\n  has_content UInt8,\n  request_body String,\n  response_text String\n)"
              " ENGINE = ReplacingMergeTree(ver) PARTITION BY day"
              " ORDER BY (start_unix_nanos, request_id) SETTINGS index_granularity = 128");
  // The request-id index for GetCall: where each id's calls start. Monthly partitions keep
  // the parts few, so one lookup probes few primary indexes.
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "call_ids") +
              " (\n  day Date,\n  ver UInt64,\n  request_id String,\n  start_unix_nanos Int64\n)"
              " ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(day)"
              " ORDER BY (request_id, start_unix_nanos) SETTINGS index_granularity = 1024");
  s.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "calls_mv") + " TO " +
              Table(db, "calls") + " AS SELECT day, ver, " + calls_cols + " FROM " +
              Table(db, "calls_in"));
  s.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "call_content_mv") + " TO " +
              Table(db, "call_content") +
              " AS SELECT day, ver, start_unix_nanos, request_id,"
              " toUInt8(request_body != '' OR response_text != '') AS has_content, request_body,"
              " response_text FROM " +
              Table(db, "calls_in"));
  s.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "call_ids_mv") + " TO " +
              Table(db, "call_ids") + " AS SELECT day, ver, request_id, start_unix_nanos FROM " +
              Table(db, "calls_in"));

  // row_kind of spans_in: 0 a span as written; 1 a tombstone for the span's row in another
  // day (a rewrite moved its start there).
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "spans_in") +
              " (\n  row_kind UInt8,\n  day Date,\n  ver UInt64" + Defs(kSpanColumns) +
              "\n) ENGINE = Null");
  // Spans: sorted by their key, so a trace is a few granules per day; a rewrite within the
  // day collapses by key, a rewrite that moves a span to another day leaves a tombstone.
  s.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, "spans") +
              " (\n  day Date,\n  ver UInt64,\n  deleted UInt8" + Defs(kSpanColumns) +
              "\n) ENGINE = ReplacingMergeTree(ver) PARTITION BY day"
              " ORDER BY (trace_id, span_id) SETTINGS index_granularity = 2048");
  s.push_back(
      "CREATE TABLE IF NOT EXISTS " + Table(db, "span_ids") +
      " (\n  day Date,\n  ver UInt64,\n  trace_id FixedString(16),\n  span_id FixedString(8),"
      "\n  start_unix_nanos Int64\n) ENGINE = ReplacingMergeTree(ver)"
      " PARTITION BY toYYYYMM(day) ORDER BY (trace_id, span_id)"
      " SETTINGS index_granularity = 1024");
  s.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "spans_mv") + " TO " +
              Table(db, "spans") + " AS SELECT day, ver, toUInt8(row_kind = 1) AS deleted, " +
              span_cols + " FROM " + Table(db, "spans_in") + " WHERE row_kind IN (0, 1)");
  s.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "span_ids_mv") + " TO " +
              Table(db, "span_ids") +
              " AS SELECT day, ver, trace_id, span_id, start_unix_nanos FROM " +
              Table(db, "spans_in") + " WHERE row_kind = 0");
  // Version 2: the calls in granules of 512 rows (2048 before), in compressed blocks of
  // about one granule of a column where the server lets a table say so. A list page reads
  // its ~50 rows by key, each from its own granule when the filter is selective (a light
  // user's calls lie ~40 granules apart): every one of the ~40 column streams then
  // decompresses a whole block and decodes a whole granule per row. Smaller granules and
  // blocks make that read about a third (measured in docs/BENCHMARKS.md); the bytes per
  // call grow about 7%. A table's granularity is fixed when it is created, so the calls
  // move to calls_v2: its view takes over from calls_mv, the stored rows are copied day by
  // day, and calls goes only after the copy.
  //
  // Content rows only for calls that have content (version 1 wrote an empty row for every
  // call, a fifth of the stored bytes, so that a rewrite without content would replace
  // the old content): calls_v2.has_content says whether the call's newest version has
  // content, and GetCall takes a content row only at the call's own version. Counts of
  // content are counts of calls_v2 rows with has_content (README.md, "The dedup rule").
  Migration v2;
  v2.version = 2;
  v2.description =
      "calls_v2: calls in granules of 512 rows and small compressed blocks, with has_content;"
      " content rows only for calls with content";
  std::string settings = "index_granularity = 512";
  if (features.table_compress_block_size) {
    settings += ", min_compress_block_size = " + std::to_string(kCallsBlockBytes);
  }
  v2.statements.push_back("CREATE TABLE IF NOT EXISTS " + Table(db, kCallsTable) +
                          " (\n  day Date,\n  ver UInt64" + Defs(kCallColumns) +
                          ",\n  has_content UInt8\n) ENGINE = ReplacingMergeTree(ver)"
                          " PARTITION BY day ORDER BY (start_unix_nanos, request_id) SETTINGS " +
                          settings);
  const std::string has_content = "toUInt8(request_body != '' OR response_text != '')";
  v2.statements.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " + Table(db, "calls_v2_mv") +
                          " TO " + Table(db, kCallsTable) + " AS SELECT day, ver, " + calls_cols +
                          ", " + has_content + " AS has_content FROM " + Table(db, "calls_in"));
  v2.statements.push_back("CREATE MATERIALIZED VIEW IF NOT EXISTS " +
                          Table(db, "call_content_v2_mv") + " TO " + Table(db, "call_content") +
                          " AS SELECT day, ver, start_unix_nanos, request_id, toUInt8(1) AS"
                          " has_content, request_body, response_text FROM " +
                          Table(db, "calls_in") + " WHERE " + has_content + " = 1");
  // The old views go after the new ones exist, so that a writer still running (an older
  // build during an upgrade) loses nothing in between; a row both copy is one row. A view
  // dropped leaves its TO table alone.
  v2.statements.push_back("DROP TABLE IF EXISTS " + Table(db, "calls_mv"));
  v2.statements.push_back("DROP TABLE IF EXISTS " + Table(db, "call_content_mv"));
  // A copied call has content when call_content holds a row with content at its version.
  v2.copies.push_back({"calls", std::string(kCallsTable),
                       "day, ver, " + calls_cols + ", has_content",
                       "day, ver, " + calls_cols +
                           ", toUInt8((start_unix_nanos, request_id, ver) IN (SELECT"
                           " start_unix_nanos, request_id, ver FROM " +
                           Table(db, "call_content") + " WHERE day = {day} AND has_content = 1))"});
  v2.finally.push_back("DROP TABLE IF EXISTS " + Table(db, "calls"));

  std::vector<Migration> all;
  all.push_back(std::move(v1));
  all.push_back(std::move(v2));
  return all;
}

}  // namespace llmscope::storage_clickhouse
