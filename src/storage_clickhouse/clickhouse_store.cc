#include "storage_clickhouse/clickhouse_store.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include "storage_clickhouse/connection.h"
#include "storage_clickhouse/records.h"
#include "storage_clickhouse/row_binary.h"
#include "storage_clickhouse/schema.h"

namespace llmscope::storage_clickhouse {

namespace {

using storage::CallFilter;
using storage::CallSort;
using storage::GroupBy;
using storage::kNanosPerDay;

constexpr int64_t kLastDay = UINT16_MAX;  // the last day a Date holds
// FetchCalls reads this many keys or more as two statements at once.
constexpr size_t kSplitFetchKeys = 16;
// The slices of a start-time page's range tried before the whole range (see ListCalls).
constexpr int64_t kPageWindows[] = {kNanosPerDay / 24, kNanosPerDay, 8 * kNanosPerDay,
                                    64 * kNanosPerDay};

// The slice of a start-time page to read after one of `width` that held `found` rows,
// fewer than the `wanted`: twice the width those rows suggest, at least twice `width`, at
// most the next of kPageWindows (so the slices stay few); 0 after the last. A user with a
// thousand calls a day then reads about two hours rather than the whole day.
int64_t NextPageWindow(int64_t width, size_t found, size_t wanted) {
  int64_t ladder = 0;
  for (int64_t w : kPageWindows) {
    if (w > width) {
      ladder = w;
      break;
    }
  }
  if (ladder == 0 || found == 0) return ladder;
  const double estimate =
      static_cast<double>(width) * 2.0 * static_cast<double>(wanted) / static_cast<double>(found);
  if (estimate >= static_cast<double>(ladder)) return ladder;
  return std::min(ladder, std::max(2 * width, static_cast<int64_t>(estimate)));
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? INT64_MAX : INT64_MIN;
  return r;
}

template <typename T, typename Fn>
std::string JoinLiterals(const T& values, Fn literal) {
  std::string out;
  for (const auto& v : values) {
    if (!out.empty()) out += ", ";
    out += literal(v);
  }
  return out;
}

// "day IN ('2024-03-01', ...)" for the days of these instants: a key read with its
// partition named reads only that partition's parts (the sparse index of 18.16 cannot rule
// out the last granule of any other part).
template <typename Starts>
std::string DaysOf(const Starts& starts) {
  std::set<int64_t> days;
  for (int64_t s : starts) days.insert(DayOf(s));
  return "day IN (" + JoinLiterals(days, [](int64_t d) { return SqlDate(d); }) + ")";
}

core::Status Unreadable(std::string_view what) {
  return core::Internal("clickhouse: unreadable answer to the " + std::string(what) + " query");
}

// "a, b, c" of SQL literals.

// The WHERE conditions of a call filter, on the calls table read with FINAL. The day bounds
// repeat the start bounds in terms of the partition key, so whole partitions are skipped.
std::string CallWhere(const CallFilter& f) {
  std::string w = "1";
  if (f.from_unix_nanos != INT64_MIN) {
    w += " AND start_unix_nanos >= " + SqlInt(f.from_unix_nanos);
    w += " AND day >= " + SqlDate(DayOf(f.from_unix_nanos));
  }
  if (f.to_unix_nanos != INT64_MAX) {
    w += " AND start_unix_nanos < " + SqlInt(f.to_unix_nanos);
    w += " AND day <= " + SqlDate(DayOf(f.to_unix_nanos - 1));
  }
  if (f.model) {
    w += " AND (requested_model = " + SqlString(*f.model) +
         " OR response_model = " + SqlString(*f.model) + ")";
  }
  if (f.provider) w += " AND provider = " + SqlString(*f.provider);
  if (f.user) w += " AND user_id = " + SqlString(*f.user);
  if (f.session) w += " AND session_id = " + SqlString(*f.session);
  if (f.tag) {
    w += " AND arrayExists((k, v) -> k = " + SqlString(f.tag->first) +
         " AND v = " + SqlString(f.tag->second) + ", tag_keys, tag_values)";
  }
  if (f.http_status) w += " AND http_status = " + std::to_string(*f.http_status);
  if (f.error) w += " AND error = " + SqlString(core::ErrorClassName(*f.error));
  if (f.endpoint) w += " AND endpoint = " + SqlString(core::EndpointName(*f.endpoint));
  if (f.usage_source) {
    w += " AND usage_source = " + SqlString(core::UsageSourceName(*f.usage_source));
  }
  if (f.trace_id) w += " AND trace_id = " + SqlBytes(*f.trace_id);
  // Validate() keeps both minimums non-negative, so -1 ("no end", "unpriced") never passes.
  if (f.min_duration_nanos) w += " AND end_nanos >= " + SqlInt(*f.min_duration_nanos);
  if (f.min_cost_usd) w += " AND ifNull(cost_usd, -1.) >= " + SqlFloat64(*f.min_cost_usd);
  if (!f.request_id_contains.empty()) {
    w += " AND position(request_id, " + SqlString(f.request_id_contains) + ") > 0";
  }
  return w;
}

// The sort value of storage::SortValue as a SQL expression of the same type.
std::string SortExpr(CallSort sort) {
  switch (sort) {
    case CallSort::kStartTime:
      return "start_unix_nanos";
    case CallSort::kDuration:
      return "if(end_nanos < 0, toInt64(-1), end_nanos)";
    case CallSort::kCost:
      return "ifNull(cost_usd, -1.)";
    case CallSort::kTotalTokens:
      return "(input_tokens + output_tokens)";
  }
  return "start_unix_nanos";
}

std::string SortLiteral(const std::variant<int64_t, double>& v) {
  if (const auto* d = std::get_if<double>(&v)) return SqlFloat64(*d);
  return SqlInt(std::get<int64_t>(v));
}

std::string GroupExpr(GroupBy g, const std::string& tag_key) {
  switch (g) {
    case GroupBy::kNone:
      return "''";
    case GroupBy::kModel:
      return "requested_model";
    case GroupBy::kProvider:
      return "provider";
    case GroupBy::kUser:
      return "user_id";
    case GroupBy::kTag:
      // indexOf finds the first occurrence; element 0 of an array is the type's default ("").
      return "tag_values[indexOf(tag_keys, " + SqlString(tag_key) + ")]";
    case GroupBy::kEndpoint:
      return "endpoint";
  }
  return "''";
}

// Floor of start_unix_nanos to the bucket (floor, not truncation, for instants before 1970).
std::string BucketExpr(storage::TimeBucket b) {
  int64_t w = storage::BucketWidthNanos(b);
  if (w == 0) return "toInt64(0)";
  std::string width = "toInt64(" + std::to_string(w) + ")";
  return "toInt64(start_unix_nanos - ((start_unix_nanos % " + width + ") + " + width + ") % " +
         width + ")";
}

// Parses a "YYYYMMDD" (day) or "YYYYMM" (month) partition id into days since the epoch of
// its first day; nullopt for anything else.
std::optional<int64_t> PartitionFirstDay(std::string_view id) {
  if (id.size() != 8 && id.size() != 6) return std::nullopt;
  int year = 0;
  unsigned month = 0, day = 1;
  auto num = [](std::string_view s, auto& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
  };
  if (!num(id.substr(0, 4), year) || !num(id.substr(4, 2), month)) return std::nullopt;
  if (id.size() == 8 && !num(id.substr(6, 2), day)) return std::nullopt;
  namespace chr = std::chrono;
  chr::year_month_day ymd{chr::year{year}, chr::month{month}, chr::day{day}};
  if (!ymd.ok()) return std::nullopt;
  return chr::sys_days{ymd}.time_since_epoch().count();
}

// The first day of the month after the one that starts on `first_day`.
int64_t NextMonthFirstDay(int64_t first_day) {
  namespace chr = std::chrono;
  chr::year_month_day ymd{chr::sys_days{chr::days{first_day}}};
  chr::year_month next = chr::year_month{ymd.year(), ymd.month()} + chr::months{1};
  return chr::sys_days{next / chr::day{1}}.time_since_epoch().count();
}

}  // namespace

ClickHouseStore::ClickHouseStore(ClickHouseOptions options, std::unique_ptr<Connection> connection)
    : options_(std::move(options)),
      conn_(std::move(connection)),
      clock_(options_.clock ? *options_.clock : system_clock_) {}

ClickHouseStore::~ClickHouseStore() = default;

std::string ClickHouseStore::Table(std::string_view name) const {
  return "`" + options_.database + "`." + std::string(name);
}

core::Result<std::string> ClickHouseStore::Query(const std::string& sql, core::Nanos timeout) {
  return conn_->Query(sql, timeout);
}

uint64_t ClickHouseStore::NextVersions(size_t n) {
  const int64_t now = clock_.UnixNanos();
  const uint64_t want = now > 0 ? static_cast<uint64_t>(now) : 1;
  uint64_t last = last_version_.load();
  uint64_t base;
  do {
    base = std::max(want, last + 1);
  } while (!last_version_.compare_exchange_weak(last, base + (n > 0 ? n - 1 : 0)));
  return base;
}

core::Result<std::unique_ptr<ClickHouseStore>> ClickHouseStore::Open(ClickHouseOptions options) {
  bool name_ok = !options.database.empty();
  for (char ch : options.database) {
    name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
  }
  if (!name_ok) {
    return core::InvalidArgument("database: '" + options.database +
                                 "' must be letters, digits and underscores");
  }
  if (options.timeout <= core::Nanos::zero()) {
    return core::InvalidArgument("timeout: must be positive");
  }
  auto conn = Connection::Create(options.url, options.user, options.password);
  if (!conn.ok()) return conn.status();
  auto store = std::unique_ptr<ClickHouseStore>(
      new ClickHouseStore(std::move(options), std::move(conn).value()));
  if (auto s = store->Migrate(); !s.ok()) return s;
  return store;
}

core::Result<int> ClickHouseStore::SchemaVersion() {
  auto body = Query(
      "SELECT toUInt32(max(version)) FROM " + Table("schema_migrations") + " FORMAT RowBinary",
      options_.timeout);
  if (!body.ok()) return body.status();
  RowBinaryReader r(*body);
  uint32_t v = r.UInt32();
  if (r.failed()) return Unreadable("schema version");
  return static_cast<int>(v);
}

core::Status ClickHouseStore::Migrate() {
  const core::Nanos t = options_.timeout;
  const std::string& db = options_.database;
  if (auto r = Query("CREATE DATABASE IF NOT EXISTS `" + db + "`", t); !r.ok()) return r.status();
  if (auto r = Query(SchemaMigrationsDdl(db), t); !r.ok()) return r.status();
  auto current = SchemaVersion();
  if (!current.ok()) return current.status();
  if (*current > kSchemaVersion) {
    return core::FailedPrecondition(
        "clickhouse database '" + db + "' has schema version " + std::to_string(*current) +
        ", newer than the version " + std::to_string(kSchemaVersion) +
        " this build knows; refusing to use it (run a newer llmscope, or another database)");
  }
  // What this server supports: system.merge_tree_settings lists the table settings.
  ServerFeatures features;
  auto table_setting = Query(
      "SELECT name FROM system.merge_tree_settings WHERE name = 'min_compress_block_size'"
      " FORMAT RowBinary",
      t);
  if (!table_setting.ok()) return table_setting.status();
  features.table_compress_block_size = !table_setting->empty();
  for (const Migration& m : Migrations(db, features)) {
    if (m.version <= *current) continue;
    auto failed = [&](const core::Status& s) {
      return core::Status(
          s.code(), "schema migration " + std::to_string(m.version) + " failed: " + s.message());
    };
    for (const std::string& statement : m.statements) {
      if (auto r = Query(statement, t); !r.ok()) return failed(r.status());
    }
    for (const Migration::Copy& c : m.copies) {
      if (auto s = CopyTable(c); !s.ok()) return failed(s);
    }
    for (const std::string& statement : m.finally) {
      if (auto r = Query(statement, t); !r.ok()) return failed(r.status());
    }
    auto r = Query("INSERT INTO " + Table("schema_migrations") +
                       " (version, applied_unix_nanos, description) VALUES (" +
                       std::to_string(m.version) + ", " + SqlInt(clock_.UnixNanos()) + ", " +
                       SqlString(m.description) + ")",
                   t);
    if (!r.ok()) return r.status();
  }
  // Settings only some versions know. Current releases refuse an INSERT block spanning more
  // than 100 partitions (days) by default; a replayed backlog can span more. 18.16 has no
  // such limit and would refuse the unknown setting.
  auto known = Query(
      "SELECT name FROM system.settings WHERE name = 'max_partitions_per_insert_block'"
      " FORMAT RowBinary",
      t);
  if (!known.ok()) return known.status();
  if (!known->empty()) conn_->set_extra_settings("&max_partitions_per_insert_block=0");
  // Advice when the calls' blocks are the server's size and that size is large.
  if (!features.table_compress_block_size) {
    auto block = CountRows(
        "SELECT toInt64(value) FROM system.settings WHERE name = 'min_compress_block_size'");
    if (!block.ok()) return block.status();
    advice_ = BlockSizeAdvice(features, *block);
  }
  // Versions continue above every stored one, even if the clock stepped back since.
  auto max_ver = Query("SELECT greatest((SELECT max(ver) FROM " + Table("call_ids") +
                           "), (SELECT max(ver) FROM " + Table("span_ids") + ")) FORMAT RowBinary",
                       t);
  if (!max_ver.ok()) return max_ver.status();
  RowBinaryReader r(*max_ver);
  uint64_t v = r.UInt64();
  if (r.failed()) return Unreadable("version");
  last_version_.store(v);
  return core::Status::Ok();
}

core::Status ClickHouseStore::CopyTable(const Migration::Copy& c) {
  auto from = DayPartitions(c.from);
  if (!from.ok()) return from.status();
  // Every day, also when a migration runs again after a crash: the rows copied before are
  // copied again, and their duplicates (same key, same version) collapse. A day is never
  // taken for done by its row count, which writes to c.to during the copy would inflate.
  for (const auto& [day, p] : *from) {
    // A day of a large store takes longer than a query may: the bound here is an hour.
    auto r = Query(c.InsertFor(options_.database, SqlDate(day)),
                   std::max<core::Nanos>(options_.timeout, std::chrono::hours(1)));
    if (!r.ok()) return r.status();
  }
  return core::Status::Ok();
}

core::Status ClickHouseStore::Ping() { return conn_->Ping(options_.timeout); }

// ----- Writes ------------------------------------------------------------------------------

core::Status ClickHouseStore::WriteCalls(std::span<const core::LlmCall> calls) {
  if (calls.empty()) return core::Status::Ok();
  // Within a batch the later row of a key wins: keep only the last occurrence of each.
  std::map<std::pair<std::string_view, int64_t>, size_t> last;
  for (size_t i = 0; i < calls.size(); ++i) {
    last[{calls[i].request_id, calls[i].start_unix_nanos}] = i;
  }
  // One INSERT: the views copy each row to calls_v2 (with has_content), call_content (only
  // a call that has content) and call_ids.
  uint64_t ver = NextVersions(last.size());
  std::string data;
  RowBinaryWriter w(data);
  for (size_t i = 0; i < calls.size(); ++i) {
    if (last[{calls[i].request_id, calls[i].start_unix_nanos}] != i) continue;
    AppendCallRow(w, ver++, calls[i]);
  }
  auto inserted = conn_->Insert(
      "INSERT INTO " + Table("calls_in") + " (" + CallsInColumns() + ") FORMAT RowBinary",
      std::move(data), options_.timeout);
  // Whatever the outcome (a timed-out INSERT may still land): the days may have changed.
  calls_generation_.fetch_add(1);
  return inserted;
}

core::Status ClickHouseStore::WriteSpans(std::span<const core::Span> spans) {
  if (spans.empty()) return core::Status::Ok();
  using Key = std::pair<core::TraceId, core::SpanId>;
  std::map<Key, size_t> last;
  for (size_t i = 0; i < spans.size(); ++i) last[{spans[i].trace_id, spans[i].span_id}] = i;
  std::set<core::TraceId> traces;
  std::set<core::SpanId> span_ids;
  for (const auto& s : spans) {
    traces.insert(s.trace_id);
    span_ids.insert(s.span_id);
  }
  // A span's key does not hold its start, so a rewrite within the same day collapses by
  // key; one that moves the span to another day (another partition) needs a tombstone there.
  auto found = Query("SELECT trace_id, span_id, start_unix_nanos FROM " + Table("span_ids") +
                         " WHERE trace_id IN (" +
                         JoinLiterals(traces, [](const core::TraceId& t) { return SqlBytes(t); }) +
                         ") AND span_id IN (" +
                         JoinLiterals(span_ids, [](const core::SpanId& s) { return SqlBytes(s); }) +
                         ") FORMAT RowBinary",
                     options_.timeout);
  if (!found.ok()) return found.status();
  std::set<std::tuple<Key, int64_t>> tombstones;
  RowBinaryReader r(*found);
  while (!r.AtEnd()) {
    Key key{r.FixedString<16>(), r.FixedString<8>()};
    int64_t old_start = r.Int64();
    if (r.failed()) return Unreadable("span id");
    auto it = last.find(key);
    if (it == last.end()) continue;
    if (DayOf(old_start) != DayOf(spans[it->second].start_unix_nanos)) {
      tombstones.emplace(key, old_start);
    }
  }
  uint64_t ver = NextVersions(tombstones.size() + last.size());
  std::string data;
  RowBinaryWriter w(data);
  for (const auto& [key, start] : tombstones) {
    core::Span t;
    t.trace_id = key.first;
    t.span_id = key.second;
    t.start_unix_nanos = start;
    AppendSpanRow(w, RowKind::kTombstone, ver++, t);
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    if (last[{spans[i].trace_id, spans[i].span_id}] != i) continue;
    AppendSpanRow(w, RowKind::kLive, ver++, spans[i]);
  }
  return conn_->Insert(
      "INSERT INTO " + Table("spans_in") + " (" + SpansInColumns() + ") FORMAT RowBinary",
      std::move(data), options_.timeout);
}

// ----- Calls ---------------------------------------------------------------------------------

core::Result<std::vector<core::LlmCall>> ClickHouseStore::FetchCalls(
    const std::vector<CallKey>& keys, core::Nanos timeout, std::vector<uint64_t>* versions) {
  std::vector<core::LlmCall> out;
  if (versions != nullptr) versions->clear();
  if (keys.empty()) return out;
  // Read by primary key without FINAL (which would merge every column of every granule
  // read) and keep the highest version of each key here. The starts first (PREWHERE): the
  // other columns are then read only for the granules holding a key.
  auto read = [&](size_t begin, size_t end) {
    std::set<int64_t> starts;
    std::set<std::string_view> ids;
    for (size_t i = begin; i < end; ++i) {
      starts.insert(keys[i].start_unix_nanos);
      ids.insert(keys[i].request_id);
    }
    return Query("SELECT " + StoredCallSelect() + " FROM " + Table(kCallsTable) +
                     " PREWHERE start_unix_nanos IN (" + JoinLiterals(starts, SqlInt) + ") WHERE " +
                     DaysOf(starts) + " AND request_id IN (" + JoinLiterals(ids, SqlString) +
                     ") FORMAT RowBinary",
                 timeout);
  };
  // Many keys are read as two statements at once: the keys of a selective page lie in
  // about as many granules, a few thousand rows, which ClickHouse reads in one thread
  // (below merge_tree_min_rows_for_concurrent_read), so a second core would sit idle.
  const size_t half = keys.size() >= kSplitFetchKeys ? keys.size() / 2 : keys.size();
  core::Result<std::string> second = std::string();
  std::optional<std::jthread> helper;
  if (half < keys.size()) {
    try {
      helper.emplace([&] { second = read(half, keys.size()); });
    } catch (const std::system_error&) {
      // No thread to be had: the second half is read after the first, below.
    }
  }
  auto first = read(0, half);
  if (helper) {
    helper->join();
  } else if (half < keys.size()) {
    second = read(half, keys.size());
  }
  if (!first.ok()) return first.status();
  if (!second.ok()) return second.status();
  std::string body = std::move(first).value();
  body += *second;
  std::map<std::pair<int64_t, std::string>, StoredCall> newest;
  RowBinaryReader r(body);
  while (!r.AtEnd()) {
    auto row = ReadStoredCall(r);
    if (!row.ok()) return row.status();
    auto key = std::make_pair(row->call.start_unix_nanos, row->call.request_id);
    auto it = newest.find(key);
    if (it == newest.end()) {
      newest.emplace(std::move(key), std::move(row).value());
    } else if (row->ver > it->second.ver) {
      it->second = std::move(row).value();
    }
  }
  out.reserve(keys.size());
  for (const auto& k : keys) {
    auto it = newest.find({k.start_unix_nanos, k.request_id});
    // Absent: removed by retention between the two reads; leave it out.
    if (it == newest.end()) continue;
    if (versions != nullptr) versions->push_back(it->second.ver);
    out.push_back(std::move(it->second.call));
    newest.erase(it);
  }
  return out;
}

core::Result<storage::CallPage> ClickHouseStore::ListCalls(const storage::CallQuery& q) {
  if (auto s = storage::Validate(q); !s.ok()) return s;
  auto page = ListCallsPass(q, /*exact=*/false);
  if (!page.ok()) return page.status();
  if (*page) return std::move(**page);
  page = ListCallsPass(q, /*exact=*/true);
  if (!page.ok()) return page.status();
  if (!*page) return core::Internal("clickhouse: the exact call list gave no page");
  return std::move(**page);
}

core::Result<std::optional<storage::CallPage>> ClickHouseStore::ListCallsPass(
    const storage::CallQuery& q, bool exact) {
  const std::optional<storage::CallPage> kGiveUp;
  const std::string sort = SortExpr(q.sort);
  const char* dir = q.descending ? " DESC" : " ASC";
  std::string where = CallWhere(q.filter);
  std::optional<storage::CallCursor> cursor;
  if (!q.cursor.empty()) {
    auto c = storage::DecodeCallCursor(q.cursor, q.sort, q.descending);
    if (!c.ok()) return c.status();
    cursor = std::move(c).value();
    const char* op = q.descending ? " < " : " > ";
    std::string v = SortLiteral(cursor->value);
    where += " AND (" + sort + op + v + " OR (" + sort + " = " + v + " AND request_id" + op +
             SqlString(cursor->request_id) + "))";
  }
  // Two steps: the page's keys (and their sort values), then the page's rows by primary key.
  //
  // exact: the keys from a narrow FINAL read, deduplicated before filtering (a filter must
  // see only the newest version of each call). FINAL merges every part of the range in one
  // stream: about 100 ms per day of 333k calls on 2 cores.
  //
  // Otherwise the keys from a plain read of the same rows, which ClickHouse reads in
  // parallel with the filter as PREWHERE (a fifth of FINAL's time). Its first limit + 1 rows
  // are the page when they are distinct keys and each is its key's newest version (checked
  // against the versions the second step reads): a key whose newest version passes the
  // filter has that row among the rows read, so a key missing from the first rows sorts
  // after them. Duplicates or an older version (a rewrite or replay not merged yet) make
  // the pass give up, and the exact pass answers.
  // The plain read filters first on the most selective equality the filter has (the
  // server's own choice is often the start bound, which every row in the slice passes):
  // only the granules holding a match are then read for the other columns. Not with FINAL,
  // where a PREWHERE would filter versions before they are merged.
  std::string prewhere;
  if (q.filter.trace_id) {
    prewhere = " PREWHERE trace_id = " + SqlBytes(*q.filter.trace_id);
  } else if (q.filter.session) {
    prewhere = " PREWHERE session_id = " + SqlString(*q.filter.session);
  } else if (q.filter.user) {
    prewhere = " PREWHERE user_id = " + SqlString(*q.filter.user);
  }
  std::vector<CallKey> keys;
  std::vector<std::variant<int64_t, double>> values;
  std::vector<uint64_t> versions;
  auto read_keys = [&](const std::string& slice) -> core::Status {
    keys.clear();
    values.clear();
    versions.clear();
    auto body = Query("SELECT start_unix_nanos, request_id, " + sort + ", " +
                          (exact ? "toUInt64(0)" : "ver") + " FROM " + Table(kCallsTable) +
                          (exact ? " FINAL" : prewhere) + " WHERE " + where + slice + " ORDER BY " +
                          sort + dir + ", request_id" + dir + " LIMIT " +
                          std::to_string(q.limit + 1) + " FORMAT RowBinary",
                      q.timeout);
    if (!body.ok()) return body.status();
    RowBinaryReader r(*body);
    while (!r.AtEnd()) {
      CallKey k;
      k.start_unix_nanos = r.Int64();
      k.request_id = r.String();
      if (q.sort == CallSort::kCost) {
        values.emplace_back(r.Float64());
      } else {
        values.emplace_back(r.Int64());
      }
      versions.push_back(r.UInt64());
      if (r.failed()) return Unreadable("call list");
      keys.push_back(std::move(k));
    }
    return core::Status::Ok();
  };

  // 18.16 cannot stop reading early in key order, so the newest page of a wide range would
  // read the whole range. A start-time page tries slices of the range from the page's edge
  // (the cursor, the range's end, or the newest stored call) first, an hour, a day, 8 and 64
  // days: when a slice holds more rows than the page, they are exactly the page's rows,
  // because every row outside the slice sorts after them.
  const int64_t from = q.filter.from_unix_nanos;
  const int64_t to = q.filter.to_unix_nanos;
  bool done = false;
  const bool narrow = from != INT64_MIN && to != INT64_MAX && to - from <= kPageWindows[0];
  if (q.sort == CallSort::kStartTime && !narrow) {
    auto days = CallDays();
    if (!days.ok()) return days.status();
    if (!*days) return std::optional(storage::CallPage{});
    const int64_t first_day = (*days)->first;
    const int64_t last_day = (*days)->second;
    std::optional<int64_t> cursor_start;
    if (cursor) cursor_start = std::get<int64_t>(cursor->value);
    // The newest (oldest) start stored before (from) `edge` in the newest (oldest) day: the
    // edge partition may hold a few calls only (a day just begun), and slices measured from
    // its boundary would then be nearly empty. One day's key column: a few ms.
    auto stored_edge = [&](int64_t day, const std::string& bound) -> core::Result<int64_t> {
      auto body = Query(std::string("SELECT ") + (q.descending ? "max" : "min") +
                            "(start_unix_nanos), count() FROM " + Table(kCallsTable) +
                            " WHERE day = " + SqlDate(day) + " AND " + bound + " FORMAT RowBinary",
                        q.timeout);
      if (!body.ok()) return body.status();
      RowBinaryReader r(*body);
      const int64_t v = r.Int64();
      const uint64_t n = r.UInt64();
      if (r.failed()) return Unreadable("page edge");
      if (n == 0) return core::NotFound("");
      return v;
    };
    if (q.descending) {
      int64_t edge = to;  // exclusive
      if (cursor_start) edge = std::min(edge, SaturatingAdd(*cursor_start, 1));
      if (last_day < kLastDay) edge = std::min(edge, (last_day + 1) * kNanosPerDay);
      if (!cursor_start && edge > last_day * kNanosPerDay) {
        auto newest = stored_edge(last_day, "start_unix_nanos < " + SqlInt(edge));
        if (newest.ok()) {
          edge = SaturatingAdd(*newest, 1);
        } else if (newest.status().code() != core::StatusCode::kNotFound) {
          return newest.status();
        }
      }
      for (int64_t width = kPageWindows[0]; width > 0;
           width = NextPageWindow(width, keys.size(), q.limit + 1)) {
        const int64_t lo = SaturatingAdd(edge, -width);
        if (lo <= from) break;
        if (auto s = read_keys(" AND start_unix_nanos >= " + SqlInt(lo) +
                               " AND day >= " + SqlDate(DayOf(lo)));
            !s.ok()) {
          return s;
        }
        // Also done when the slice reaches back past the oldest stored day.
        if (keys.size() > q.limit || (first_day > 0 && lo <= first_day * kNanosPerDay)) {
          done = true;
          break;
        }
      }
    } else {
      int64_t edge = from;  // inclusive
      if (cursor_start) edge = std::max(edge, *cursor_start);
      if (first_day > 0) edge = std::max(edge, first_day * kNanosPerDay);
      if (!cursor_start && first_day < kLastDay && edge < (first_day + 1) * kNanosPerDay) {
        auto oldest = stored_edge(first_day, "start_unix_nanos >= " + SqlInt(edge));
        if (oldest.ok()) {
          edge = *oldest;
        } else if (oldest.status().code() != core::StatusCode::kNotFound) {
          return oldest.status();
        }
      }
      for (int64_t width = kPageWindows[0]; width > 0;
           width = NextPageWindow(width, keys.size(), q.limit + 1)) {
        const int64_t hi = SaturatingAdd(edge, width);
        if (hi >= to) break;
        if (auto s = read_keys(" AND start_unix_nanos < " + SqlInt(hi) +
                               " AND day <= " + SqlDate(DayOf(hi - 1)));
            !s.ok()) {
          return s;
        }
        // Also done when the slice reaches past the newest stored day.
        if (keys.size() > q.limit || (last_day < kLastDay && hi >= (last_day + 1) * kNanosPerDay)) {
          done = true;
          break;
        }
      }
    }
  }
  if (!done) {
    if (auto s = read_keys(""); !s.ok()) return s;
  }
  if (!exact) {
    std::set<std::pair<int64_t, std::string_view>> distinct;
    for (const auto& k : keys) {
      if (!distinct.emplace(k.start_unix_nanos, k.request_id).second) return kGiveUp;
    }
  }

  // The rows of every key read, the one past the page too: the plain pass must know that
  // it is current, or the page would carry a cursor to nothing.
  std::vector<uint64_t> newest;
  auto calls = FetchCalls(keys, q.timeout, &newest);
  if (!calls.ok()) return calls.status();
  storage::CallPage page;
  // `calls` follows `keys`, less the keys whose rows retention dropped in between.
  size_t j = 0;
  for (size_t i = 0; i < keys.size() && j < calls->size(); ++i) {
    core::LlmCall& c = (*calls)[j];
    if (c.start_unix_nanos != keys[i].start_unix_nanos || c.request_id != keys[i].request_id) {
      continue;
    }
    if (!exact && newest[j] != versions[i]) return kGiveUp;
    if (i < q.limit) page.calls.push_back(std::move(c));
    ++j;
  }
  if (keys.size() > q.limit) {
    storage::CallCursor c{q.sort, q.descending, values[q.limit - 1], keys[q.limit - 1].request_id};
    page.next_cursor = storage::EncodeCallCursor(c);
  }
  return std::optional(std::move(page));
}

core::Result<core::LlmCall> ClickHouseStore::GetCall(std::string_view request_id) {
  const core::Nanos t = options_.timeout;
  const std::string id = SqlString(request_id);
  // The id's calls from the index; two calls may share an id: the later-starting one wins.
  auto where = Query("SELECT max(start_unix_nanos), count() FROM " + Table("call_ids") +
                         " WHERE request_id = " + id + " FORMAT RowBinary",
                     t);
  if (!where.ok()) return where.status();
  RowBinaryReader r(*where);
  const int64_t start = r.Int64();
  const uint64_t found = r.UInt64();
  if (r.failed()) return Unreadable("request id");
  auto not_found = [&] {
    return core::NotFound("no call with request_id '" + std::string(request_id) + "'");
  };
  if (found == 0) return not_found();
  std::vector<uint64_t> versions;
  auto calls = FetchCalls({CallKey{start, std::string(request_id)}}, t, &versions);
  if (!calls.ok()) return calls.status();
  if (calls->empty()) return not_found();  // removed by retention
  core::LlmCall call = std::move(calls->front());
  // The content written with the call's newest version; none when that write had none
  // (an older version's content row may still be there, or an empty one from schema 1).
  auto content =
      Query("SELECT request_body, response_text FROM " + Table("call_content") +
                " WHERE day = " + SqlDate(DayOf(start)) +
                " AND start_unix_nanos = " + SqlInt(start) + " AND request_id = " + id +
                " AND ver = " + std::to_string(versions.front()) + " LIMIT 1 FORMAT RowBinary",
            t);
  if (!content.ok()) return content.status();
  RowBinaryReader cr(*content);
  if (!cr.AtEnd()) {
    call.request_body = cr.String();
    call.response_text = cr.String();
    if (cr.failed()) return Unreadable("content");
  }
  return call;
}

// ----- Aggregates ----------------------------------------------------------------------------

core::Result<storage::AggregateResult> ClickHouseStore::Aggregate(
    const storage::AggregateQuery& q) {
  if (auto s = storage::Validate(q); !s.ok()) return s;
  // quantileExact(q) takes element floor(q * n) of the sorted values: storage::ExactQuantile.
  // On no values it answers 0, so the counts decide between a percentile and none.
  const std::string sql =
      "SELECT " + BucketExpr(q.bucket) + " AS a_bucket, " + GroupExpr(q.group_by, q.group_tag_key) +
      " AS a_group, toInt64(count()), toInt64(countIf(error != 'none')),"
      " toInt64(countIf(end_nanos >= 0)),"
      " quantilesExactIf(0.5, 0.95, 0.99)(end_nanos, end_nanos >= 0),"
      " toInt64(countIf(first_content_nanos >= 0)),"
      " quantilesExactIf(0.5, 0.95)(first_content_nanos, first_content_nanos >= 0),"
      " sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), sum(cache_write_tokens),"
      " sum(reasoning_tokens), sum(ifNull(cost_usd, 0.)), toInt64(sum(unpriced)) FROM " +
      Table(kCallsTable) + " FINAL WHERE " + CallWhere(q.filter) +
      // HAVING: with constant keys (no bucket, no group) an empty input still makes a row.
      " GROUP BY a_bucket, a_group HAVING count() > 0 ORDER BY a_bucket, a_group LIMIT " +
      std::to_string(storage::kMaxAggregateRows + 1) + " FORMAT RowBinary";
  auto body = Query(sql, q.timeout);
  if (!body.ok()) return body.status();
  storage::AggregateResult out;
  RowBinaryReader r(*body);
  while (!r.AtEnd()) {
    storage::AggregateRow row;
    row.bucket_start_unix_nanos = r.Int64();
    row.group = r.String();
    row.requests = r.Int64();
    row.errors = r.Int64();
    int64_t ended = r.Int64();
    std::vector<int64_t> latency = r.Int64Array();
    int64_t with_content = r.Int64();
    std::vector<int64_t> ttft = r.Int64Array();
    row.tokens.input = r.Int64();
    row.tokens.output = r.Int64();
    row.tokens.cache_read = r.Int64();
    row.tokens.cache_write = r.Int64();
    row.tokens.reasoning = r.Int64();
    row.cost_usd = r.Float64();
    row.unpriced = r.Int64();
    if (r.failed() || latency.size() != 3 || ttft.size() != 2) return Unreadable("aggregate");
    if (ended > 0) {
      row.latency_p50_nanos = latency[0];
      row.latency_p95_nanos = latency[1];
      row.latency_p99_nanos = latency[2];
    }
    if (with_content > 0) {
      row.ttft_p50_nanos = ttft[0];
      row.ttft_p95_nanos = ttft[1];
    }
    out.rows.push_back(std::move(row));
  }
  if (out.rows.size() > storage::kMaxAggregateRows) {
    return core::Status(core::StatusCode::kResourceExhausted,
                        "aggregate: the query has more than " +
                            std::to_string(storage::kMaxAggregateRows) +
                            " result rows (buckets x groups): narrow the filter or use a "
                            "coarser bucket or grouping");
  }
  return out;
}

core::Result<storage::TopResult> ClickHouseStore::Top(const storage::TopQuery& q) {
  if (auto s = storage::Validate(q); !s.ok()) return s;
  const std::string group = GroupExpr(q.dimension, q.group_tag_key);
  const char* metric = q.by == storage::TopMetric::kCost ? "a_cost" : "a_tokens";
  const std::string sql =
      "SELECT " + group +
      " AS a_group, toInt64(count()), sum(input_tokens), sum(output_tokens),"
      " sum(ifNull(cost_usd, 0.)) AS a_cost, sum(input_tokens + output_tokens) AS a_tokens FROM " +
      Table(kCallsTable) + " FINAL WHERE " + CallWhere(q.filter) + " AND " + group +
      " != '' GROUP BY a_group ORDER BY " + metric + " DESC, a_group ASC LIMIT " +
      std::to_string(q.limit) + " FORMAT RowBinary";
  auto body = Query(sql, q.timeout);
  if (!body.ok()) return body.status();
  storage::TopResult out;
  RowBinaryReader r(*body);
  while (!r.AtEnd()) {
    storage::TopRow row;
    row.group = r.String();
    row.requests = r.Int64();
    row.input_tokens = r.Int64();
    row.output_tokens = r.Int64();
    row.cost_usd = r.Float64();
    (void)r.Int64();  // a_tokens: the sort key only
    if (r.failed()) return Unreadable("top");
    out.rows.push_back(std::move(row));
  }
  return out;
}

// ----- Traces --------------------------------------------------------------------------------

core::Result<storage::TracePage> ClickHouseStore::ListTraces(const storage::TraceQuery& q) {
  if (auto s = storage::Validate(q); !s.ok()) return s;
  std::string range;
  if (q.from_unix_nanos != INT64_MIN) {
    range += " AND start_unix_nanos >= " + SqlInt(q.from_unix_nanos) +
             " AND day >= " + SqlDate(DayOf(q.from_unix_nanos));
  }
  if (q.to_unix_nanos != INT64_MAX) {
    range += " AND start_unix_nanos < " + SqlInt(q.to_unix_nanos) +
             " AND day <= " + SqlDate(DayOf(q.to_unix_nanos - 1));
  }
  const std::string zero = SqlBytes(core::TraceId{});
  const std::string service =
      q.service ? "toUInt8(service = " + SqlString(*q.service) + ")" : std::string("toUInt8(0)");
  // One row per span and per call in the range (with FINAL: newest versions only), then one
  // summary per trace. The root is the span with the smallest (start, span id); calls rank
  // after every span so that a trace of calls only has no root name.
  std::string sql =
      "SELECT a_trace, min(a_start) AS t_start, max(a_end), argMin(a_name, (a_rank, a_span)),"
      " argMin(a_service, (a_rank, a_span)), toInt64(sum(a_is_span)),"
      " toInt64(count() - sum(a_is_span)), max(a_error), sum(a_cost) FROM ("
      " SELECT trace_id AS a_trace, start_unix_nanos AS a_start, end_unix_nanos AS a_end,"
      " name AS a_name, service AS a_service, start_unix_nanos AS a_rank, span_id AS a_span,"
      " toUInt8(1) AS a_is_span, toUInt8(status = 2) AS a_error, toFloat64(0) AS a_cost, " +
      service + " AS a_service_match FROM " + Table("spans") +
      " FINAL WHERE deleted = 0 AND trace_id != " + zero + range +
      " UNION ALL"
      " SELECT trace_id, start_unix_nanos, start_unix_nanos + greatest(end_nanos, toInt64(0)),"
      " '', '', toInt64(9223372036854775807), span_id, toUInt8(0), toUInt8(error != 'none'),"
      " ifNull(cost_usd, 0.), toUInt8(0) FROM " +
      Table(kCallsTable) + " FINAL WHERE trace_id != " + zero + range + ") GROUP BY a_trace";
  std::vector<std::string> having;
  if (q.service) having.push_back("max(a_service_match) = 1");
  if (q.errors_only) having.push_back("max(a_error) = 1");
  if (!q.cursor.empty()) {
    auto c = storage::DecodeTraceCursor(q.cursor);
    if (!c.ok()) return c.status();
    having.push_back("(t_start < " + SqlInt(c->first) + " OR (t_start = " + SqlInt(c->first) +
                     " AND a_trace < " + SqlBytes(c->second) + "))");
  }
  for (size_t i = 0; i < having.size(); ++i) sql += (i == 0 ? " HAVING " : " AND ") + having[i];
  sql += " ORDER BY t_start DESC, a_trace DESC LIMIT " + std::to_string(q.limit + 1) +
         " FORMAT RowBinary";
  auto body = Query(sql, q.timeout);
  if (!body.ok()) return body.status();
  storage::TracePage page;
  RowBinaryReader r(*body);
  while (!r.AtEnd()) {
    storage::TraceSummary t;
    t.trace_id = r.FixedString<16>();
    t.start_unix_nanos = r.Int64();
    t.end_unix_nanos = r.Int64();
    t.root_name = r.String();
    t.service = r.String();
    t.span_count = r.Int64();
    t.call_count = r.Int64();
    t.has_error = r.UInt8() != 0;
    t.cost_usd = r.Float64();
    if (r.failed()) return Unreadable("trace list");
    page.traces.push_back(std::move(t));
  }
  if (page.traces.size() > q.limit) {
    page.traces.resize(q.limit);
    const auto& last = page.traces.back();
    page.next_cursor = storage::EncodeTraceCursor(last.start_unix_nanos, last.trace_id);
  }
  return page;
}

core::Result<storage::TraceDetail> ClickHouseStore::GetTrace(const core::TraceId& trace_id) {
  auto not_found = [&] {
    return core::NotFound("no spans or calls for trace " + core::ToHex(trace_id));
  };
  if (!core::IsValid(trace_id)) return not_found();
  const core::Nanos t = options_.timeout;
  const std::string id = SqlBytes(trace_id);
  storage::TraceDetail out;
  // Spans: the trace is a primary-key range in every day partition.
  auto spans = Query("SELECT " + StoredSpanSelect() + " FROM " + Table("spans") +
                         " WHERE trace_id = " + id + " FORMAT RowBinary",
                     t);
  if (!spans.ok()) return spans.status();
  std::map<core::SpanId, StoredSpan> newest;
  RowBinaryReader r(*spans);
  while (!r.AtEnd()) {
    auto row = ReadStoredSpan(r);
    if (!row.ok()) return row.status();
    auto it = newest.find(row->span.span_id);
    if (it == newest.end()) {
      newest.emplace(row->span.span_id, std::move(row).value());
    } else if (row->ver > it->second.ver) {
      it->second = std::move(row).value();
    }
  }
  for (auto& [span_id, row] : newest) {
    if (!row.deleted) out.spans.push_back(std::move(row.span));
  }
  std::stable_sort(
      out.spans.begin(), out.spans.end(), [](const core::Span& a, const core::Span& b) {
        return std::tie(a.start_unix_nanos, a.span_id) < std::tie(b.start_unix_nanos, b.span_id);
      });
  // Calls: candidates from the trace_id column (any version), then their newest rows, kept
  // only if still in this trace.
  auto keys_body = Query("SELECT start_unix_nanos, request_id FROM " + Table(kCallsTable) +
                             " WHERE trace_id = " + id + " FORMAT RowBinary",
                         t);
  if (!keys_body.ok()) return keys_body.status();
  std::set<std::pair<int64_t, std::string>> candidates;
  RowBinaryReader kr(*keys_body);
  while (!kr.AtEnd()) {
    int64_t start = kr.Int64();
    std::string request_id = kr.String();
    if (kr.failed()) return Unreadable("trace calls");
    candidates.emplace(start, std::move(request_id));
  }
  std::vector<CallKey> keys;
  for (const auto& [start, request_id] : candidates) keys.push_back(CallKey{start, request_id});
  auto calls = FetchCalls(keys, t);
  if (!calls.ok()) return calls.status();
  for (auto& c : *calls) {
    if (c.trace_id == trace_id) out.calls.push_back(std::move(c));
  }
  // `candidates` was ordered by (start, request_id): so are the calls.
  if (out.spans.empty() && out.calls.empty()) return not_found();
  return out;
}

// ----- Retention and stats -------------------------------------------------------------------

core::Result<std::optional<std::pair<int64_t, int64_t>>> ClickHouseStore::CallDays() {
  const uint64_t generation = calls_generation_.load();
  const int64_t now = clock_.UnixNanos();
  {
    std::lock_guard lock(days_mu_);
    if (days_cache_ && days_cache_->generation == generation &&
        now - days_cache_->at_unix_nanos >= 0 && now - days_cache_->at_unix_nanos < kDaysTtl) {
      return days_cache_->days;
    }
  }
  auto partitions = DayPartitions(kCallsTable);
  if (!partitions.ok()) return partitions.status();
  std::optional<std::pair<int64_t, int64_t>> days;
  if (!partitions->empty()) days.emplace(partitions->begin()->first, partitions->rbegin()->first);
  std::lock_guard lock(days_mu_);
  // Stored under the generation read before the query: a write that ended meanwhile has
  // moved the generation on, and the entry is stale from the start.
  days_cache_ = DaysCache{days, generation, now};
  return days;
}

core::Result<int64_t> ClickHouseStore::CountContent(int64_t before_day) {
  // The calls whose newest version has content, in the days whose content is still kept:
  // the days that have a call_content partition.
  auto content_days = DayPartitions("call_content");
  if (!content_days.ok()) return content_days.status();
  if (content_days->empty()) return 0;
  // Not every day from the first of them on: a late call with content far back in time (a
  // replay after a long outage) makes a content day of its own, and the days between it
  // and the kept ones, whose content is gone, must not count.
  std::set<int64_t> days;
  for (const auto& [day, p] : *content_days) days.insert(day);
  return CountLatest(kCallsTable, "has_content = 1", before_day, &days);
}

core::Result<int64_t> ClickHouseStore::CountRows(const std::string& sql) {
  auto body = Query(sql + " FORMAT RowBinary", options_.timeout);
  if (!body.ok()) return body.status();
  RowBinaryReader r(*body);
  int64_t n = r.Int64();
  if (r.failed()) return Unreadable("count");
  return n;
}

core::Result<std::map<int64_t, ClickHouseStore::Partition>> ClickHouseStore::DayPartitions(
    std::string_view table) {
  auto body = Query(
      "SELECT partition_id, groupArray(name), toInt64(sum(rows)) FROM system.parts"
      " WHERE database = " +
          SqlString(options_.database) + " AND table = " + SqlString(table) +
          " AND active GROUP BY partition_id FORMAT RowBinary",
      options_.timeout);
  if (!body.ok()) return body.status();
  std::map<int64_t, Partition> out;
  RowBinaryReader r(*body);
  while (!r.AtEnd()) {
    std::string id = r.String();
    Partition p;
    p.parts = r.StringArray();
    p.rows = r.Int64();
    if (r.failed()) return Unreadable("partition list");
    auto day = id.size() == 8 ? PartitionFirstDay(id) : std::nullopt;
    if (!day)
      return core::Internal("clickhouse: table " + std::string(table) +
                            " has a partition that is not a day: " + id);
    out.emplace(*day, std::move(p));
  }
  return out;
}

core::Result<int64_t> ClickHouseStore::CountLatest(std::string_view table, std::string_view live,
                                                   int64_t before_day,
                                                   const std::set<int64_t>* only_days) {
  // Two rows of one key can only meet in one partition (the key fixes the day), and only in
  // two parts whose key ranges overlap: a single part never holds a key twice (a merge
  // collapses them and one INSERT writes each key once). So: a partition with one part is
  // counted from its metadata (or by its part name, when a condition applies); in a
  // partition with several, parts whose start ranges overlap no other part's are counted
  // plainly, and only overlapping groups (replays, late writes) pay for FINAL. The part names
  // seen first fix what is counted: a part written in between is not counted twice.
  auto partitions = DayPartitions(table);
  if (!partitions.ok()) return partitions.status();
  const bool keyed_by_start = table != "spans";
  const std::string live_or_all = live.empty() ? "1" : std::string(live);
  int64_t total = 0;
  std::vector<std::string> plain_parts;  // counted without FINAL
  std::vector<std::vector<std::string>> final_groups;
  std::vector<int64_t> multi_days;
  for (const auto& [day, p] : *partitions) {
    if (day >= before_day || (only_days != nullptr && !only_days->contains(day))) continue;
    if (p.parts.size() != 1) {
      multi_days.push_back(day);
    } else if (live.empty()) {
      total += p.rows;
    } else {
      plain_parts.push_back(p.parts.front());
    }
  }
  auto quoted = [](const std::string& s) { return SqlString(s); };
  if (!multi_days.empty() && !keyed_by_start) {
    auto n = CountRows("SELECT toInt64(count()) FROM " + Table(table) + " FINAL WHERE day IN (" +
                       JoinLiterals(multi_days, [](int64_t d) { return SqlDate(d); }) + ") AND " +
                       live_or_all);
    if (!n.ok()) return n.status();
    total += *n;
  } else if (!multi_days.empty()) {
    auto body = Query(
        "SELECT _part, min(start_unix_nanos), max(start_unix_nanos),"
        " toInt64(countIf(" +
            live_or_all + ")) FROM " + Table(table) + " WHERE day IN (" +
            JoinLiterals(multi_days, [](int64_t d) { return SqlDate(d); }) +
            ") GROUP BY _part FORMAT RowBinary",
        options_.timeout);
    if (!body.ok()) return body.status();
    struct PartRange {
      std::string partition;  // a part's name starts with its partition id and '_'
      int64_t min = 0, max = 0, live = 0;
      std::string name;
    };
    std::vector<PartRange> ranges;
    RowBinaryReader r(*body);
    while (!r.AtEnd()) {
      PartRange p;
      p.name = r.String();
      p.min = r.Int64();
      p.max = r.Int64();
      p.live = r.Int64();
      if (r.failed()) return Unreadable("part ranges");
      p.partition = p.name.substr(0, p.name.find('_'));
      ranges.push_back(std::move(p));
    }
    std::sort(ranges.begin(), ranges.end(), [](const PartRange& a, const PartRange& b) {
      return std::tie(a.partition, a.min) < std::tie(b.partition, b.min);
    });
    for (size_t i = 0; i < ranges.size();) {
      size_t j = i + 1;
      int64_t reach = ranges[i].max;
      while (j < ranges.size() && ranges[j].partition == ranges[i].partition &&
             ranges[j].min <= reach) {
        reach = std::max(reach, ranges[j].max);
        ++j;
      }
      if (j == i + 1) {
        total += ranges[i].live;
      } else {
        std::vector<std::string> group;
        for (size_t k = i; k < j; ++k) group.push_back(ranges[k].name);
        final_groups.push_back(std::move(group));
      }
      i = j;
    }
  }
  if (!plain_parts.empty()) {
    auto n = CountRows("SELECT toInt64(count()) FROM " + Table(table) + " WHERE _part IN (" +
                       JoinLiterals(plain_parts, quoted) + ") AND " + live_or_all);
    if (!n.ok()) return n.status();
    total += *n;
  }
  if (!final_groups.empty()) {
    std::vector<std::string> names;
    for (auto& g : final_groups) names.insert(names.end(), g.begin(), g.end());
    auto n = CountRows("SELECT toInt64(count()) FROM " + Table(table) + " FINAL WHERE _part IN (" +
                       JoinLiterals(names, quoted) + ") AND " + live_or_all);
    if (!n.ok()) return n.status();
    total += *n;
  }
  return total;
}

core::Status ClickHouseStore::DropPartitions(const std::vector<std::string>& tables,
                                             int64_t cut_day, bool monthly) {
  auto body = Query("SELECT table, partition_id FROM system.parts WHERE database = " +
                        SqlString(options_.database) + " AND table IN (" +
                        JoinLiterals(tables, [](const std::string& s) { return SqlString(s); }) +
                        ") AND active GROUP BY table, partition_id FORMAT RowBinary",
                    options_.timeout);
  if (!body.ok()) return body.status();
  RowBinaryReader r(*body);
  while (!r.AtEnd()) {
    std::string table = r.String();
    std::string partition = r.String();
    if (r.failed()) return Unreadable("partition list");
    auto first = PartitionFirstDay(partition);
    if (!first) continue;  // not a partition this schema makes
    // A partition goes only when every day it can hold is before the cutoff.
    const int64_t end = monthly ? NextMonthFirstDay(*first) : *first + 1;
    if (end > cut_day || *first >= kLastDay) continue;
    auto dropped =
        Query("ALTER TABLE " + Table(table) + " DROP PARTITION ID " + SqlString(partition),
              options_.timeout);
    if (!dropped.ok()) return dropped.status();
  }
  return core::Status::Ok();
}

core::Result<storage::RetentionReport> ClickHouseStore::ApplyRetention(
    int64_t now_unix_nanos, const storage::RetentionOptions& options) {
  storage::RetentionReport report;
  // Rows are due when they start before the cutoff, a UTC midnight: exactly the day
  // partitions before the cutoff's day. Their live rows are counted, then the partitions
  // dropped (a moment's work: no row is rewritten).
  auto cut_day = [&](int days) -> int64_t {
    int64_t cut = storage::RetentionCutoffNanos(now_unix_nanos, days);
    if (cut <= 0) return 0;
    return std::min(cut / kNanosPerDay, kLastDay);
  };
  // Content first: its count reads the calls' has_content, so their rows must still be there.
  if (options.content_days > 0) {
    if (int64_t day = cut_day(options.content_days); day > 0) {
      auto n = CountContent(day);
      if (!n.ok()) return n.status();
      if (auto s = DropPartitions({"call_content"}, day, false); !s.ok()) return s;
      report.content_removed = *n;
    }
  }
  if (options.calls_days > 0) {
    if (int64_t day = cut_day(options.calls_days); day > 0) {
      auto n = CountLatest(kCallsTable, "", day);
      if (!n.ok()) return n.status();
      if (auto s = DropPartitions({std::string(kCallsTable)}, day, false); !s.ok()) return s;
      if (auto s = DropPartitions({"call_ids"}, day, true); !s.ok()) return s;
      report.calls_removed = *n;
    }
  }
  calls_generation_.fetch_add(1);
  if (options.spans_days > 0) {
    if (int64_t day = cut_day(options.spans_days); day > 0) {
      auto n = CountLatest("spans", "deleted = 0", day);
      if (!n.ok()) return n.status();
      if (auto s = DropPartitions({"spans"}, day, false); !s.ok()) return s;
      if (auto s = DropPartitions({"span_ids"}, day, true); !s.ok()) return s;
      report.spans_removed = *n;
    }
  }
  return report;
}

core::Result<storage::StoreStats> ClickHouseStore::Stats() {
  storage::StoreStats s;
  auto calls = CountLatest(kCallsTable, "", INT64_MAX);
  if (!calls.ok()) return calls.status();
  auto content = CountContent(INT64_MAX);
  if (!content.ok()) return content.status();
  auto spans = CountLatest("spans", "deleted = 0", INT64_MAX);
  if (!spans.ok()) return spans.status();
  auto bytes = CountRows("SELECT toInt64(sum(bytes_on_disk)) FROM system.parts WHERE database = " +
                         SqlString(options_.database) + " AND active");
  if (!bytes.ok()) return bytes.status();
  s.calls = *calls;
  s.content = *content;
  s.spans = *spans;
  s.bytes_on_disk = *bytes;
  return s;
}

}  // namespace llmscope::storage_clickhouse
