#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"
#include "storage/store.h"
#include "storage_clickhouse/schema.h"

namespace llmscope::storage_clickhouse {

class Connection;

struct ClickHouseOptions {
  // Base URL of the server's HTTP interface: http:// or https://, host, port and an
  // optional path prefix (a proxy's).
  std::string url = "http://127.0.0.1:8123";
  // The database that holds llmscope's tables; created when missing. Letters, digits and
  // underscores only (it is spliced into SQL as an identifier).
  std::string database = "llmscope";
  // Credentials, sent as the X-ClickHouse-User and X-ClickHouse-Key headers (never in the
  // URL, so they stay out of access logs). An empty password sends no key.
  std::string user = "default";
  std::string password;
  // The bound on every statement that is not a query with its own timeout: writes, Ping,
  // GetCall, GetTrace, retention, Stats and Open's schema set-up. Sent to ClickHouse as
  // max_execution_time (whole seconds, rounded up) and enforced on the HTTP exchange.
  // REQUIRES: > 0.
  core::Nanos timeout = std::chrono::seconds(10);
  // Time source for row versions (the later write of a key wins). Borrowed; must outlive
  // the store. Null means the system clock.
  const core::Clock* clock = nullptr;
};

// Thread-safety: every method may be called from any number of threads at once (as
// storage::Store requires); statements run on their own connections, and the shared mutable
// state is atomics (the version counter, the calls' write generation) and the day cache
// under its mutex. A list page's row read runs half its statements on a thread of its own.
// Methods block on network I/O: never call them on an event-loop thread.
//
// The event store on ClickHouse, over its HTTP interface (docs/decisions/0006). Tables are
// partitioned by UTC day and deduplicated by ReplacingMergeTree with an explicit version;
// reads use FINAL (or pick the highest version of a key themselves), so a row written twice
// is never counted twice even before ClickHouse merges. A rewrite that moves a call to
// another start leaves a tombstone at the old place, found through the call_ids index in
// the same WriteCalls. README.md describes the schema and the rules.
class ClickHouseStore final : public storage::Store {
 public:
  // Connects, creates the database and the tables when missing and applies pending schema
  // migrations (recorded in schema_migrations). Errors: INVALID_ARGUMENT (bad options),
  // UNAVAILABLE (server unreachable), FAILED_PRECONDITION (the database holds a schema
  // version newer than this build's, or the user may not connect), or ClickHouse's message.
  static core::Result<std::unique_ptr<ClickHouseStore>> Open(ClickHouseOptions options);
  ~ClickHouseStore() override;
  ClickHouseStore(const ClickHouseStore&) = delete;
  ClickHouseStore& operator=(const ClickHouseStore&) = delete;

  std::string_view name() const override { return "clickhouse"; }
  core::Status Ping() override;
  core::Status WriteCalls(std::span<const core::LlmCall> calls) override;
  core::Status WriteSpans(std::span<const core::Span> spans) override;
  core::Result<storage::CallPage> ListCalls(const storage::CallQuery& query) override;
  core::Result<core::LlmCall> GetCall(std::string_view request_id) override;
  core::Result<storage::AggregateResult> Aggregate(const storage::AggregateQuery& query) override;
  core::Result<storage::TopResult> Top(const storage::TopQuery& query) override;
  core::Result<storage::TracePage> ListTraces(const storage::TraceQuery& query) override;
  core::Result<storage::TraceDetail> GetTrace(const core::TraceId& trace_id) override;
  core::Result<storage::RetentionReport> ApplyRetention(
      int64_t now_unix_nanos, const storage::RetentionOptions& options) override;
  core::Result<storage::StoreStats> Stats() override;

  // The schema version stored in the database (after Open: kSchemaVersion).
  core::Result<int> SchemaVersion();

  // Advice on the server's settings found by Open, for the operator's log; empty when
  // there is none (see BlockSizeAdvice).
  const std::string& advice() const { return advice_; }

 private:
  ClickHouseStore(ClickHouseOptions options, std::unique_ptr<Connection> connection);
  core::Status Migrate();
  // A migration's copy: every day partition of c.from into c.to, one statement each.
  core::Status CopyTable(const Migration::Copy& c);
  // `db`.name
  std::string Table(std::string_view name) const;
  // The first of `n` consecutive row versions, each above every version handed out before.
  uint64_t NextVersions(size_t n);
  // Runs `sql` (FORMAT RowBinary) with the store's timeout or the given one.
  core::Result<std::string> Query(const std::string& sql, core::Nanos timeout);
  // The current rows of calls with these keys (highest version each, tombstones dropped).
  struct CallKey {
    int64_t start_unix_nanos = 0;
    std::string request_id;
  };
  // In `keys` order; a key with no row (removed by retention meanwhile) is left out.
  // `versions`, when given, receives each returned call's row version.
  core::Result<std::vector<core::LlmCall>> FetchCalls(const std::vector<CallKey>& keys,
                                                      core::Nanos timeout,
                                                      std::vector<uint64_t>* versions = nullptr);
  // One way of answering ListCalls. exact: the page's keys from a FINAL read. Otherwise from
  // a plain read (no merge, so parallel and with PREWHERE), which is the page only when its
  // rows are distinct keys at their newest versions: nullopt when they are not (rewrites or
  // replays still unmerged), and the exact way must answer.
  core::Result<std::optional<storage::CallPage>> ListCallsPass(const storage::CallQuery& q,
                                                               bool exact);
  // The active day partitions of `table`: first day -> its parts and rows.
  struct Partition {
    std::vector<std::string> parts;
    int64_t rows = 0;
  };
  core::Result<std::map<int64_t, Partition>> DayPartitions(std::string_view table);
  // The first and last day partitions of the calls (nullopt: none), for list pages. Cached
  // for up to kDaysTtl, since system.parts costs a few ms a page: this store's writes and
  // retention refresh it at once. Pages use the days to place their slices and to know
  // when a slice reaches past the stored calls, so the only thing a stale entry hides is
  // another writer's calls before the first day (after the last, for oldest-first pages),
  // for at most the TTL.
  core::Result<std::optional<std::pair<int64_t, int64_t>>> CallDays();
  // The newest rows of `table` that satisfy `live` ("" for every row) in the day partitions
  // before `before_day` (and among `only_days`, when given), without FINAL where a partition
  // has a single part.
  core::Result<int64_t> CountLatest(std::string_view table, std::string_view live,
                                    int64_t before_day,
                                    const std::set<int64_t>* only_days = nullptr);
  // The calls whose newest version has content, in the days before `before_day` that still
  // hold content.
  core::Result<int64_t> CountContent(int64_t before_day);
  core::Result<int64_t> CountRows(const std::string& sql);
  core::Status DropPartitions(const std::vector<std::string>& tables, int64_t cut_day,
                              bool monthly);

  const ClickHouseOptions options_;
  std::unique_ptr<Connection> conn_;
  const core::SystemClock system_clock_;
  const core::Clock& clock_;
  std::atomic<uint64_t> last_version_{0};
  std::string advice_;  // written by Open only
  // Bumped after every write or retention pass that may change the calls' day partitions.
  std::atomic<uint64_t> calls_generation_{0};
  static constexpr int64_t kDaysTtl = 1'000'000'000;  // ns
  struct DaysCache {
    std::optional<std::pair<int64_t, int64_t>> days;
    uint64_t generation = 0;
    int64_t at_unix_nanos = 0;
  };
  std::mutex days_mu_;
  std::optional<DaysCache> days_cache_;  // GUARDED_BY(days_mu_)
};

}  // namespace llmscope::storage_clickhouse
