#include "storage_sqlite/sqlite_store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "core/json_string.h"
#include "storage_sqlite/schema.h"
#include "storage_sqlite/span_codec.h"
#include "storage_sqlite/sqlite_db.h"

namespace llmscope::storage_sqlite {
namespace {

using core::LlmCall;
using core::Span;
using internal::Db;
using internal::SqliteError;
using internal::Stmt;

// How long a method without its own timeout (GetCall, GetTrace, Stats, Ping) may run.
constexpr core::Nanos kDefaultTimeout = std::chrono::seconds(10);
// The progress handler runs every this many virtual machine instructions: often enough to
// stop within microseconds of a deadline, rare enough to cost nothing measurable.
constexpr int kProgressInstructions = 1000;
// Prepared statements kept per read connection (queries differ by which filters are set).
constexpr size_t kStatementCacheSize = 64;
// Pages given back per incremental_vacuum step, so the write lock is never held long.
constexpr int kVacuumPagesPerStep = 2048;

int64_t Millis(core::Nanos d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// ---------------------------------------------------------------------------------------
// Encoding of LlmCall and Span fields

template <size_t N>
void BindId(Stmt& s, int i, const std::array<uint8_t, N>& id) {
  // The zero id is stored as NULL: it means "none", and partial indexes skip NULLs.
  if (std::all_of(id.begin(), id.end(), [](uint8_t b) { return b == 0; })) {
    s.BindNull(i);
  } else {
    s.BindBlob(i, std::span<const uint8_t>(id.data(), N));
  }
}

template <size_t N>
std::array<uint8_t, N> ReadId(const Stmt& s, int col) {
  std::array<uint8_t, N> id{};
  auto bytes = s.Blob(col);
  if (bytes.size() == N) std::copy(bytes.begin(), bytes.end(), id.begin());
  return id;
}

// The flat encoding of finish reasons and tags (BLOB columns). Byte-exact for any bytes,
// and searchable without parsing:
//   strings: 0x1F s1 0x1F s2 ... 0x1F          ("" for an empty list)
//   tags:    0x1F k1 0x1E v1 0x1F k2 0x1E v2 ... 0x1F
// where every 0x1D, 0x1E and 0x1F byte inside a string is escaped as 0x1D followed by the
// byte + 0x20. An unescaped 0x1F therefore only ever bounds an item and an unescaped 0x1E
// only ever splits a tag, so "0x1F key 0x1E value 0x1F" occurs in the tags exactly when the
// call carries that tag, and "0x1F key 0x1E" first occurs at the key's first tag.
constexpr char kEscape = '\x1d';
constexpr char kSplit = '\x1e';
constexpr char kBound = '\x1f';

void AppendEscaped(std::string& out, std::string_view s) {
  for (char c : s) {
    if (c == kEscape || c == kSplit || c == kBound) {
      out += kEscape;
      out += static_cast<char>(c + 0x20);
    } else {
      out += c;
    }
  }
}

std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == kEscape && i + 1 < s.size()) {
      out += static_cast<char>(s[++i] - 0x20);
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string EncodeStrings(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) {
    out += kBound;
    AppendEscaped(out, v);
  }
  if (!values.empty()) out += kBound;
  return out;
}

std::string EncodeTags(const std::vector<std::pair<std::string, std::string>>& tags) {
  std::string out;
  for (const auto& [k, v] : tags) {
    out += kBound;
    AppendEscaped(out, k);
    out += kSplit;
    AppendEscaped(out, v);
  }
  if (!tags.empty()) out += kBound;
  return out;
}

// The bytes that occur in EncodeTags(tags) exactly when tags holds (key, value).
std::string TagPattern(std::string_view key, std::string_view value) {
  std::string out(1, kBound);
  AppendEscaped(out, key);
  out += kSplit;
  AppendEscaped(out, value);
  out += kBound;
  return out;
}

// The bytes that start the first tag of `key` in EncodeTags output.
std::string TagKeyPrefix(std::string_view key) {
  std::string out(1, kBound);
  AppendEscaped(out, key);
  out += kSplit;
  return out;
}

// The first value of the tag whose TagKeyPrefix is `prefix` in encoded `tags`; "" without
// one (Aggregate and Top group such calls under "").
std::string FirstTagValue(std::string_view tags, std::string_view prefix) {
  size_t at = tags.find(prefix);
  if (at == std::string_view::npos) return std::string();
  size_t begin = at + prefix.size();
  size_t end = tags.find(kBound, begin);
  return Unescape(tags.substr(begin, end == std::string_view::npos ? end : end - begin));
}

// The items between bounds, still escaped. Errors on bytes that are not this encoding.
core::Result<std::vector<std::string_view>> SplitItems(std::string_view encoded, const char* what) {
  std::vector<std::string_view> items;
  if (encoded.empty()) return items;
  if (encoded.size() < 2 || encoded.front() != kBound || encoded.back() != kBound) {
    return core::Internal(std::string("stored ") + what + " are not in the flat encoding");
  }
  size_t begin = 1;
  while (begin < encoded.size()) {
    size_t end = encoded.find(kBound, begin);
    items.push_back(encoded.substr(begin, end - begin));
    begin = end + 1;
  }
  return items;
}

core::Result<std::vector<std::string>> DecodeStrings(std::string_view encoded) {
  auto items = SplitItems(encoded, "finish reasons");
  if (!items.ok()) return items.status();
  std::vector<std::string> out;
  for (std::string_view item : *items) out.push_back(Unescape(item));
  return out;
}

core::Result<std::vector<std::pair<std::string, std::string>>> DecodeTags(
    std::string_view encoded) {
  auto items = SplitItems(encoded, "tags");
  if (!items.ok()) return items.status();
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view item : *items) {
    size_t split = item.find(kSplit);
    if (split == std::string_view::npos) {
      return core::Internal("stored tags hold an item without a key/value split");
    }
    out.emplace_back(Unescape(item.substr(0, split)), Unescape(item.substr(split + 1)));
  }
  return out;
}

std::string_view AsText(std::span<const uint8_t> bytes) {
  return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// The columns of calls in the order ReadCall reads and BindCall binds them.
constexpr std::string_view kCallColumns =
    "c.request_id, c.trace_id, c.span_id, c.parent_span_id, c.start_unix_nanos, "
    "c.first_byte_nanos, c.first_content_nanos, c.end_nanos, c.overhead_nanos, c.endpoint, "
    "c.stream, c.requested_model, c.response_model, c.provider, c.provider_kind, "
    "c.http_status, c.error, c.error_message, c.client_cancelled, c.max_tokens, "
    "c.temperature, c.top_p, c.finish_reasons, c.input_tokens, c.output_tokens, "
    "c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens, c.usage_source, "
    "c.cost_usd, c.unpriced, c.user, c.session, c.tags";

constexpr const char* kInsertCall =
    "INSERT INTO calls (request_id, trace_id, span_id, parent_span_id, start_unix_nanos, "
    "first_byte_nanos, first_content_nanos, end_nanos, overhead_nanos, endpoint, stream, "
    "requested_model, response_model, provider, provider_kind, http_status, error, "
    "error_message, client_cancelled, max_tokens, temperature, top_p, finish_reasons, "
    "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
    "usage_source, cost_usd, unpriced, user, session, tags, id_bucket, trace_bucket, "
    "user_bucket, session_bucket) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
    "?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, "
    "?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38)";

template <size_t N>
int64_t IdBucket(const std::array<uint8_t, N>& id) {
  return internal::LookupBucket(
      std::string_view(reinterpret_cast<const char*>(id.data()), id.size()));
}

// Binds every column of `c`. Strings are bound without a copy: `c`, `finish` and `tags`
// (their flat encodings) outlive the statement's next Step.
void BindCall(Stmt& s, const LlmCall& c, const std::string& finish, const std::string& tags) {
  s.BindTextStatic(1, c.request_id);
  BindId(s, 2, c.trace_id);
  BindId(s, 3, c.span_id);
  BindId(s, 4, c.parent_span_id);
  s.BindInt(5, c.start_unix_nanos);
  s.BindInt(6, c.first_byte_nanos);
  s.BindInt(7, c.first_content_nanos);
  s.BindInt(8, c.end_nanos);
  s.BindInt(9, c.overhead_nanos);
  s.BindInt(10, static_cast<int64_t>(c.endpoint));
  s.BindInt(11, c.stream ? 1 : 0);
  s.BindTextStatic(12, c.requested_model);
  s.BindTextStatic(13, c.response_model);
  s.BindTextStatic(14, c.provider);
  s.BindTextStatic(15, c.provider_kind);
  s.BindInt(16, c.http_status);
  s.BindInt(17, static_cast<int64_t>(c.error));
  s.BindTextStatic(18, c.error_message);
  s.BindInt(19, c.client_cancelled ? 1 : 0);
  if (c.max_tokens) s.BindInt(20, *c.max_tokens);
  if (c.temperature) s.BindDouble(21, *c.temperature);
  if (c.top_p) s.BindDouble(22, *c.top_p);
  s.BindBlobStatic(23, finish);
  s.BindInt(24, c.usage.input);
  s.BindInt(25, c.usage.output);
  s.BindInt(26, c.usage.cache_read);
  s.BindInt(27, c.usage.cache_write);
  s.BindInt(28, c.usage.reasoning);
  s.BindInt(29, static_cast<int64_t>(c.usage_source));
  if (c.cost_usd) s.BindDouble(30, *c.cost_usd);  // NaN would bind as NULL: never priced so
  s.BindInt(31, c.unpriced ? 1 : 0);
  s.BindTextStatic(32, c.user);
  s.BindTextStatic(33, c.session);
  s.BindBlobStatic(34, tags);
  s.BindInt(35, internal::LookupBucket(c.request_id));
  s.BindInt(36, IdBucket(c.trace_id));
  s.BindInt(37, internal::LookupBucket(c.user));
  s.BindInt(38, internal::LookupBucket(c.session));
}

// Reads a row whose first columns are kCallColumns. Content is left empty.
core::Result<LlmCall> ReadCall(const Stmt& s) {
  LlmCall c;
  c.request_id = s.Text(0);
  c.trace_id = ReadId<16>(s, 1);
  c.span_id = ReadId<8>(s, 2);
  c.parent_span_id = ReadId<8>(s, 3);
  c.start_unix_nanos = s.Int(4);
  c.first_byte_nanos = s.Int(5);
  c.first_content_nanos = s.Int(6);
  c.end_nanos = s.Int(7);
  c.overhead_nanos = s.Int(8);
  c.endpoint = static_cast<core::Endpoint>(s.Int(9));
  c.stream = s.Int(10) != 0;
  c.requested_model = s.Text(11);
  c.response_model = s.Text(12);
  c.provider = s.Text(13);
  c.provider_kind = s.Text(14);
  c.http_status = static_cast<int>(s.Int(15));
  c.error = static_cast<core::ErrorClass>(s.Int(16));
  c.error_message = s.Text(17);
  c.client_cancelled = s.Int(18) != 0;
  if (!s.IsNull(19)) c.max_tokens = s.Int(19);
  if (!s.IsNull(20)) c.temperature = s.Double(20);
  if (!s.IsNull(21)) c.top_p = s.Double(21);
  auto finish = DecodeStrings(AsText(s.Blob(22)));
  if (!finish.ok()) return finish.status();
  c.finish_reasons = std::move(*finish);
  c.usage.input = s.Int(23);
  c.usage.output = s.Int(24);
  c.usage.cache_read = s.Int(25);
  c.usage.cache_write = s.Int(26);
  c.usage.reasoning = s.Int(27);
  c.usage_source = static_cast<core::UsageSource>(s.Int(28));
  if (!s.IsNull(29)) c.cost_usd = s.Double(29);
  c.unpriced = s.Int(30) != 0;
  c.user = s.Text(31);
  c.session = s.Text(32);
  auto tags = DecodeTags(AsText(s.Blob(33)));
  if (!tags.ok()) return tags.status();
  c.tags = std::move(*tags);
  return c;
}

constexpr std::string_view kSpanColumns =
    "trace_id, span_id, parent_span_id, name, kind, service, scope, start_unix_nanos, "
    "end_unix_nanos, status, status_message, resource_attributes, attributes, events, links";

core::Result<Span> ReadSpan(const Stmt& s) {
  Span sp;
  sp.trace_id = ReadId<16>(s, 0);
  sp.span_id = ReadId<8>(s, 1);
  sp.parent_span_id = ReadId<8>(s, 2);
  sp.name = s.Text(3);
  sp.kind = static_cast<core::SpanKind>(s.Int(4));
  sp.service = s.Text(5);
  sp.scope = s.Text(6);
  sp.start_unix_nanos = s.Int(7);
  sp.end_unix_nanos = s.Int(8);
  sp.status = static_cast<core::SpanStatus>(s.Int(9));
  sp.status_message = s.Text(10);
  auto resource = internal::DecodeAttributes(AsText(s.Blob(11)));
  if (!resource.ok()) return resource.status();
  sp.resource_attributes = std::move(*resource);
  auto attributes = internal::DecodeAttributes(AsText(s.Blob(12)));
  if (!attributes.ok()) return attributes.status();
  sp.attributes = std::move(*attributes);
  auto events = internal::DecodeEvents(AsText(s.Blob(13)));
  if (!events.ok()) return events.status();
  sp.events = std::move(*events);
  auto links = internal::DecodeLinks(AsText(s.Blob(14)));
  if (!links.ok()) return links.status();
  sp.links = std::move(*links);
  return sp;
}

// ---------------------------------------------------------------------------------------
// Query text with positional arguments

struct Blob {
  std::vector<uint8_t> bytes;
};
using Arg = std::variant<int64_t, double, std::string, Blob>;

// SQL text and its arguments, in the order of their '?' placeholders.
struct Query {
  std::string sql;
  std::vector<Arg> args;

  Query& operator<<(std::string_view text) {
    sql += text;
    return *this;
  }
  void Add(Arg a) { args.push_back(std::move(a)); }
};

void BindArgs(Stmt& s, const std::vector<Arg>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    int n = static_cast<int>(i) + 1;
    const Arg& a = args[i];
    if (const auto* v = std::get_if<int64_t>(&a)) {
      s.BindInt(n, *v);
    } else if (const auto* d = std::get_if<double>(&a)) {
      s.BindDouble(n, *d);
    } else if (const auto* t = std::get_if<std::string>(&a)) {
      s.BindTextStatic(n, *t);  // `args` outlives the statement's run
    } else {
      s.BindBlob(n, std::get<Blob>(a).bytes);
    }
  }
}

// How AppendFilter renders CallFilter::model, which matches either of two columns.
enum class ModelTerm {
  kEither,        // requested_model = m OR response_model = m
  kRequested,     // requested_model = m
  kResponseOnly,  // response_model = m AND requested_model != m (disjoint from kRequested)
};

// " WHERE ..." over `calls c` for every set field of `f` (storage::CallFilter's definitions).
void AppendFilter(const storage::CallFilter& f, Query& q, ModelTerm model = ModelTerm::kEither) {
  // Both bounds always: [INT64_MIN, INT64_MAX) is the definition, and the start range is
  // what the primary key (and every (x, start) index) is searched by.
  q << " WHERE c.start_unix_nanos >= ? AND c.start_unix_nanos < ?";
  q.Add(f.from_unix_nanos);
  q.Add(f.to_unix_nanos);
  if (f.model) {
    switch (model) {
      case ModelTerm::kEither:
        q << " AND (c.requested_model = ? OR c.response_model = ?)";
        break;
      case ModelTerm::kRequested:
        q << " AND c.requested_model = ? AND 1 = ?";  // same number of arguments
        break;
      case ModelTerm::kResponseOnly:
        q << " AND c.response_model = ? AND c.requested_model != ?";
        break;
    }
    q.Add(*f.model);
    q.Add(model == ModelTerm::kRequested ? Arg(int64_t{1}) : Arg(*f.model));
  }
  if (f.provider) {
    q << " AND c.provider = ?";
    q.Add(*f.provider);
  }
  // The bucket terms let the planner use the bucketed lookup indexes (schema.cc).
  if (f.user) {
    q << " AND c.user_bucket = ? AND c.user = ?";
    q.Add(internal::LookupBucket(*f.user));
    q.Add(*f.user);
  }
  if (f.session) {
    q << " AND c.session_bucket = ? AND c.session = ?";
    q.Add(internal::LookupBucket(*f.session));
    q.Add(*f.session);
    // Implies the WHERE of the partial index calls_by_session, so the planner may use it.
    if (!f.session->empty()) q << " AND c.session != ''";
  }
  if (f.tag) {
    q << " AND instr(c.tags, ?) > 0";  // BLOB against BLOB: a byte search (EncodeTags)
    std::string pattern = TagPattern(f.tag->first, f.tag->second);
    q.Add(Blob{std::vector<uint8_t>(pattern.begin(), pattern.end())});
  }
  if (f.http_status) {
    q << " AND c.http_status = ?";
    q.Add(int64_t{*f.http_status});
  }
  if (f.error) {
    q << " AND c.error = ?";
    q.Add(static_cast<int64_t>(*f.error));
  }
  if (f.endpoint) {
    q << " AND c.endpoint = ?";
    q.Add(static_cast<int64_t>(*f.endpoint));
  }
  if (f.usage_source) {
    q << " AND c.usage_source = ?";
    q.Add(static_cast<int64_t>(*f.usage_source));
  }
  if (f.trace_id) {
    if (core::IsValid(*f.trace_id)) {
      q << " AND c.trace_bucket = ? AND c.trace_id = ?";
      q.Add(IdBucket(*f.trace_id));
      q.Add(Blob{std::vector<uint8_t>(f.trace_id->begin(), f.trace_id->end())});
    } else {
      q << " AND c.trace_id IS NULL";  // the zero id is stored as NULL
    }
  }
  if (f.min_duration_nanos) {
    q << " AND c.end_nanos >= ?";  // validated >= 0, so unfinished calls (< 0) never match
    q.Add(*f.min_duration_nanos);
  }
  if (f.min_cost_usd) {
    q << " AND c.cost_usd >= ?";  // NULL (unpriced) never matches
    q.Add(*f.min_cost_usd);
  }
  if (!f.request_id_contains.empty()) {
    q << " AND instr(c.request_id, ?) > 0";  // case-sensitive, unlike LIKE
    q.Add(f.request_id_contains);
  }
}

// The SQL of storage::SortValue: the same -1 for calls with no end or no cost.
// The column a grouping reads: for tags the whole tag list, whose value for the key is found
// in the scan (FirstTagValue); NULL for no grouping.
std::string_view GroupColumn(storage::GroupBy g) {
  switch (g) {
    case storage::GroupBy::kNone:
      return "NULL";
    case storage::GroupBy::kModel:
      return "c.requested_model";
    case storage::GroupBy::kProvider:
      return "c.provider";
    case storage::GroupBy::kUser:
      return "c.user";
    case storage::GroupBy::kTag:
      return "c.tags";
    case storage::GroupBy::kEndpoint:
      return "c.endpoint";
  }
  return "NULL";
}

std::string_view SortExpression(storage::CallSort sort) {
  switch (sort) {
    case storage::CallSort::kStartTime:
      return "c.start_unix_nanos";
    case storage::CallSort::kDuration:
      return "max(c.end_nanos, -1)";
    case storage::CallSort::kCost:
      return "coalesce(c.cost_usd, -1.0)";
    case storage::CallSort::kTotalTokens:
      return "(c.input_tokens + c.output_tokens)";
  }
  return "c.start_unix_nanos";
}

// ---------------------------------------------------------------------------------------
// Read connections

// Thread-safety: used by one thread at a time, between ReadPool::Acquire and the lease's
// end. `deadline` is read by the progress handler on that same thread.
struct ReadConn {
  Db db;
  std::unordered_map<std::string, Stmt> statements;  // prepared once, reused
  const core::Clock* clock = nullptr;
  core::MonoTime deadline = core::MonoTime::max();

  // The cached statement for `sql`, reset, with `args` bound.
  core::Result<Stmt*> Prepare(const Query& q) {
    auto it = statements.find(q.sql);
    if (it == statements.end()) {
      auto stmt = Stmt::Prepare(db.get(), q.sql, true);
      if (!stmt.ok()) return stmt.status();
      it = statements.emplace(q.sql, std::move(*stmt)).first;
    } else {
      it->second.Reset();
    }
    BindArgs(it->second, q.args);
    return &it->second;
  }
};

// Stops a statement (SQLITE_INTERRUPT) once its connection's deadline has passed.
int ProgressHandler(void* arg) {
  const auto* conn = static_cast<const ReadConn*>(arg);
  return conn->clock->Now() >= conn->deadline ? 1 : 0;
}

// When a query started and when it must stop, on the store's clock.
struct Deadline {
  core::MonoTime start;
  core::MonoTime at;
  core::Nanos timeout;
};

core::Status DeadlineStatus(const core::Clock& clock, const Deadline& d, std::string_view what) {
  return core::Status(core::StatusCode::kDeadlineExceeded,
                      std::string(what) + ": the query was stopped after " +
                          std::to_string(Millis(clock.Now() - d.start)) + " ms (timeout " +
                          std::to_string(Millis(d.timeout)) +
                          " ms); narrow the time range or add filters");
}

class ReadPool;

// A borrowed read connection; given back when destroyed.
class Lease {
 public:
  Lease(ReadPool* pool, ReadConn* conn) : pool_(pool), conn_(conn) {}
  Lease(Lease&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)), conn_(std::exchange(other.conn_, nullptr)) {}
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  ReadConn* operator->() const { return conn_; }
  ReadConn& operator*() const { return *conn_; }

 private:
  ReadPool* pool_;
  ReadConn* conn_;
};

// Thread-safety: Acquire and Release may be called from any thread.
// A fixed set of read connections handed out one query at a time.
class ReadPool {
 public:
  void Add(std::unique_ptr<ReadConn> conn) {
    free_.push_back(conn.get());
    all_.push_back(std::move(conn));
  }

  // A connection armed with `d`, waiting (in real time) for one to come free until the
  // deadline. DEADLINE_EXCEEDED when none does.
  core::Result<Lease> Acquire(const core::Clock& clock, const Deadline& d, std::string_view what) {
    auto left = d.at - clock.Now();
    auto real_deadline = std::chrono::steady_clock::now() + std::max(left, core::Nanos(0));
    std::unique_lock lock(mu_);
    while (free_.empty()) {
      if (cv_.wait_until(lock, real_deadline) == std::cv_status::timeout && free_.empty()) {
        return core::Status(core::StatusCode::kDeadlineExceeded,
                            std::string(what) + ": no read connection came free within the " +
                                std::to_string(Millis(d.timeout)) + " ms timeout (all " +
                                std::to_string(all_.size()) + " busy)");
      }
    }
    ReadConn* conn = free_.back();
    free_.pop_back();
    lock.unlock();
    if (conn->statements.size() > kStatementCacheSize) conn->statements.clear();
    conn->deadline = d.at;
    return Lease(this, conn);
  }

  void Release(ReadConn* conn) {
    conn->deadline = core::MonoTime::max();
    // A statement left mid-result (an early return) would pin its read snapshot and keep
    // checkpoints from finishing: reset whatever is still running.
    for (sqlite3_stmt* s = sqlite3_next_stmt(conn->db.get(), nullptr); s != nullptr;
         s = sqlite3_next_stmt(conn->db.get(), s)) {
      if (sqlite3_stmt_busy(s)) sqlite3_reset(s);
    }
    {
      std::lock_guard lock(mu_);
      free_.push_back(conn);
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReadConn*> free_;                 // guarded by mu_
  std::vector<std::unique_ptr<ReadConn>> all_;  // filled before use, then immutable
};

Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(conn_);
}

// ---------------------------------------------------------------------------------------
// Aggregation

// One (bucket, group) of an Aggregate while rows stream in.
struct Accumulator {
  storage::AggregateRow row;
  std::vector<int64_t> latency;
  std::vector<int64_t> ttft;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// The store

struct SqliteStore::Impl {
  SqliteOptions options;
  core::SystemClock system_clock;
  const core::Clock* clock = nullptr;

  std::mutex write_mu;
  Db writer;  // guarded by write_mu
  // Prepared once on the writer; guarded by write_mu. Declared after `writer`, so they are
  // finalized before it closes.
  struct Writes {
    Stmt begin, commit, rollback;
    Stmt insert_call, delete_call;
    Stmt upsert_content, delete_content, find_span, delete_span, insert_span;
  } w;
  // Encoded span columns, reused across spans so that writing allocates nothing once warm.
  // Guarded by write_mu.
  std::string span_resource, span_attributes, span_events, span_links;

  ReadPool pool;

  // Checkpoints off the write path (options.background_checkpoint); see CheckpointLoop.
  // Serializes this process's checkpoints: SQLite lets one connection at a time hold the
  // checkpoint lock and answers a second with SQLITE_BUSY instead of waiting, so without it
  // a writer bounding the WAL could find the checkpointer's lock and do nothing. Lock
  // order: write_mu before checkpoint_mu.
  std::mutex checkpoint_mu;
  // Pages in the WAL after the writer's last commit (SQLite's WAL hook, run inside the
  // commit, so written under write_mu).
  std::atomic<int64_t> wal_frames{0};
  struct Checkpointer {
    Db db;          // used with checkpoint_mu held, by the thread below only
    std::mutex mu;  // guards due and stop
    std::condition_variable cv;
    bool due = false;
    bool stop = false;
    std::thread thread;  // started last by Open, joined by ~Impl before any connection closes
  } ckpt;

  ~Impl() { StopCheckpointer(); }

  void StopCheckpointer() {
    if (!ckpt.thread.joinable()) return;
    {
      std::lock_guard lock(ckpt.mu);
      ckpt.stop = true;
    }
    ckpt.cv.notify_one();
    ckpt.thread.join();
  }

  // SQLite's WAL hook on the writer, run by each commit with the WAL's page count: wakes
  // the checkpointer once the WAL holds wal_autocheckpoint_pages. Never fails the commit.
  static int OnWalCommit(void* arg, sqlite3*, const char*, int frames) {
    auto* m = static_cast<Impl*>(arg);
    m->wal_frames.store(frames, std::memory_order_relaxed);
    if (frames >= m->options.wal_autocheckpoint_pages) {
      {
        std::lock_guard lock(m->ckpt.mu);
        m->ckpt.due = true;
      }
      m->ckpt.cv.notify_one();
    }
    return SQLITE_OK;
  }

  // The checkpoint thread. Each round, once woken: (1) a PASSIVE checkpoint without the
  // write lock copies the WAL into the database file while the writer goes on committing;
  // (2) under the write lock, a second PASSIVE checkpoint copies what was committed during
  // (1), so the WAL is then fully copied and the writer's next transaction starts it over
  // from its beginning instead of growing it. The writer waits only for (2). Failures
  // (SQLITE_BUSY while a reader still reads old pages, I/O errors) leave the pages in the
  // WAL for the next round, and the writer's own bound (Commit) still holds.
  void CheckpointLoop() {
    std::unique_lock lock(ckpt.mu);
    while (true) {
      ckpt.cv.wait(lock, [&] { return ckpt.due || ckpt.stop; });
      if (ckpt.stop) return;
      ckpt.due = false;
      lock.unlock();
      {
        std::lock_guard c(checkpoint_mu);
        (void)sqlite3_wal_checkpoint_v2(ckpt.db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                        nullptr);
      }
      {
        std::lock_guard write_lock(write_mu);
        std::lock_guard c(checkpoint_mu);
        (void)sqlite3_wal_checkpoint_v2(ckpt.db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                        nullptr);
      }
      lock.lock();
    }
  }

  // The WAL bound of background checkpointing: after a commit that left more than
  // wal_max_pages in the WAL, the writer copies it back itself (no commit can intervene:
  // write_mu is held), so the next transaction starts the WAL over. A failed checkpoint
  // does not fail the commit, which is done; the next commit tries again.
  // REQUIRES: write_mu held.
  void BoundWalLocked() {
    if (!options.background_checkpoint ||
        wal_frames.load(std::memory_order_relaxed) <= options.wal_max_pages) {
      return;
    }
    std::lock_guard c(checkpoint_mu);
    (void)sqlite3_wal_checkpoint_v2(writer.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                    nullptr);
  }

  Deadline DeadlineIn(core::Nanos timeout) const {
    core::MonoTime now = clock->Now();
    core::MonoTime at =
        timeout >= core::MonoTime::max() - now ? core::MonoTime::max() : now + timeout;
    return Deadline{now, at, timeout};
  }

  // A Status for a failed step on a read connection: DEADLINE_EXCEEDED when the progress
  // handler stopped it.
  core::Status StepError(const ReadConn& conn, int rc, const Deadline& d,
                         std::string_view what) const {
    if ((rc & 0xff) == SQLITE_INTERRUPT) return DeadlineStatus(*clock, d, what);
    return SqliteError(conn.db.get(), rc, what);
  }

  core::Status Begin() { return Run(w.begin, "begin transaction"); }
  // REQUIRES: write_mu held.
  core::Status Commit() {
    core::Status s = Run(w.commit, "commit");
    if (!s.ok()) {
      Rollback();
      return s;
    }
    BoundWalLocked();
    return s;
  }
  void Rollback() {
    // Nothing to report: the caller returns the error that made it roll back.
    w.rollback.Reset();
    (void)w.rollback.Step();
  }
  static core::Status Run(Stmt& s, std::string_view what) {
    s.Reset();
    return s.Run(what);
  }

  // Writes one call inside the open transaction. REQUIRES: write_mu held.
  core::Status WriteCallLocked(const LlmCall& c, std::string& finish, std::string& tags) {
    finish = EncodeStrings(c.finish_reasons);
    tags = EncodeTags(c.tags);
    Stmt& insert = w.insert_call;
    insert.Reset();
    BindCall(insert, c, finish, tags);
    int rc = insert.Step();
    bool replaced = false;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      // The key (start, request id) is stored already: a replay or an update. Drop the old
      // row, then insert again; the common path (a new call) costs a single insert.
      replaced = true;
      insert.Reset();
      Stmt& del = w.delete_call;
      del.Reset();
      del.BindInt(1, c.start_unix_nanos);
      del.BindTextStatic(2, c.request_id);
      if (auto s = del.Run("write_calls: replace " + c.request_id); !s.ok()) return s;
      BindCall(insert, c, finish, tags);
      rc = insert.Step();
    }
    if (rc != SQLITE_DONE) {
      return SqliteError(writer.get(), rc, "write_calls: insert " + c.request_id);
    }
    if (!c.request_body.empty() || !c.response_text.empty()) {
      Stmt& content = w.upsert_content;
      content.Reset();
      content.BindInt(1, c.start_unix_nanos);
      content.BindTextStatic(2, c.request_id);
      content.BindTextStatic(3, c.request_body);
      content.BindTextStatic(4, c.response_text);
      if (auto s = content.Run("write_calls: content of " + c.request_id); !s.ok()) return s;
    } else if (replaced) {
      // A rewrite is whole: without content now, the old content goes.
      w.delete_content.Reset();
      w.delete_content.BindInt(1, c.start_unix_nanos);
      w.delete_content.BindTextStatic(2, c.request_id);
      if (auto s = w.delete_content.Run("write_calls: content of " + c.request_id); !s.ok()) {
        return s;
      }
    }
    return core::Status::Ok();
  }

  // Deletes the stored span with the key (start, trace id, span id) of `sp`, if any: a
  // read-only probe of spans_start (near its end), and a delete only when it finds one.
  // REQUIRES: write_mu held, a transaction open.
  core::Status ReplaceSpanLocked(const Span& sp, std::string_view trace, std::string_view span) {
    Stmt& find = w.find_span;
    find.Reset();
    find.BindInt(1, sp.start_unix_nanos);
    find.BindBlobStatic(2, trace);
    find.BindBlobStatic(3, span);
    const int rc = find.Step();
    if (rc == SQLITE_ROW) {
      const int64_t rowid = find.Int(0);
      find.Reset();
      Stmt& del = w.delete_span;
      del.Reset();
      del.BindInt(1, rowid);
      return del.Run("replace");
    }
    if (rc != SQLITE_DONE) return SqliteError(writer.get(), rc, "find");
    return core::Status::Ok();
  }

  // Writes one span inside the open transaction, replacing the stored span with its key
  // (start, trace id, span id); the insert appends to the table and its indexes.
  // `latest_start` is the latest start of any span in the table, this transaction's
  // included (INT64_MIN when empty): a span starting after it cannot have a stored twin, so
  // it skips the probe, as do all spans that arrive in start order. REQUIRES: write_mu held.
  core::Status WriteSpanLocked(const Span& sp, int64_t& latest_start) {
    const std::string_view trace(reinterpret_cast<const char*>(sp.trace_id.data()),
                                 sp.trace_id.size());
    const std::string_view span(reinterpret_cast<const char*>(sp.span_id.data()),
                                sp.span_id.size());
    if (sp.start_unix_nanos > latest_start) {
      latest_start = sp.start_unix_nanos;
    } else if (auto s = ReplaceSpanLocked(sp, trace, span); !s.ok()) {
      return s;
    }

    internal::EncodeAttributes(sp.resource_attributes, span_resource);
    internal::EncodeAttributes(sp.attributes, span_attributes);
    internal::EncodeEvents(sp.events, span_events);
    internal::EncodeLinks(sp.links, span_links);
    Stmt& st = w.insert_span;
    st.Reset();
    st.BindBlobStatic(1, trace);
    st.BindBlobStatic(2, span);
    BindId(st, 3, sp.parent_span_id);
    st.BindTextStatic(4, sp.name);
    st.BindInt(5, static_cast<int64_t>(sp.kind));
    st.BindTextStatic(6, sp.service);
    st.BindTextStatic(7, sp.scope);
    st.BindInt(8, sp.start_unix_nanos);
    st.BindInt(9, sp.end_unix_nanos);
    st.BindInt(10, static_cast<int64_t>(sp.status));
    st.BindTextStatic(11, sp.status_message);
    st.BindBlobStatic(12, span_resource);
    st.BindBlobStatic(13, span_attributes);
    st.BindBlobStatic(14, span_events);
    st.BindBlobStatic(15, span_links);
    st.BindInt(16, internal::LookupBucket(trace));
    return st.Run("insert");
  }

  // Deletes the rows of `table` with start_unix_nanos < cut, retention_batch_rows per
  // transaction (the write lock released in between). Returns the number removed.
  core::Result<int64_t> DeleteBefore(const std::string& table, int64_t cut) {
    const std::string what = "apply_retention: " + table;
    int64_t removed = 0;
    while (true) {
      std::lock_guard lock(write_mu);
      // The start of the batch-th oldest due row bounds this batch through the start index;
      // a tie at the boundary only makes the batch a little larger.
      auto boundary = Stmt::Prepare(writer.get(),
                                    "SELECT start_unix_nanos FROM " + table +
                                        " WHERE start_unix_nanos < ?1 ORDER BY "
                                        "start_unix_nanos LIMIT 1 OFFSET ?2",
                                    false);
      if (!boundary.ok()) return boundary.status();
      boundary->BindInt(1, cut);
      boundary->BindInt(2, options.retention_batch_rows - 1);
      int rc = boundary->Step();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(writer.get(), rc, what);
      const bool last = rc == SQLITE_DONE;
      const int64_t upto = last ? cut : boundary->Int(0) + 1;  // delete start < upto
      boundary = Stmt();
      if (auto s = Begin(); !s.ok()) return s;
      auto del = Stmt::Prepare(writer.get(),
                               "DELETE FROM " + table + " WHERE start_unix_nanos < ?1", false);
      core::Status s = del.status();
      if (s.ok()) {
        del->BindInt(1, upto);
        s = del->Run(what);
        removed += sqlite3_changes64(writer.get());
      }
      del = Stmt();
      if (!s.ok()) {
        Rollback();
        return s;
      }
      if (auto c = Commit(); !c.ok()) return c;
      if (last) return removed;
    }
  }
};

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

int SqliteStore::SchemaVersion() { return internal::kSchemaVersion; }

core::Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(SqliteOptions options) {
  std::vector<std::string> problems;
  if (options.path.empty()) problems.push_back("path: must name a database file");
  if (options.path == ":memory:" || options.path.rfind("file:", 0) == 0) {
    problems.push_back("path: must be a plain file path (\":memory:\" and URIs are not " +
                       std::string("supported: the store needs WAL and shared read connections)"));
  }
  if (options.read_connections < 1 || options.read_connections > 64) {
    problems.push_back("read_connections: must be between 1 and 64");
  }
  if (options.busy_timeout_ms < 0) problems.push_back("busy_timeout_ms: must not be negative");
  if (options.cache_kib_per_connection < 0) {
    problems.push_back("cache_kib_per_connection: must not be negative");
  }
  if (options.writer_cache_kib < 0) problems.push_back("writer_cache_kib: must not be negative");
  if (options.mmap_bytes < 0) problems.push_back("mmap_bytes: must not be negative");
  if (options.max_percentile_values < 1) problems.push_back("max_percentile_values: must be >= 1");
  if (options.retention_batch_rows < 1) problems.push_back("retention_batch_rows: must be >= 1");
  if (options.max_top_groups < 1) problems.push_back("max_top_groups: must be >= 1");
  if (options.wal_autocheckpoint_pages < 1) {
    problems.push_back("wal_autocheckpoint_pages: must be >= 1");
  }
  if (options.background_checkpoint && options.wal_max_pages < options.wal_autocheckpoint_pages) {
    problems.push_back("wal_max_pages: must be >= wal_autocheckpoint_pages");
  }
  if (!problems.empty()) {
    std::string message = "sqlite options:";
    for (const auto& p : problems) message += " " + p + ";";
    message.pop_back();
    return core::InvalidArgument(message);
  }

  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->clock = impl->options.clock != nullptr ? impl->options.clock : &impl->system_clock;
  const std::string& path = impl->options.path;

  // Settings of every connection (they are per connection, not stored in the file).
  const std::string common =
      "PRAGMA busy_timeout = " + std::to_string(impl->options.busy_timeout_ms) +
      "; PRAGMA cache_size = -" + std::to_string(impl->options.cache_kib_per_connection) +
      "; PRAGMA mmap_size = " + std::to_string(impl->options.mmap_bytes) +
      "; PRAGMA temp_store = MEMORY";

  auto writer = Db::Open(path);
  if (!writer.ok()) return writer.status();
  impl->writer = std::move(*writer);
  Db& w = impl->writer;
  if (auto s = w.Exec(
          common + "; PRAGMA cache_size = -" + std::to_string(impl->options.writer_cache_kib),
          "configure " + path);
      !s.ok()) {
    return s;
  }
  if (auto s = internal::Migrate(w, path); !s.ok()) return s;
  // NORMAL: a commit is in the WAL (in the OS) when it returns, so it survives the process
  // dying; FULL also fsyncs it. secure_delete: removed content (retention, rewrites) is
  // overwritten, not left readable in free pages. journal_size_limit: the WAL file is cut
  // back to 64 MiB after a checkpoint instead of keeping its largest size.
  if (auto s = w.Exec(std::string("PRAGMA synchronous = ") +
                          (impl->options.sync_every_commit ? "FULL" : "NORMAL") +
                          "; PRAGMA secure_delete = ON; PRAGMA journal_size_limit = 67108864" +
                          "; PRAGMA wal_autocheckpoint = " +
                          std::to_string(impl->options.background_checkpoint
                                             ? 0
                                             : impl->options.wal_autocheckpoint_pages),
                      "configure " + path);
      !s.ok()) {
    return s;
  }

  auto prepare = [&](Stmt& out, std::string_view sql) -> core::Status {
    auto stmt = Stmt::Prepare(w.get(), sql, true);
    if (!stmt.ok()) return stmt.status();
    out = std::move(*stmt);
    return core::Status::Ok();
  };
  Impl::Writes& ws = impl->w;
  for (auto [stmt, sql] : std::initializer_list<std::pair<Stmt*, std::string_view>>{
           {&ws.begin, "BEGIN IMMEDIATE"},
           {&ws.commit, "COMMIT"},
           {&ws.rollback, "ROLLBACK"},
           {&ws.insert_call, kInsertCall},
           {&ws.delete_call, "DELETE FROM calls WHERE start_unix_nanos = ?1 AND request_id = ?2"},
           {&ws.upsert_content,
            "INSERT OR REPLACE INTO call_content (start_unix_nanos, request_id, request_body, "
            "response_text) VALUES (?1, ?2, ?3, ?4)"},
           {&ws.delete_content,
            "DELETE FROM call_content WHERE start_unix_nanos = ?1 AND request_id = ?2"},
           {&ws.find_span,
            "SELECT rowid FROM spans WHERE start_unix_nanos = ?1 AND trace_id = ?2 AND span_id = "
            "?3"},
           {&ws.delete_span, "DELETE FROM spans WHERE rowid = ?1"},
           {&ws.insert_span,
            "INSERT INTO spans (trace_id, span_id, parent_span_id, name, kind, service, scope, "
            "start_unix_nanos, end_unix_nanos, status, status_message, resource_attributes, "
            "attributes, events, links, trace_bucket) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
            "?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"},
       }) {
    if (auto s = prepare(*stmt, sql); !s.ok()) {
      return core::Status(s.code(), path + ": " + s.message());
    }
  }

  for (int i = 0; i < impl->options.read_connections; ++i) {
    auto db = Db::Open(path);
    if (!db.ok()) return db.status();
    auto conn = std::make_unique<ReadConn>();
    conn->db = std::move(*db);
    conn->clock = impl->clock;
    if (auto s = conn->db.Exec(common + "; PRAGMA query_only = ON", "configure " + path); !s.ok()) {
      return s;
    }
    sqlite3_progress_handler(conn->db.get(), kProgressInstructions, ProgressHandler, conn.get());
    impl->pool.Add(std::move(conn));
  }

  if (impl->options.background_checkpoint) {
    auto db = Db::Open(path);
    if (!db.ok()) return db.status();
    impl->ckpt.db = std::move(*db);
    // A checkpoint syncs as the writer's commits do; the first read opens the WAL.
    if (auto s = impl->ckpt.db.Exec(
            "PRAGMA busy_timeout = " + std::to_string(impl->options.busy_timeout_ms) +
                "; PRAGMA cache_size = -1024; PRAGMA synchronous = " +
                (impl->options.sync_every_commit ? "FULL" : "NORMAL"),
            "configure the checkpointer of " + path);
        !s.ok()) {
      return s;
    }
    if (auto n = impl->ckpt.db.QueryInt("SELECT count(*) FROM sqlite_schema",
                                        "open the checkpointer of " + path);
        !n.ok()) {
      return n.status();
    }
    // Replaces SQLite's own WAL hook, which wal_autocheckpoint = 0 has already turned off.
    sqlite3_wal_hook(w.get(), &Impl::OnWalCommit, impl.get());
    Impl* m = impl.get();
    impl->ckpt.thread = std::thread([m] { m->CheckpointLoop(); });
  }
  return std::unique_ptr<SqliteStore>(new SqliteStore(std::move(impl)));
}

core::Status SqliteStore::Ping() {
  Deadline d = impl_->DeadlineIn(kDefaultTimeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, "ping");
  if (!lease.ok()) return core::Unavailable(lease.status().message());
  auto v = (*lease)->db.QueryInt("SELECT count(*) FROM sqlite_schema", "ping");
  if (!v.ok()) return core::Unavailable(v.status().message());
  return core::Status::Ok();
}

core::Status SqliteStore::WriteCalls(std::span<const LlmCall> calls) {
  if (calls.empty()) return core::Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  if (auto s = impl_->Begin(); !s.ok()) return s;
  std::string finish;
  std::string tags;
  for (const LlmCall& c : calls) {
    if (auto s = impl_->WriteCallLocked(c, finish, tags); !s.ok()) {
      impl_->Rollback();
      return s;
    }
  }
  return impl_->Commit();
}

core::Status SqliteStore::WriteSpans(std::span<const Span> spans) {
  if (spans.empty()) return core::Status::Ok();
  std::lock_guard lock(impl_->write_mu);
  if (auto s = impl_->Begin(); !s.ok()) return s;
  Impl& m = *impl_;
  // Read inside the write transaction, so that it covers every writer of the file.
  auto latest =
      m.writer.QueryInt("SELECT coalesce(max(start_unix_nanos), -9223372036854775808) FROM spans",
                        "write_spans: latest start");
  if (!latest.ok()) {
    m.Rollback();
    return latest.status();
  }
  int64_t latest_start = *latest;
  for (const Span& sp : spans) {
    if (auto s = m.WriteSpanLocked(sp, latest_start); !s.ok()) {
      m.Rollback();
      return core::Status(s.code(), "write_spans: span " + core::ToHex(sp.trace_id) + "/" +
                                        core::ToHex(sp.span_id) + ": " + s.message());
    }
  }
  return impl_->Commit();
}

core::Result<storage::CallPage> SqliteStore::ListCalls(const storage::CallQuery& query) {
  if (auto s = storage::Validate(query); !s.ok()) return s;
  const char* what = "list_calls";
  std::optional<storage::CallCursor> cursor;
  if (!query.cursor.empty()) {
    auto decoded = storage::DecodeCallCursor(query.cursor, query.sort, query.descending);
    if (!decoded.ok()) return decoded.status();
    cursor = std::move(*decoded);
  }
  const std::string_view key = SortExpression(query.sort);
  const char* dir = query.descending ? " DESC" : " ASC";
  const int64_t fetch = static_cast<int64_t>(query.limit) + 1;  // one more: is there a next?
  // One ordered, limited SELECT over calls with `model` rendering of the model filter.
  // The keys of one ordered, limited selection of calls, with `model` rendering the model
  // filter. Keys first, rows after: on a WITHOUT ROWID table SQLite reads the row of every
  // index entry it visits before testing the entry's own columns, so selecting only keys
  // lets a lookup index (user, session, trace) be scanned without touching a row.
  auto select = [&](Query& q, ModelTerm model) {
    q << "SELECT c.start_unix_nanos AS k_start, c.request_id AS k_id, " << key
      << " AS sort_key FROM calls c";
    AppendFilter(query.filter, q, model);
    if (cursor) {
      // Keyset paging: rows strictly after the cursor's (sort value, request id). The cost
      // value is the exact double of the last row, compared as REAL.
      q << " AND (" << key << ", c.request_id) " << (query.descending ? "<" : ">") << " (?, ?)";
      std::visit([&](auto v) { q.Add(v); }, cursor->value);
      q.Add(cursor->request_id);
    }
    q << " ORDER BY " << key << dir << ", c.request_id" << dir << " LIMIT ?";
    q.Add(fetch);
  };
  Query q;
  q << "SELECT " << kCallColumns << " FROM (";
  if (!query.filter.model) {
    select(q, ModelTerm::kEither);
  } else {
    // "requested OR response model" as two disjoint halves, each walking its own
    // (model, start) index in order and stopping at the page's end, merged on the sort key.
    // A single OR would make the planner either collect every call of the model and sort
    // them (slow for a common model) or scan all calls for matches (slow for a rare one).
    q << "SELECT * FROM (";
    select(q, ModelTerm::kRequested);
    q << ") UNION ALL SELECT * FROM (";
    select(q, ModelTerm::kResponseOnly);
    q << ") ORDER BY sort_key" << dir << ", k_id" << dir << " LIMIT ?";
    q.Add(fetch);
  }
  q << ") k JOIN calls c ON c.start_unix_nanos = k.k_start AND c.request_id = k.k_id"
    << " ORDER BY k.sort_key" << dir << ", k.k_id" << dir;

  Deadline d = impl_->DeadlineIn(query.timeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  auto stmt = (*lease)->Prepare(q);
  if (!stmt.ok()) return stmt.status();
  storage::CallPage page;
  bool more = false;
  while (true) {
    int rc = (*stmt)->Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
    if (page.calls.size() == query.limit) {
      more = true;
      break;
    }
    auto call = ReadCall(**stmt);
    if (!call.ok()) return call.status();
    page.calls.push_back(std::move(*call));
  }
  (*stmt)->Reset();
  if (more) {
    page.next_cursor = storage::EncodeCallCursor(
        storage::CursorAfter(page.calls.back(), query.sort, query.descending));
  }
  return page;
}

core::Result<LlmCall> SqliteStore::GetCall(std::string_view request_id) {
  const char* what = "get_call";
  Query q;
  // One bucket of calls_by_id, newest first, matched on the request id inside the index
  // (keys first: see ListCalls), then the row and its content.
  q << "SELECT " << kCallColumns << ", t.request_body, t.response_text FROM ("
    << "SELECT start_unix_nanos AS k_start, request_id AS k_id FROM calls"
       " WHERE id_bucket = ? AND request_id = ? ORDER BY start_unix_nanos DESC LIMIT 1) k"
       " JOIN calls c ON c.start_unix_nanos = k.k_start AND c.request_id = k.k_id"
       " LEFT JOIN call_content t ON t.start_unix_nanos = c.start_unix_nanos"
       " AND t.request_id = c.request_id";
  q.Add(internal::LookupBucket(request_id));
  q.Add(std::string(request_id));
  Deadline d = impl_->DeadlineIn(kDefaultTimeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  auto stmt = (*lease)->Prepare(q);
  if (!stmt.ok()) return stmt.status();
  int rc = (*stmt)->Step();
  if (rc == SQLITE_DONE) {
    return core::NotFound("no call with request id \"" + std::string(request_id) + "\"");
  }
  if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
  auto call = ReadCall(**stmt);
  if (!call.ok()) return call.status();
  call->request_body = (*stmt)->Text(34);
  call->response_text = (*stmt)->Text(35);
  (*stmt)->Reset();
  return call;
}

core::Result<storage::AggregateResult> SqliteStore::Aggregate(
    const storage::AggregateQuery& query) {
  if (auto s = storage::Validate(query); !s.ok()) return s;
  const char* what = "aggregate";
  using storage::GroupBy;
  Query q;
  q << "SELECT c.start_unix_nanos, " << GroupColumn(query.group_by);
  q << ", c.end_nanos, c.first_content_nanos, c.error, c.input_tokens, c.output_tokens,"
       " c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens, c.cost_usd, c.unpriced"
       " FROM calls c";
  AppendFilter(query.filter, q);

  Deadline d = impl_->DeadlineIn(query.timeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  auto stmt_or = (*lease)->Prepare(q);
  if (!stmt_or.ok()) return stmt_or.status();
  Stmt& stmt = **stmt_or;

  // Rows stream in start order (the primary key); each lands in its (bucket, group)
  // accumulator, found by a key of 8 bucket bytes plus the group's bytes.
  const int64_t width = storage::BucketWidthNanos(query.bucket);
  std::unordered_map<std::string, size_t> index;
  std::vector<Accumulator> groups;
  std::string key;
  const std::string tag_prefix = TagKeyPrefix(query.group_tag_key);
  std::string tag_value;
  int64_t values = 0;
  while (true) {
    int rc = stmt.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
    const int64_t start = stmt.Int(0);
    const int64_t bucket = width > 0 ? FloorDiv(start, width) * width : 0;
    std::string_view group;
    if (query.group_by == GroupBy::kEndpoint) {
      group = core::EndpointName(static_cast<core::Endpoint>(stmt.Int(1)));
    } else if (query.group_by == GroupBy::kTag) {
      tag_value = FirstTagValue(AsText(stmt.Blob(1)), tag_prefix);
      group = tag_value;
    } else if (query.group_by != GroupBy::kNone) {
      group = stmt.Text(1);
    }
    key.assign(reinterpret_cast<const char*>(&bucket), sizeof bucket);
    key.append(group);
    auto [it, inserted] = index.try_emplace(key, groups.size());
    if (inserted) {
      if (groups.size() == storage::kMaxAggregateRows) {
        return core::Status(core::StatusCode::kResourceExhausted,
                            std::string(what) + ": more than " +
                                std::to_string(storage::kMaxAggregateRows) +
                                " result rows (buckets x groups); narrow the range, use a "
                                "coarser bucket or group by something with fewer values");
      }
      Accumulator& a = groups.emplace_back();
      a.row.bucket_start_unix_nanos = bucket;
      a.row.group = group;
    }
    Accumulator& a = groups[it->second];
    storage::AggregateRow& r = a.row;
    r.requests++;
    const int64_t end = stmt.Int(2);
    const int64_t first_content = stmt.Int(3);
    if (end >= 0) a.latency.push_back(end);
    if (first_content >= 0) a.ttft.push_back(first_content);
    values += (end >= 0) + (first_content >= 0);
    if (values > impl_->options.max_percentile_values) {
      return core::Status(core::StatusCode::kResourceExhausted,
                          std::string(what) + ": over " +
                              std::to_string(impl_->options.max_percentile_values) +
                              " latency values to rank for exact percentiles; narrow the "
                              "time range or add filters");
    }
    if (stmt.Int(4) != 0) r.errors++;
    r.tokens.input += stmt.Int(5);
    r.tokens.output += stmt.Int(6);
    r.tokens.cache_read += stmt.Int(7);
    r.tokens.cache_write += stmt.Int(8);
    r.tokens.reasoning += stmt.Int(9);
    if (!stmt.IsNull(10)) r.cost_usd += stmt.Double(10);
    if (stmt.Int(11) != 0) r.unpriced++;
  }
  stmt.Reset();

  std::sort(groups.begin(), groups.end(), [](const Accumulator& a, const Accumulator& b) {
    return std::tie(a.row.bucket_start_unix_nanos, a.row.group) <
           std::tie(b.row.bucket_start_unix_nanos, b.row.group);
  });
  storage::AggregateResult result;
  result.rows.reserve(groups.size());
  for (Accumulator& a : groups) {
    if (impl_->clock->Now() >= d.at) return DeadlineStatus(*impl_->clock, d, what);
    if (!a.latency.empty()) {
      a.row.latency_p50_nanos = storage::ExactQuantile(a.latency, 0.50);
      a.row.latency_p95_nanos = storage::ExactQuantile(a.latency, 0.95);
      a.row.latency_p99_nanos = storage::ExactQuantile(a.latency, 0.99);
    }
    if (!a.ttft.empty()) {
      a.row.ttft_p50_nanos = storage::ExactQuantile(a.ttft, 0.50);
      a.row.ttft_p95_nanos = storage::ExactQuantile(a.ttft, 0.95);
    }
    result.rows.push_back(std::move(a.row));
  }
  return result;
}

core::Result<storage::TopResult> SqliteStore::Top(const storage::TopQuery& query) {
  if (auto s = storage::Validate(query); !s.ok()) return s;
  const char* what = "top";
  using storage::GroupBy;
  // Summed per group in a hash map while the range streams in: one pass in primary-key
  // order, no sort of the rows (SQLite's GROUP BY would sort them all first).
  Query q;
  q << "SELECT " << GroupColumn(query.dimension);  // kNone is refused by Validate
  q << ", c.input_tokens, c.output_tokens, c.cost_usd FROM calls c";
  AppendFilter(query.filter, q);
  if (query.dimension == GroupBy::kTag) {
    // Calls without the tag would fall in the empty group, which Top leaves out.
    q << " AND instr(c.tags, ?) > 0";
    std::string prefix = TagKeyPrefix(query.group_tag_key);
    q.Add(Blob{std::vector<uint8_t>(prefix.begin(), prefix.end())});
  }

  Deadline d = impl_->DeadlineIn(query.timeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  auto stmt_or = (*lease)->Prepare(q);
  if (!stmt_or.ok()) return stmt_or.status();
  Stmt& stmt = **stmt_or;
  std::unordered_map<std::string, storage::TopRow> groups;
  std::string group;
  const std::string tag_prefix = TagKeyPrefix(query.group_tag_key);
  while (true) {
    int rc = stmt.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
    if (query.dimension == GroupBy::kEndpoint) {
      group = core::EndpointName(static_cast<core::Endpoint>(stmt.Int(0)));
    } else if (query.dimension == GroupBy::kTag) {
      group = FirstTagValue(AsText(stmt.Blob(0)), tag_prefix);
    } else {
      group = stmt.Text(0);
    }
    if (group.empty()) continue;  // no user, no such tag, no model: left out
    auto [it, inserted] = groups.try_emplace(group);
    if (inserted) {
      if (static_cast<int64_t>(groups.size()) > impl_->options.max_top_groups) {
        return core::Status(core::StatusCode::kResourceExhausted,
                            std::string(what) + ": over " +
                                std::to_string(impl_->options.max_top_groups) +
                                " distinct groups to rank; narrow the time range or add filters");
      }
      it->second.group = group;
    }
    storage::TopRow& row = it->second;
    row.requests++;
    row.input_tokens += stmt.Int(1);
    row.output_tokens += stmt.Int(2);
    if (!stmt.IsNull(3)) row.cost_usd += stmt.Double(3);
  }
  stmt.Reset();

  std::vector<storage::TopRow> rows;
  rows.reserve(groups.size());
  for (auto& [name, row] : groups) rows.push_back(std::move(row));
  const bool by_cost = query.by == storage::TopMetric::kCost;
  auto before = [by_cost](const storage::TopRow& a, const storage::TopRow& b) {
    if (by_cost) {
      if (a.cost_usd != b.cost_usd) return a.cost_usd > b.cost_usd;
    } else {
      int64_t ta = a.input_tokens + a.output_tokens;
      int64_t tb = b.input_tokens + b.output_tokens;
      if (ta != tb) return ta > tb;
    }
    return a.group < b.group;
  };
  const size_t n = std::min(query.limit, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n), rows.end(),
                    before);
  rows.resize(n);
  storage::TopResult result;
  result.rows = std::move(rows);
  return result;
}

core::Result<storage::TracePage> SqliteStore::ListTraces(const storage::TraceQuery& query) {
  if (auto s = storage::Validate(query); !s.ok()) return s;
  const char* what = "list_traces";
  // Spans and traced calls in the range, one row each, summarised per trace. The spans side
  // reads the covering index spans_start; the calls side the calls primary key.
  Query q;
  q << "SELECT trace_id, min(s) AS t_start, max(e), sum(is_span), count(*) - sum(is_span),"
       " max(err), total(cost) FROM ("
       "SELECT trace_id, start_unix_nanos AS s, end_unix_nanos AS e, 1 AS is_span,"
       " status = 2 AS err, NULL AS cost, ";
  if (query.service) {
    q << "service = ?";
    q.Add(*query.service);
  } else {
    q << "0";
  }
  q << " AS svc FROM spans WHERE start_unix_nanos >= ? AND start_unix_nanos < ?";
  q.Add(query.from_unix_nanos);
  q.Add(query.to_unix_nanos);
  q << " UNION ALL SELECT trace_id, start_unix_nanos, start_unix_nanos + max(end_nanos, 0), 0,"
       " error != 0, cost_usd, 0 FROM calls WHERE trace_id IS NOT NULL"
       " AND start_unix_nanos >= ? AND start_unix_nanos < ?";
  q.Add(query.from_unix_nanos);
  q.Add(query.to_unix_nanos);
  q << ") GROUP BY trace_id HAVING 1";
  if (query.service) q << " AND max(svc) = 1";
  if (query.errors_only) q << " AND max(err) = 1";
  if (!query.cursor.empty()) {
    auto cursor = storage::DecodeTraceCursor(query.cursor);
    if (!cursor.ok()) return cursor.status();
    q << " AND (t_start, trace_id) < (?, ?)";
    q.Add(cursor->first);
    q.Add(Blob{std::vector<uint8_t>(cursor->second.begin(), cursor->second.end())});
  }
  q << " ORDER BY t_start DESC, trace_id DESC LIMIT ?";
  q.Add(static_cast<int64_t>(query.limit) + 1);

  Deadline d = impl_->DeadlineIn(query.timeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  storage::TracePage page;
  bool more = false;
  {
    auto stmt = (*lease)->Prepare(q);
    if (!stmt.ok()) return stmt.status();
    while (true) {
      int rc = (*stmt)->Step();
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
      if (page.traces.size() == query.limit) {
        more = true;
        break;
      }
      storage::TraceSummary& t = page.traces.emplace_back();
      t.trace_id = ReadId<16>(**stmt, 0);
      t.start_unix_nanos = (*stmt)->Int(1);
      t.end_unix_nanos = (*stmt)->Int(2);
      t.span_count = (*stmt)->Int(3);
      t.call_count = (*stmt)->Int(4);
      t.has_error = (*stmt)->Int(5) != 0;
      t.cost_usd = (*stmt)->Double(6);
    }
    (*stmt)->Reset();
  }
  // The root of each listed trace: its earliest span in the range (smaller id on a tie).
  // It starts at or after the trace's start in the range, so the bucket of spans_by_trace
  // is read from there, in start order, up to the first span of the trace.
  Query root;
  root << "SELECT name, service FROM spans WHERE trace_bucket = ? AND trace_id = ?"
          " AND start_unix_nanos >= ? AND start_unix_nanos < ? ORDER BY start_unix_nanos, span_id"
          " LIMIT 1";
  for (storage::TraceSummary& t : page.traces) {
    if (t.span_count == 0) continue;
    root.args = {IdBucket(t.trace_id),
                 Blob{std::vector<uint8_t>(t.trace_id.begin(), t.trace_id.end())},
                 std::max(query.from_unix_nanos, t.start_unix_nanos), query.to_unix_nanos};
    auto stmt = (*lease)->Prepare(root);
    if (!stmt.ok()) return stmt.status();
    int rc = (*stmt)->Step();
    if (rc == SQLITE_ROW) {
      t.root_name = (*stmt)->Text(0);
      t.service = (*stmt)->Text(1);
    } else if (rc != SQLITE_DONE) {
      return impl_->StepError(**lease, rc, d, what);
    }
    (*stmt)->Reset();
  }
  if (more) {
    page.next_cursor = storage::EncodeTraceCursor(page.traces.back().start_unix_nanos,
                                                  page.traces.back().trace_id);
  }
  return page;
}

core::Result<storage::TraceDetail> SqliteStore::GetTrace(const core::TraceId& trace_id) {
  const std::string hex = core::ToHex(trace_id);
  if (!core::IsValid(trace_id)) return core::NotFound("no trace " + hex + " (the zero id)");
  const char* what = "get_trace";
  const Blob id{std::vector<uint8_t>(trace_id.begin(), trace_id.end())};
  Deadline d = impl_->DeadlineIn(kDefaultTimeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  storage::TraceDetail detail;

  Query spans;
  spans << "SELECT " << kSpanColumns
        << " FROM spans WHERE trace_bucket = ? AND trace_id = ? ORDER BY start_unix_nanos, span_id";
  spans.Add(IdBucket(trace_id));
  spans.Add(id);
  auto stmt = (*lease)->Prepare(spans);
  if (!stmt.ok()) return stmt.status();
  while (true) {
    int rc = (*stmt)->Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
    auto span = ReadSpan(**stmt);
    if (!span.ok()) return span.status();
    detail.spans.push_back(std::move(*span));
  }
  (*stmt)->Reset();

  Query calls;
  calls << "SELECT " << kCallColumns
        << " FROM (SELECT start_unix_nanos AS k_start, request_id AS k_id FROM calls"
           " WHERE trace_bucket = ? AND trace_id = ?) k"
           " JOIN calls c ON c.start_unix_nanos = k.k_start AND c.request_id = k.k_id"
           " ORDER BY c.start_unix_nanos, c.request_id";
  calls.Add(IdBucket(trace_id));
  calls.Add(id);
  stmt = (*lease)->Prepare(calls);
  if (!stmt.ok()) return stmt.status();
  while (true) {
    int rc = (*stmt)->Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
    auto call = ReadCall(**stmt);
    if (!call.ok()) return call.status();
    detail.calls.push_back(std::move(*call));
  }
  (*stmt)->Reset();
  if (detail.spans.empty() && detail.calls.empty()) {
    return core::NotFound("no spans or calls stored for trace " + hex);
  }
  return detail;
}

core::Result<storage::RetentionReport> SqliteStore::ApplyRetention(
    int64_t now_unix_nanos, const storage::RetentionOptions& options) {
  storage::RetentionReport report;
  struct Cut {
    int days;
    const char* table;
    int64_t* removed;
  };
  for (const Cut& cut : {Cut{options.calls_days, "calls", &report.calls_removed},
                         Cut{options.content_days, "call_content", &report.content_removed},
                         Cut{options.spans_days, "spans", &report.spans_removed}}) {
    if (cut.days <= 0) continue;  // 0 keeps the table forever
    auto removed =
        impl_->DeleteBefore(cut.table, storage::RetentionCutoffNanos(now_unix_nanos, cut.days));
    if (!removed.ok()) return removed.status();
    *cut.removed = *removed;
  }
  if (report.calls_removed + report.content_removed + report.spans_removed == 0) return report;

  // Give the freed pages back to the file system, a step at a time. (A file created without
  // auto_vacuum=INCREMENTAL keeps its free pages for reuse: the loop then stops at once.)
  for (int64_t before = INT64_MAX;;) {
    std::lock_guard lock(impl_->write_mu);
    auto free_pages = impl_->writer.QueryInt("PRAGMA freelist_count", "apply_retention: vacuum");
    if (!free_pages.ok()) return free_pages.status();
    if (*free_pages == 0 || *free_pages >= before) break;
    before = *free_pages;
    if (auto s = impl_->writer.Exec(
            "PRAGMA incremental_vacuum(" + std::to_string(kVacuumPagesPerStep) + ")",
            "apply_retention: vacuum");
        !s.ok()) {
      return s;
    }
  }
  // Copy the WAL back into the (now shorter) file so that the space shows on disk. PASSIVE
  // never waits for readers; what it cannot copy now the next automatic checkpoint does.
  std::lock_guard lock(impl_->write_mu);
  std::lock_guard checkpoint(impl_->checkpoint_mu);
  int rc = sqlite3_wal_checkpoint_v2(impl_->writer.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                     nullptr, nullptr);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    return SqliteError(impl_->writer.get(), rc, "apply_retention: checkpoint");
  }
  return report;
}

core::Result<storage::StoreStats> SqliteStore::Stats() {
  const char* what = "stats";
  Deadline d = impl_->DeadlineIn(kDefaultTimeout);
  auto lease = impl_->pool.Acquire(*impl_->clock, d, what);
  if (!lease.ok()) return lease.status();
  Query q;
  q << "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM call_content),"
       " (SELECT count(*) FROM spans), (SELECT page_count FROM pragma_page_count()),"
       " (SELECT page_size FROM pragma_page_size())";
  auto stmt = (*lease)->Prepare(q);
  if (!stmt.ok()) return stmt.status();
  int rc = (*stmt)->Step();
  if (rc != SQLITE_ROW) return impl_->StepError(**lease, rc, d, what);
  storage::StoreStats stats;
  stats.calls = (*stmt)->Int(0);
  stats.content = (*stmt)->Int(1);
  stats.spans = (*stmt)->Int(2);
  stats.bytes_on_disk = (*stmt)->Int(3) * (*stmt)->Int(4);
  (*stmt)->Reset();
  struct stat wal {};
  if (::stat((impl_->options.path + "-wal").c_str(), &wal) == 0) stats.bytes_on_disk += wal.st_size;
  return stats;
}

}  // namespace llmscope::storage_sqlite
