#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "storage/store.h"

// Query-string parsing for the /api/v1/ endpoints: pure functions from parameters to the
// storage query types. Every error is INVALID_ARGUMENT with a message that starts with the
// parameter's name ("limit: must be between 1 and 1000, got 0").
namespace llmscope::api {

// Decoded query-string parameters in the order given. A parameter given twice is an
// error (the API has no multi-valued parameters, so a repeat is a client mistake).
// Thread-safety: a value type.
class Params {
 public:
  // Parses "a=1&b=x%20y" (percent-decoding, '+' as space). Errors: a malformed escape, a
  // repeated name (except the names in `repeatable`, such as Prometheus' "match[]"), an
  // empty name.
  static core::Result<Params> Parse(std::string_view query,
                                    const std::vector<std::string_view>& repeatable = {});

  // The first value of `name`.
  std::optional<std::string_view> Get(std::string_view name) const;
  // Every value of `name`, in the order given.
  std::vector<std::string_view> GetAll(std::string_view name) const;
  const std::vector<std::pair<std::string, std::string>>& all() const { return all_; }
  // INVALID_ARGUMENT naming the first parameter not in `known` (a typo in a filter would
  // otherwise silently match everything).
  core::Status CheckKnown(const std::vector<std::string_view>& known) const;

 private:
  std::vector<std::pair<std::string, std::string>> all_;
};

// Percent-decodes `s` ('+' becomes a space); nullopt on a malformed escape.
std::optional<std::string> PercentDecode(std::string_view s);

// A time: RFC 3339 ("2026-11-23T10:00:00Z", fractions and offsets allowed) or Unix seconds
// with an optional fraction ("1700000000.5"), as Prometheus' API takes them. Nanoseconds.
core::Result<int64_t> ParseTime(std::string_view value, std::string_view name);
// A duration: Prometheus style ("250ms", "5m", "1h30m", "2d") or plain seconds ("1.5").
// Nanoseconds; never negative.
core::Result<int64_t> ParseDuration(std::string_view value, std::string_view name);

// The parameters each endpoint accepts (for CheckKnown and the docs).
const std::vector<std::string_view>& CallListParams();
const std::vector<std::string_view>& AggregateParams();
const std::vector<std::string_view>& TopParams();
const std::vector<std::string_view>& TraceListParams();
const std::vector<std::string_view>& ExportParams();

// Limits applied to every query: the timeout a query gets when it names none, and the most
// it may ask for.
struct QueryLimits {
  core::Nanos default_timeout = std::chrono::seconds(10);
  core::Nanos max_timeout = std::chrono::seconds(60);
};

// Filters shared by calls, aggregates, top and export: from, to, model, provider, user,
// session, tag ("key:value"), status, error, endpoint, usage_source, trace_id, min_latency
// (duration), min_cost (USD), q (request id substring). `default_range`, when set, is the
// window ending at `now_unix_nanos` used when neither from nor to is given.
core::Result<storage::CallFilter> ParseFilter(const Params& p, int64_t now_unix_nanos,
                                              std::optional<core::Nanos> default_range);

// GET /api/v1/calls: filters plus sort (start_time|duration|cost|total_tokens), order
// (desc|asc), limit (default 50), cursor, timeout. All time by default.
core::Result<storage::CallQuery> ParseCallQuery(const Params& p, int64_t now_unix_nanos,
                                                const QueryLimits& limits);
// GET /api/v1/aggregates: filters plus bucket (none|minute|hour|day), group_by
// (none|model|provider|user|endpoint|tag:<key>), timeout. Last 24 hours by default.
core::Result<storage::AggregateQuery> ParseAggregateQuery(const Params& p, int64_t now_unix_nanos,
                                                          const QueryLimits& limits);
// GET /api/v1/top: filters plus by (cost|tokens), dimension (user|model|provider|endpoint|
// tag:<key>, default user), limit (default 10), timeout. Last 24 hours by default.
core::Result<storage::TopQuery> ParseTopQuery(const Params& p, int64_t now_unix_nanos,
                                              const QueryLimits& limits);
// GET /api/v1/traces: from, to, service, errors_only (true|false), limit, cursor, timeout.
core::Result<storage::TraceQuery> ParseTraceQuery(const Params& p, int64_t now_unix_nanos,
                                                  const QueryLimits& limits);

// GET /api/v1/export/calls: filters plus format (jsonl|csv), limit (most rows; default and
// maximum kMaxExportRows). Rows go oldest first.
enum class ExportFormat : uint8_t { kJsonLines, kCsv };
inline constexpr int64_t kMaxExportRows = 10'000'000;
struct ExportRequest {
  storage::CallFilter filter;
  ExportFormat format = ExportFormat::kJsonLines;
  int64_t max_rows = kMaxExportRows;
  core::Nanos page_timeout = std::chrono::seconds(10);
};
core::Result<ExportRequest> ParseExportRequest(const Params& p, int64_t now_unix_nanos,
                                               const QueryLimits& limits);

}  // namespace llmscope::api
