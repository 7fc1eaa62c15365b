#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"

// The event store seam: every call and span kept, and the queries the API answers.
// Backends: storage_sqlite (SqliteStore, the embedded default) and storage_clickhouse
// (ClickHouseStore). Both pass the same contract suite (store_contract.h), so every
// definition below (what a filter matches, how a percentile is picked, what retention
// removes) is exact and shared.
namespace llmscope::storage {

inline constexpr int64_t kNanosPerSecond = 1'000'000'000;
inline constexpr int64_t kNanosPerDay = 86'400 * kNanosPerSecond;

// ---------------------------------------------------------------------------------------
// Calls

// Which calls a query looks at. Every set field must match (AND); unset fields match all.
struct CallFilter {
  // start_unix_nanos in [from, to).
  int64_t from_unix_nanos = INT64_MIN;
  int64_t to_unix_nanos = INT64_MAX;
  std::optional<std::string> model;     // equals requested_model OR response_model
  std::optional<std::string> provider;  // equals provider (the configured upstream name)
  std::optional<std::string> user;
  std::optional<std::string> session;
  // The call carries this tag key with exactly this value (any of its values when the key
  // repeats; an empty value matches a tag present with "", never a missing tag).
  std::optional<std::pair<std::string, std::string>> tag;
  std::optional<int> http_status;
  std::optional<core::ErrorClass> error;
  std::optional<core::Endpoint> endpoint;
  std::optional<core::UsageSource> usage_source;
  std::optional<core::TraceId> trace_id;  // the zero id selects the calls without a trace
  // end_nanos >= this many nanoseconds (calls with no end never match).
  std::optional<int64_t> min_duration_nanos;
  // cost_usd >= this (unpriced calls never match).
  std::optional<double> min_cost_usd;
  // request_id contains this substring (case-sensitive; empty = no filter).
  std::string request_id_contains;
};

enum class CallSort : uint8_t {
  kStartTime,    // start_unix_nanos
  kDuration,     // end_nanos, a call with no end sorts as -1
  kCost,         // cost_usd, an unpriced call sorts as -1
  kTotalTokens,  // usage.input + usage.output
};
std::string_view CallSortName(CallSort s);  // "start_time", "duration", "cost", "total_tokens"
std::optional<CallSort> ParseCallSortName(std::string_view name);

// The most rows one page may hold; larger limits are refused (INVALID_ARGUMENT).
inline constexpr size_t kMaxPageSize = 1000;

// A list query. Rows are ordered by (sort key, request_id), both in the given direction;
// request_id breaks ties, so pages are stable under concurrent inserts (keyset paging).
// request_id compares as bytes (memcmp), as std::string does.
struct CallQuery {
  CallFilter filter;
  CallSort sort = CallSort::kStartTime;
  bool descending = true;
  size_t limit = 50;   // 1..kMaxPageSize
  std::string cursor;  // empty = first page; else a CallPage::next_cursor of the same sort
  // DEADLINE_EXCEEDED beyond it. Backends check it periodically, so a query that finishes
  // before the first check succeeds even with a tiny timeout; an expired query never returns
  // a partial answer.
  core::Nanos timeout = std::chrono::seconds(10);
};

// Calls in a page never carry content (request_body, response_text are empty). A page holds
// exactly `limit` rows unless it is the last one.
struct CallPage {
  std::vector<core::LlmCall> calls;
  std::string next_cursor;  // empty exactly when no row follows this page
};

// The position after a row in a keyset-paged list: the row's sort value and request_id.
// Encoded as an opaque, URL-safe string that names its sort and direction, so a cursor of
// another query is refused instead of silently skipping rows.
struct CallCursor {
  CallSort sort = CallSort::kStartTime;
  bool descending = true;
  std::variant<int64_t, double> value;  // double for kCost, int64_t otherwise
  std::string request_id;
};
std::string EncodeCallCursor(const CallCursor& c);
// Errors (INVALID_ARGUMENT, message starts with "cursor: "): malformed, or made for another
// sort or direction than `sort`/`descending`.
core::Result<CallCursor> DecodeCallCursor(std::string_view text, CallSort sort, bool descending);
// The cursor that points after `call` in a list ordered by `sort`/`descending`.
CallCursor CursorAfter(const core::LlmCall& call, CallSort sort, bool descending);
// The sort value of `call` under `sort`, as the cursor holds it.
std::variant<int64_t, double> SortValue(const core::LlmCall& call, CallSort sort);

// ---------------------------------------------------------------------------------------
// Aggregates

enum class TimeBucket : uint8_t { kNone, kMinute, kHour, kDay };
std::string_view TimeBucketName(TimeBucket b);  // "none", "minute", "hour", "day"
std::optional<TimeBucket> ParseTimeBucketName(std::string_view name);
// The bucket's width in nanoseconds; 0 for kNone. Buckets are aligned to the Unix epoch
// (UTC): a call belongs to floor(start_unix_nanos / width) * width.
int64_t BucketWidthNanos(TimeBucket b);

enum class GroupBy : uint8_t {
  kNone,
  kModel,     // requested_model
  kProvider,  // provider
  kUser,      // user ("" for calls without one)
  kTag,       // the value of tag `group_tag_key` ("" for calls without it; the first value
              // when the key repeats on a call)
  kEndpoint,  // EndpointName(endpoint)
};
std::string_view GroupByName(GroupBy g);  // "none", "model", "provider", "user", "tag", ...
std::optional<GroupBy> ParseGroupByName(std::string_view name);

// The most result rows (buckets x groups) an aggregate or top query may produce; beyond it
// the query fails with RESOURCE_EXHAUSTED naming the limit.
inline constexpr size_t kMaxAggregateRows = 10000;

struct AggregateQuery {
  CallFilter filter;
  TimeBucket bucket = TimeBucket::kNone;
  GroupBy group_by = GroupBy::kNone;
  std::string group_tag_key;  // REQUIRES: non-empty when group_by == kTag
  core::Nanos timeout = std::chrono::seconds(10);
};

// Percentiles are exact and nearest-rank from below: of the n values sorted ascending
// (v[0] <= ... <= v[n-1]), quantile q is v[min(n - 1, floor(q * n))]. (This is what
// ClickHouse's quantileExact returns, so both backends agree to the nanosecond.)
struct AggregateRow {
  int64_t bucket_start_unix_nanos = 0;  // 0 when bucket == kNone
  std::string group;                    // "" when group_by == kNone
  int64_t requests = 0;
  int64_t errors = 0;  // calls with error != kNone
  // Over calls with end_nanos >= 0; nullopt when there are none. Nanoseconds.
  std::optional<int64_t> latency_p50_nanos;
  std::optional<int64_t> latency_p95_nanos;
  std::optional<int64_t> latency_p99_nanos;
  // Over calls with first_content_nanos >= 0; nullopt when there are none. Nanoseconds.
  std::optional<int64_t> ttft_p50_nanos;
  std::optional<int64_t> ttft_p95_nanos;
  core::TokenUsage tokens;  // sums
  double cost_usd = 0;      // sum over priced calls
  int64_t unpriced = 0;     // calls flagged unpriced
  bool operator==(const AggregateRow&) const = default;
};

// The value of quantile `q` of `values` by the definition above; sorts `values` in place.
// REQUIRES: !values.empty(), 0 <= q <= 1.
int64_t ExactQuantile(std::vector<int64_t>& values, double q);

// Rows ordered by (bucket_start_unix_nanos, group) ascending; only non-empty buckets.
struct AggregateResult {
  std::vector<AggregateRow> rows;
};

enum class TopMetric : uint8_t {
  kCost,    // sum of cost_usd
  kTokens,  // sum of usage.input + usage.output
};
std::string_view TopMetricName(TopMetric m);  // "cost", "tokens"
std::optional<TopMetric> ParseTopMetricName(std::string_view name);

struct TopQuery {
  CallFilter filter;
  GroupBy dimension = GroupBy::kUser;  // REQUIRES: not kNone
  std::string group_tag_key;           // REQUIRES: non-empty when dimension == kTag
  TopMetric by = TopMetric::kCost;
  size_t limit = 10;  // 1..kMaxPageSize
  core::Nanos timeout = std::chrono::seconds(10);
};

struct TopRow {
  std::string group;
  int64_t requests = 0;
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;
  double cost_usd = 0;
  bool operator==(const TopRow&) const = default;
};

// Ordered by the metric descending, then group ascending; at most `limit` rows. Calls whose
// group value is "" (no user, no such tag) are left out.
struct TopResult {
  std::vector<TopRow> rows;
};

// ---------------------------------------------------------------------------------------
// Traces

// Traces that have a span or a call starting in [from, to). A call whose trace_id is all
// zero belongs to no trace. The filters look at the same spans and calls as the summary
// (those starting in the range): errors_only keeps exactly the summaries with has_error.
struct TraceQuery {
  int64_t from_unix_nanos = INT64_MIN;
  int64_t to_unix_nanos = INT64_MAX;
  std::optional<std::string> service;  // a span of the trace has this service
  bool errors_only = false;            // a span has status error or a call has an error
  size_t limit = 50;                   // 1..kMaxPageSize
  std::string cursor;                  // empty = first page; else a TracePage::next_cursor
  core::Nanos timeout = std::chrono::seconds(10);
};

// One trace, summarised over its spans and calls that start in the query's range.
struct TraceSummary {
  core::TraceId trace_id{};
  int64_t start_unix_nanos = 0;  // earliest span or call start
  // Latest span end or call end (start + end_nanos; a call with no end counts as ending at
  // its start).
  int64_t end_unix_nanos = 0;
  // Name of the earliest span (the smaller span id, as bytes, when two start together);
  // "" when it has only calls in the range.
  std::string root_name;
  std::string service;  // service of that span; "" when it has only calls
  int64_t span_count = 0;
  int64_t call_count = 0;
  bool has_error = false;
  double cost_usd = 0;  // sum over its priced calls
  bool operator==(const TraceSummary&) const = default;
};

// Ordered by start_unix_nanos descending, then trace id (hex) descending.
struct TracePage {
  std::vector<TraceSummary> traces;
  std::string next_cursor;  // empty when this is the last page
};

// Everything stored under one trace id, whatever its time: spans by start ascending (then
// span id), calls by start ascending (then request id). Calls carry no content.
struct TraceDetail {
  std::vector<core::Span> spans;
  std::vector<core::LlmCall> calls;
};

// ---------------------------------------------------------------------------------------
// Retention

// How long each table keeps its rows, in whole days; 0 keeps them forever. Each table is cut
// by its own setting and start time alone: content kept longer than its call (content_days
// 0 or above calls_days) stays stored but can no longer be reached, so configurations keep
// content_days <= calls_days.
struct RetentionOptions {
  int calls_days = 90;
  int content_days = 7;
  int spans_days = 30;
};

// The first instant that is kept when keeping `days` days at `now`: the UTC midnight at or
// before now - days. A row is due (removed) when its start is before the cutoff, so rows go
// in whole days, at most one day after they turn `days` old. REQUIRES: days > 0.
int64_t RetentionCutoffNanos(int64_t now_unix_nanos, int days);

// Rows removed by one ApplyRetention, per table.
struct RetentionReport {
  int64_t calls_removed = 0;
  int64_t content_removed = 0;
  int64_t spans_removed = 0;
};

// Row counts and the space the store takes, for the API and the size benchmark.
struct StoreStats {
  int64_t calls = 0;
  int64_t content = 0;
  int64_t spans = 0;
  int64_t bytes_on_disk = 0;  // the backend's own measure of its files (> 0 once rows exist)
};

// ---------------------------------------------------------------------------------------
// The seam

// Thread-safety: every method may be called from any number of threads at once (the
// pipeline's writer thread writes while query threads read). Methods block on I/O: never
// call them on an event-loop thread (the API offloads them to a query pool).
//
// Writes are idempotent per key: a call is keyed by (request_id, start_unix_nanos), and
// writing a call whose key is stored already replaces it (a replayed spill batch never
// counts twice); a span is keyed by (trace_id, span_id). The replacement is whole: a call
// rewritten without content is left without content. Within one batch, the later of two
// rows with one key wins. A rewritten span is expected to keep its start (OTLP spans are
// immutable; exporters resend them unchanged): SQLite finds the stored span by (start,
// trace_id, span_id) and keeps one rewritten with another start as a second span. A returned OK
// means the rows are durable in the backend and visible to every query that starts after.
//
// Why the start is part of a call's key: both backends keep calls in start order
// (SQLite's clustered key, ClickHouse's sorting key), so a replay is found where it lands,
// while finding a request id anywhere in time on every insert would cost a random index
// write per call (docs/decisions/0005). Request ids are unique per call in practice (the
// gateway draws 64 random bits); a request id written again with another start is a
// second call. Keyset paging treats such twins as one position in sorts other than start
// time, so a page boundary between two of them may skip one.
//
// Content (request_body, response_text) of a call goes to its own table with its own
// retention, and only when either is non-empty; it is written together with the call.
class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "clickhouse".
  virtual std::string_view name() const = 0;

  // Checks that the backend answers (UNAVAILABLE when not). Cheap; used to probe recovery.
  virtual core::Status Ping() = 0;

  virtual core::Status WriteCalls(std::span<const core::LlmCall> calls) = 0;
  virtual core::Status WriteSpans(std::span<const core::Span> spans) = 0;

  virtual core::Result<CallPage> ListCalls(const CallQuery& query) = 0;
  // The call with this request id, with its content when kept (the latest-starting one if
  // two calls share the id); NOT_FOUND when absent. May search the whole store: meant for
  // opening one call, not for bulk lookups.
  virtual core::Result<core::LlmCall> GetCall(std::string_view request_id) = 0;
  virtual core::Result<AggregateResult> Aggregate(const AggregateQuery& query) = 0;
  virtual core::Result<TopResult> Top(const TopQuery& query) = 0;
  virtual core::Result<TracePage> ListTraces(const TraceQuery& query) = 0;
  // NOT_FOUND when the store has neither spans nor calls for the trace (always for the zero
  // id, which names no trace).
  virtual core::Result<TraceDetail> GetTrace(const core::TraceId& trace_id) = 0;

  // Removes every row that is due at `now` (RetentionCutoffNanos per table): whole day
  // partitions or index ranges, never a row-by-row scan; space is reclaimed.
  virtual core::Result<RetentionReport> ApplyRetention(int64_t now_unix_nanos,
                                                       const RetentionOptions& options) = 0;

  virtual core::Result<StoreStats> Stats() = 0;
};

// Checks a query's parameters the same way for every backend: limit in range, from < to,
// a cursor of the right sort, a tag key for tag grouping, the bucket count times a lower
// bound of groups not over kMaxAggregateRows (for bounded ranges). INVALID_ARGUMENT naming
// the field, or RESOURCE_EXHAUSTED for a range too large for the bucket.
core::Status Validate(const CallQuery& q);
core::Status Validate(const AggregateQuery& q);
core::Status Validate(const TopQuery& q);
core::Status Validate(const TraceQuery& q);

// Cursor of a trace page: (start_unix_nanos, trace id) of the last trace.
std::string EncodeTraceCursor(int64_t start_unix_nanos, const core::TraceId& trace_id);
core::Result<std::pair<int64_t, core::TraceId>> DecodeTraceCursor(std::string_view text);

// JSON text of an attribute list: an object {"key": value, ...} in list order, with
// composite values inlined as their JSON text. Used by backends that store attributes as a
// JSON column; ParseAttributesJson is its inverse (INVALID_ARGUMENT on bad input).
std::string AttributesToJson(const core::Attributes& attributes);
core::Result<core::Attributes> ParseAttributesJson(std::string_view json);
// JSON text of span events: [{"time_unix_nanos":N,"name":"...","attributes":{...}}, ...]
// and links: [{"trace_id":"hex","span_id":"hex","attributes":{...}}, ...], with inverses.
std::string EventsToJson(const std::vector<core::SpanEvent>& events);
core::Result<std::vector<core::SpanEvent>> ParseEventsJson(std::string_view json);
std::string LinksToJson(const std::vector<core::SpanLink>& links);
core::Result<std::vector<core::SpanLink>> ParseLinksJson(std::string_view json);

}  // namespace llmscope::storage
