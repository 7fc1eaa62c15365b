#include "storage_clickhouse/clickhouse_store.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "storage/store_contract.h"
#include "storage_clickhouse/connection.h"
#include "storage_clickhouse/records.h"
#include "storage_clickhouse/row_binary.h"
#include "storage_clickhouse/schema.h"
#include "storage_clickhouse/test_server.h"
#include "testing/fake_clock.h"

namespace llmscope::storage_clickhouse {
namespace {

using namespace std::chrono_literals;
using storage::StoreContract;

constexpr int64_t kSecond = storage::kNanosPerSecond;
constexpr int64_t kDay = storage::kNanosPerDay;
// 2024-03-01T00:00:00Z.
constexpr int64_t kBase = int64_t{1'709'251'200} * kSecond;

// One ClickHouse for the whole test binary: a private server started here, or the one
// LLMSCOPE_CLICKHOUSE_URL names. Each test gets databases of its own (NewDatabase), so tests
// never see each other's rows; they are dropped at the end.
class ClickHouseEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const char* url = std::getenv("LLMSCOPE_CLICKHOUSE_URL"); url != nullptr && *url) {
      url_ = url;
    } else {
      auto server = TestClickHouse::Start();
      // A missing server is a failure, not a skip: the project's setup installs it.
      ASSERT_TRUE(server.ok()) << "cannot start a ClickHouse for the tests: "
                               << server.status().ToString();
      server_ = std::move(server).value();
      url_ = server_->url();
    }
    auto conn = Connection::Create(url_, "default", "");
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    conn_ = std::move(conn).value();
    ok_ = true;
  }

  void TearDown() override {
    if (conn_) {
      std::lock_guard lock(mu_);
      for (const auto& db : databases_) {
        (void)conn_->Query("DROP DATABASE IF EXISTS `" + db + "`", 60s);
      }
    }
    conn_.reset();
    server_.reset();  // stops the server by its pid and removes its directory
  }

  bool ok() const { return ok_; }
  const std::string& url() const { return url_; }
  TestClickHouse* server() { return server_.get(); }  // null with an external server
  Connection& conn() { return *conn_; }

  // A database name no other test (or test process) uses.
  std::string NewDatabase() {
    std::lock_guard lock(mu_);
    std::string name =
        "llmscope_test_" + std::to_string(::getpid()) + "_" + std::to_string(databases_.size());
    databases_.push_back(name);
    return name;
  }

 private:
  std::string url_;
  std::unique_ptr<TestClickHouse> server_;
  std::unique_ptr<Connection> conn_;
  bool ok_ = false;
  std::mutex mu_;
  std::vector<std::string> databases_;  // GUARDED_BY(mu_)
};

ClickHouseEnvironment* const env = static_cast<ClickHouseEnvironment*>(
    ::testing::AddGlobalTestEnvironment(new ClickHouseEnvironment));

ClickHouseOptions OptionsFor(std::string database) {
  ClickHouseOptions o;
  o.url = env->url();
  o.database = std::move(database);
  o.timeout = 30s;  // generous: the test machine may be busy
  return o;
}

std::unique_ptr<storage::Store> MakeFreshStore() {
  if (!env->ok()) return nullptr;
  auto store = ClickHouseStore::Open(OptionsFor(env->NewDatabase()));
  if (!store.ok()) {
    ADD_FAILURE() << "open: " << store.status().ToString();
    return nullptr;
  }
  return std::move(store).value();
}

INSTANTIATE_TEST_SUITE_P(ClickHouse, StoreContract,
                         ::testing::Values(storage::StoreFactory{"server", MakeFreshStore}),
                         storage::StoreFactoryName);

// Runs `sql` (FORMAT RowBinary, one Int64 column, one row) on the test server.
int64_t QueryInt(const std::string& sql) {
  auto body = env->conn().Query(sql + " FORMAT RowBinary", 30s);
  EXPECT_TRUE(body.ok()) << sql << ": " << body.status().ToString();
  if (!body.ok()) return -1;
  RowBinaryReader r(*body);
  int64_t v = r.Int64();
  EXPECT_FALSE(r.failed()) << sql;
  return v;
}

// Runs `sql` (FORMAT RowBinary, one String column, one row) on the test server.
std::string QueryString(const std::string& sql) {
  auto body = env->conn().Query(sql + " FORMAT RowBinary", 30s);
  EXPECT_TRUE(body.ok()) << sql << ": " << body.status().ToString();
  if (!body.ok()) return "";
  RowBinaryReader r(*body);
  std::string v = r.String();
  EXPECT_FALSE(r.failed()) << sql;
  return v;
}

core::LlmCall Call(std::string id, int64_t start) {
  core::LlmCall c;
  c.request_id = std::move(id);
  c.start_unix_nanos = start;
  c.requested_model = "m";
  c.end_nanos = 100;
  return c;
}

// A loopback port with nothing listening.
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class ClickHouseStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(env->ok()) << "no ClickHouse (see the environment's failure above)";
    database_ = env->NewDatabase();
    auto store = ClickHouseStore::Open(OptionsFor(database_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::string T(const std::string& table) const { return "`" + database_ + "`." + table; }

  std::string database_;
  std::unique_ptr<ClickHouseStore> store_;
};

TEST_F(ClickHouseStoreTest, OpenCreatesTheSchemaAndReopeningIsANoOp) {
  auto v = store_->SchemaVersion();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, kSchemaVersion);
  // The tests' own server has the block size the calls are laid out for: no advice.
  if (env->server() != nullptr) {
    EXPECT_EQ(store_->advice(), "");
  }
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{Call("kept", kBase)}).ok());

  auto again = ClickHouseStore::Open(OptionsFor(database_));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM " + T("schema_migrations")), kSchemaVersion);
  auto got = (*again)->GetCall("kept");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->start_unix_nanos, kBase);
}

TEST_F(ClickHouseStoreTest, RefusesADatabaseWithANewerSchemaAndLeavesItAlone) {
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{Call("old", kBase)}).ok());
  ASSERT_TRUE(env->conn()
                  .Query("INSERT INTO " + T("schema_migrations") +
                             " (version, applied_unix_nanos, description) VALUES (99, 0, 'future')",
                         30s)
                  .ok());
  auto refused = ClickHouseStore::Open(OptionsFor(database_));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("99"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find(database_), std::string::npos);
  // Nothing was dropped or altered.
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM " + T(std::string(kCallsTable))), 1);
}

// A database as a version-1 build left it: the v1 schema, `calls` written through calls_in.
void MakeVersion1Database(const std::string& db, const std::vector<core::LlmCall>& calls) {
  Connection& conn = env->conn();
  ASSERT_TRUE(conn.Query("CREATE DATABASE `" + db + "`", 30s).ok());
  ASSERT_TRUE(conn.Query(SchemaMigrationsDdl(db), 30s).ok());
  const std::vector<Migration> migrations = Migrations(db);
  ASSERT_EQ(migrations.front().version, 1);
  for (const std::string& statement : migrations.front().statements) {
    auto r = conn.Query(statement, 30s);
    ASSERT_TRUE(r.ok()) << statement << ": " << r.status().ToString();
  }
  ASSERT_TRUE(conn.Query("INSERT INTO `" + db +
                             "`.schema_migrations (version, applied_unix_nanos, description)"
                             " VALUES (1, 0, 'v1')",
                         30s)
                  .ok());
  std::string data;
  RowBinaryWriter w(data);
  uint64_t ver = 1000;
  for (const core::LlmCall& c : calls) AppendCallRow(w, ver++, c);
  ASSERT_TRUE(
      conn.Insert("INSERT INTO `" + db + "`.calls_in (" + CallsInColumns() + ") FORMAT RowBinary",
                  std::move(data), 30s)
          .ok());
}

// Three calls over two days, one with content and tags, as a version-1 build wrote them.
std::vector<core::LlmCall> Version1Calls() {
  core::LlmCall a = Call("old-a", kBase);
  a.user = "u1";
  a.tags = {{"team", "x"}};
  a.request_body = "question";
  a.response_text = "answer";
  core::LlmCall b = Call("old-b", kBase + kSecond);
  b.user = "u2";
  b.cost_usd = 0.25;
  core::LlmCall c = Call("old-c", kBase + kDay + kSecond);
  c.user = "u1";
  return {a, b, c};
}

// Open migrates a version-1 database: the calls move to calls_v2 with every field and
// their content, `calls` goes, and reads, rewrites and new writes work on the result.
TEST(ClickHouseMigrationTest, Version1DatabaseIsMigratedWithItsCallsKept) {
  ASSERT_TRUE(env->ok());
  const std::string db = env->NewDatabase();
  const std::vector<core::LlmCall> old = Version1Calls();
  ASSERT_NO_FATAL_FAILURE(MakeVersion1Database(db, old));
  ASSERT_EQ(QueryInt("SELECT toInt64(count()) FROM `" + db + "`.calls"), 3);

  auto opened = ClickHouseStore::Open(OptionsFor(db));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ClickHouseStore& store = **opened;
  EXPECT_EQ(*store.SchemaVersion(), kSchemaVersion);
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM system.tables WHERE database = '" + db +
                     "' AND name IN ('calls', 'calls_mv')"),
            0);
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM `" + db + "`.calls_v2"), 3);
  // The new table's granules are the small ones.
  EXPECT_NE(QueryString("SELECT engine_full FROM system.tables WHERE database = '" + db +
                        "' AND name = 'calls_v2'")
                .find("index_granularity = 512"),
            std::string::npos);

  storage::CallQuery q;
  q.limit = 10;
  auto page = store.ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 3u);
  EXPECT_EQ(page->calls[0].request_id, "old-c");
  EXPECT_EQ(page->calls[1].cost_usd, 0.25);
  EXPECT_EQ(page->calls[2].tags, old[0].tags);
  q.filter.user = "u1";
  page = store.ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 2u);
  auto got = store.GetCall("old-a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->request_body, "question");
  EXPECT_EQ(got->response_text, "answer");

  // A rewrite of an old call replaces it; a new call joins.
  core::LlmCall a2 = old[0];
  a2.requested_model = "rewritten";  // content kept: the rewrite carries it
  ASSERT_TRUE(
      store.WriteCalls(std::vector<core::LlmCall>{a2, Call("new", kBase + 2 * kSecond)}).ok());
  got = store.GetCall("old-a");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->requested_model, "rewritten");
  EXPECT_EQ(got->response_text, "answer");
  auto stats = store.Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 4);
  EXPECT_EQ(stats->content, 1);  // old-a's, kept by its rewrite that carried it

  // Opening again applies nothing more.
  auto again = ClickHouseStore::Open(OptionsFor(db));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM `" + db + "`.schema_migrations"),
            kSchemaVersion);
}

// A migration cut short (its view switched and one day copied, nothing recorded) is run
// again by the next Open and leaves each call once.
TEST(ClickHouseMigrationTest, AMigrationCutShortIsCompletedByTheNextOpen) {
  ASSERT_TRUE(env->ok());
  const std::string db = env->NewDatabase();
  ASSERT_NO_FATAL_FAILURE(MakeVersion1Database(db, Version1Calls()));
  const std::vector<Migration> migrations = Migrations(db);
  const Migration& v2 = migrations.at(1);
  ASSERT_EQ(v2.version, 2);
  for (const std::string& statement : v2.statements) {
    ASSERT_TRUE(env->conn().Query(statement, 30s).ok()) << statement;
  }
  ASSERT_EQ(v2.copies.size(), 1u);
  const auto& copy = v2.copies.front();
  ASSERT_TRUE(env->conn().Query(copy.InsertFor(db, "toDate('2024-03-01')"), 30s).ok());
  ASSERT_EQ(QueryInt("SELECT toInt64(count()) FROM `" + db + "`.calls_v2"), 2);

  auto opened = ClickHouseStore::Open(OptionsFor(db));
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  // The day copied before is copied again; its duplicates are one row each to every read.
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM `" + db + "`.calls_v2 FINAL"), 3);
  auto stats = (*opened)->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 3);
  EXPECT_EQ(stats->content, 1);
  storage::CallQuery q;
  q.limit = 10;
  auto page = (*opened)->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  std::vector<std::string> ids;
  for (const auto& c : page->calls) ids.push_back(c.request_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"old-c", "old-b", "old-a"}));
}

std::vector<std::string> NewestIds(ClickHouseStore& store) {
  storage::CallQuery q;
  q.limit = 10;
  auto page = store.ListCalls(q);
  EXPECT_TRUE(page.ok()) << page.status().ToString();
  std::vector<std::string> ids;
  if (page.ok()) {
    for (const auto& c : page->calls) ids.push_back(c.request_id);
  }
  return ids;
}

// List pages cache the calls' first and last day (where their slices may stop): a store's
// own writes refresh them at once; another writer's calls before the first day show once
// the cache's second is over.
TEST(ClickHouseDaysCacheTest, OwnWritesShowAtOnceOtherWritersWithinASecond) {
  ASSERT_TRUE(env->ok());
  const std::string db = env->NewDatabase();
  testing::FakeClock clock(kBase + 40 * kDay);
  ClickHouseOptions with_clock = OptionsFor(db);
  with_clock.clock = &clock;
  auto a = ClickHouseStore::Open(with_clock);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = ClickHouseStore::Open(OptionsFor(db));
  ASSERT_TRUE(b.ok()) << b.status().ToString();

  // A page of few calls stops when its slice reaches back past the first stored day:
  // "late" at the very start of day 1 alone is the whole page.
  EXPECT_EQ(NewestIds(**a), std::vector<std::string>{});
  ASSERT_TRUE((*a)->WriteCalls(std::vector<core::LlmCall>{Call("late", kBase + kDay)}).ok());
  EXPECT_EQ(NewestIds(**a), std::vector<std::string>{"late"});
  // A call in the last nanosecond of day 0 from this store: seen at once.
  ASSERT_TRUE((*a)->WriteCalls(std::vector<core::LlmCall>{Call("own", kBase + kDay - 1)}).ok());
  EXPECT_EQ(NewestIds(**a), (std::vector<std::string>{"late", "own"}));
  // Another writer's call on a day before the first (far enough back that a slice reaching
  // the cached first day does not take it in): seen once the second is over.
  ASSERT_TRUE((*b)->WriteCalls(std::vector<core::LlmCall>{Call("other", kBase - 8 * kDay)}).ok());
  EXPECT_EQ(NewestIds(**a), (std::vector<std::string>{"late", "own"}));
  clock.Advance(1s);
  EXPECT_EQ(NewestIds(**a), (std::vector<std::string>{"late", "own", "other"}));
}

// Content rows only for calls that have content: a call without any costs no row there,
// and one rewritten without content shows none although its old row is still stored.
TEST_F(ClickHouseStoreTest, ContentRowsOnlyForCallsWithContent) {
  core::LlmCall with = Call("with", kBase);
  with.request_body = "question";
  std::vector<core::LlmCall> calls{with};
  for (int i = 0; i < 20; ++i) calls.push_back(Call("plain-" + std::to_string(i), kBase + i + 1));
  ASSERT_TRUE(store_->WriteCalls(calls).ok());
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM " + T("call_content")), 1);

  with.request_body.clear();
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{with}).ok());
  EXPECT_EQ(QueryInt("SELECT toInt64(count()) FROM " + T("call_content")), 1);
  auto got = store_->GetCall("with");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->request_body, "");
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 21);
  EXPECT_EQ(stats->content, 0);
}

// A call with content at `offset` ns into each of the first `days` days from kBase, named
// prefix + its day.
std::vector<core::LlmCall> OneContentCallADay(const std::string& prefix, int days, int64_t offset) {
  std::vector<core::LlmCall> calls;
  for (int d = 0; d < days; ++d) {
    core::LlmCall c = Call(prefix + std::to_string(d), kBase + d * kDay + offset);
    c.response_text = "text";
    calls.push_back(c);
  }
  return calls;
}

// Content counts stay exact when a call with content arrives for a day long past the content
// cutoff (a replay after an outage): the days between it and the kept ones, whose calls had
// content that retention removed, do not count.
TEST_F(ClickHouseStoreTest, AContentCallArrivingAfterItsDayWasCutCountsAlone) {
  ASSERT_TRUE(store_->WriteCalls(OneContentCallADay("c", 6, 5)).ok());
  storage::RetentionOptions keep_content_2_days{0, 2, 0};
  auto cut = store_->ApplyRetention(kBase + 5 * kDay + 3600 * kSecond, keep_content_2_days);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  EXPECT_EQ(cut->content_removed, 3);  // days 0 to 2 (the cutoff: the start of day 3)
  core::LlmCall late = Call("late", kBase - kDay + 7);
  late.response_text = "replayed";
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{late}).ok());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->content, 4);  // days 3 to 5, and the late call
  auto again = store_->ApplyRetention(kBase + 5 * kDay + 3600 * kSecond, keep_content_2_days);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->content_removed, 1);
}

TEST(ClickHouseSchemaTest, BlockSizeAdviceOnlyWhereTheTableCannotSayIt) {
  ServerFeatures old_server;
  EXPECT_NE(BlockSizeAdvice(old_server, 65536).find("min_compress_block_size to 4096"),
            std::string::npos);
  EXPECT_EQ(BlockSizeAdvice(old_server, kCallsBlockBytes), "");
  ServerFeatures current;
  current.table_compress_block_size = true;
  EXPECT_EQ(BlockSizeAdvice(current, 65536), "");
  // The table setting is used exactly where the server has it.
  EXPECT_EQ(Migrations("d", old_server).at(1).statements.front().find("min_compress_block_size"),
            std::string::npos);
  EXPECT_NE(
      Migrations("d", current).at(1).statements.front().find("min_compress_block_size = 4096"),
      std::string::npos);
}

TEST(ClickHouseOptionsTest, BadOptionsAreRefusedBeforeConnecting) {
  ClickHouseOptions o;
  o.database = "no-dashes";
  EXPECT_EQ(ClickHouseStore::Open(o).status().code(), core::StatusCode::kInvalidArgument);
  o.database = "ok";
  o.url = "ftp://127.0.0.1";
  EXPECT_EQ(ClickHouseStore::Open(o).status().code(), core::StatusCode::kInvalidArgument);
  o.url = "http://127.0.0.1:1";
  o.timeout = 0s;
  EXPECT_EQ(ClickHouseStore::Open(o).status().code(), core::StatusCode::kInvalidArgument);
}

TEST(ClickHouseUnreachableTest, AServerThatIsNotThereIsUnavailableQuickly) {
  ClickHouseOptions o;
  o.url = "http://127.0.0.1:" + std::to_string(ClosedPort());
  auto start = std::chrono::steady_clock::now();
  auto store = ClickHouseStore::Open(o);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), core::StatusCode::kUnavailable) << store.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ClickHouseStoreTest, ArbitraryBytesRoundTripAndNeverReachTheSqlAsCode) {
  core::LlmCall c = Call(std::string("id-\0-\xff-'-\\-\"", 12), kBase + 1);
  c.user = "x' OR '1'='1";
  c.session = std::string("\n\t\r\x01", 4);
  c.error_message = "line\nbreak\\ 'quoted'";
  c.tags = {{"k'ey", "v\\al"}, {std::string("\0", 1), "\xc3\x28"}};
  c.finish_reasons = {"\xff\xfe", ""};
  c.request_body = std::string("{\"bad utf-8\": \"\xc3\x28\xa0\xa1\"}\0tail", 29);
  c.response_text = "\xed\xa0\x80";  // a UTF-16 surrogate: invalid UTF-8, kept as bytes
  core::LlmCall other = Call("other", kBase + 2);
  other.user = "someone";
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{c, other}).ok());

  auto got = store_->GetCall(c.request_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c);

  storage::CallQuery q;
  q.filter.user = c.user;
  auto page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 1u);
  EXPECT_EQ(page->calls[0].request_id, c.request_id);
  q.filter.user.reset();
  q.filter.tag = c.tags[1];
  page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 1u);
  q.filter.tag.reset();
  q.filter.request_id_contains = std::string("\0-\xff-'", 5);
  page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 1u);
  q.filter.request_id_contains = "' OR 1=1 --";
  page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->calls.empty());
}

TEST_F(ClickHouseStoreTest, RowsWrittenSeveralTimesBeforeAMergeCountOnce) {
  std::vector<core::LlmCall> calls;
  for (int i = 0; i < 50; ++i) calls.push_back(Call("r-" + std::to_string(i), kBase + i));
  for (int round = 0; round < 3; ++round) ASSERT_TRUE(store_->WriteCalls(calls).ok());
  // Three inserts, three parts: nothing merged yet, so the dedup is the reads' doing.
  EXPECT_GE(QueryInt("SELECT toInt64(count()) FROM " + T(std::string(kCallsTable))), 100);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 50);
  auto agg = store_->Aggregate(storage::AggregateQuery{});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  ASSERT_EQ(agg->rows.size(), 1u);
  EXPECT_EQ(agg->rows[0].requests, 50);
  storage::CallQuery q;
  q.limit = 1000;
  auto page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->calls.size(), 50u);
}

// A page's keys come from a plain read (no FINAL) unless its rows are not all current. Unmerged
// rewrites that move calls in the sort order, into and out of a filter, and replays must
// still page exactly as the newest versions alone would.
TEST_F(ClickHouseStoreTest, PagesBeforeMergesListOnlyTheNewestVersionOfEachCall) {
  std::vector<core::LlmCall> calls;
  for (int i = 0; i < 40; ++i) {
    core::LlmCall c = Call("p-" + std::to_string(i), kBase + (i % 20) * kDay / 10 + i);
    c.user = i % 2 == 0 ? "even" : "odd";
    c.cost_usd = 0.01 * i;
    calls.push_back(c);
  }
  ASSERT_TRUE(store_->WriteCalls(calls).ok());
  // Separate inserts, separate parts: every key below has two rows until a merge.
  std::vector<core::LlmCall> rewrites;
  for (int i = 0; i < 40; i += 3) {
    core::LlmCall c = calls[i];
    c.user = c.user == "even" ? "odd" : "even";  // leaves one filter, joins the other
    c.cost_usd = 1.0 - 0.01 * i;                 // moves across the cost order
    rewrites.push_back(c);
    calls[i] = c;
  }
  ASSERT_TRUE(store_->WriteCalls(rewrites).ok());
  const std::vector<core::LlmCall> replays = {calls[1], calls[2]};  // same content again
  ASSERT_TRUE(store_->WriteCalls(replays).ok());
  ASSERT_GT(QueryInt("SELECT toInt64(count()) FROM " + T(std::string(kCallsTable))), 40);

  for (storage::CallSort sort : {storage::CallSort::kStartTime, storage::CallSort::kCost}) {
    for (std::optional<std::string> user :
         {std::optional<std::string>(), std::optional<std::string>("even")}) {
      for (size_t limit : {size_t{1}, size_t{6}, size_t{100}}) {
        SCOPED_TRACE((sort == storage::CallSort::kCost ? "cost" : "start") +
                     std::string(user ? " even" : "") + " limit " + std::to_string(limit));
        std::vector<const core::LlmCall*> want;
        for (const auto& c : calls) {
          if (!user || c.user == *user) want.push_back(&c);
        }
        std::sort(want.begin(), want.end(), [&](const core::LlmCall* a, const core::LlmCall* b) {
          if (sort == storage::CallSort::kCost) {
            return std::tie(*b->cost_usd, b->request_id) < std::tie(*a->cost_usd, a->request_id);
          }
          return std::tie(b->start_unix_nanos, b->request_id) <
                 std::tie(a->start_unix_nanos, a->request_id);
        });
        std::vector<std::string> expected;
        for (const auto* c : want) expected.push_back(c->request_id + "/" + c->user);
        storage::CallQuery q;
        q.sort = sort;
        q.limit = limit;
        q.filter.user = user;
        std::vector<std::string> got;
        for (int pages = 0; pages < 100; ++pages) {
          auto page = store_->ListCalls(q);
          ASSERT_TRUE(page.ok()) << page.status().ToString();
          for (const auto& c : page->calls) got.push_back(c.request_id + "/" + c.user);
          if (page->next_cursor.empty()) break;
          ASSERT_EQ(page->calls.size(), limit);
          q.cursor = page->next_cursor;
        }
        EXPECT_EQ(got, expected);
      }
    }
  }
}

// Start-time pages read slices of the range (1, 8, 64 days from the page's edge) before the
// whole range; whatever the slices hold, the pages must list exactly the definition's order.
TEST_F(ClickHouseStoreTest, StartTimePagesOverAWideRangeListEveryCallInOrder) {
  std::vector<core::LlmCall> calls;
  // Sparse and uneven: dense days, single calls months apart, twins on one start, a call
  // before 1970 (partition day 0).
  for (int i = 0; i < 120; ++i) {
    int64_t start = kBase + (i % 40) * kDay / 7 + (i / 40) * 90 * kDay + i;
    core::LlmCall c = Call("w-" + std::to_string(1000 - i), start);
    c.provider = i % 3 == 0 ? "rare" : "common";
    calls.push_back(c);
  }
  calls.push_back(Call("twin-a", kBase + 5));
  calls.push_back(Call("twin-b", kBase + 5));
  core::LlmCall ancient = Call("ancient", -3 * kDay);
  ancient.provider = "rare";
  calls.push_back(ancient);
  ASSERT_TRUE(store_->WriteCalls(calls).ok());

  auto expected = [&](bool descending, const std::optional<std::string>& provider) {
    std::vector<const core::LlmCall*> v;
    for (const auto& c : calls) {
      if (!provider || c.provider == *provider) v.push_back(&c);
    }
    std::sort(v.begin(), v.end(), [&](const core::LlmCall* a, const core::LlmCall* b) {
      auto ka = std::tie(a->start_unix_nanos, a->request_id);
      auto kb = std::tie(b->start_unix_nanos, b->request_id);
      return descending ? kb < ka : ka < kb;
    });
    std::vector<std::string> ids;
    for (const auto* c : v) ids.push_back(c->request_id);
    return ids;
  };
  for (bool descending : {true, false}) {
    for (std::optional<std::string> provider :
         {std::optional<std::string>(), std::optional<std::string>("rare")}) {
      for (size_t limit : {size_t{1}, size_t{7}, size_t{1000}}) {
        SCOPED_TRACE(std::string(descending ? "desc" : "asc") + " limit " + std::to_string(limit) +
                     (provider ? " rare" : ""));
        storage::CallQuery q;
        q.descending = descending;
        q.limit = limit;
        q.filter.provider = provider;
        std::vector<std::string> got;
        for (int pages = 0; pages < 500; ++pages) {
          auto page = store_->ListCalls(q);
          ASSERT_TRUE(page.ok()) << page.status().ToString();
          for (const auto& c : page->calls) got.push_back(c.request_id);
          if (page->next_cursor.empty()) break;
          ASSERT_EQ(page->calls.size(), limit);
          q.cursor = page->next_cursor;
        }
        EXPECT_EQ(got, expected(descending, provider));
      }
    }
  }
}

TEST_F(ClickHouseStoreTest, ASpanMovedToAnotherDayLeavesNothingInItsOldDay) {
  core::Span s;
  s.trace_id[0] = 0x11;
  s.trace_id[15] = 1;
  s.span_id[0] = 0x22;
  s.name = "first";
  s.service = "api";
  s.start_unix_nanos = kBase + 5;
  s.end_unix_nanos = kBase + 6;
  ASSERT_TRUE(store_->WriteSpans(std::vector<core::Span>{s}).ok());
  core::Span moved = s;
  moved.name = "moved";
  moved.start_unix_nanos = kBase + 2 * kDay + 5;
  moved.end_unix_nanos = kBase + 2 * kDay + 6;
  ASSERT_TRUE(store_->WriteSpans(std::vector<core::Span>{moved}).ok());

  storage::TraceQuery first_day;
  first_day.from_unix_nanos = kBase;
  first_day.to_unix_nanos = kBase + kDay;
  auto page = store_->ListTraces(first_day);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->traces.empty());
  auto all = store_->ListTraces(storage::TraceQuery{});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->traces.size(), 1u);
  EXPECT_EQ(all->traces[0].root_name, "moved");
  auto trace = store_->GetTrace(s.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->spans.size(), 1u);
  EXPECT_EQ(trace->spans[0], moved);
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->spans, 1);
  // The old day goes with retention without counting the moved span.
  storage::RetentionOptions keep_one_day{0, 0, 1};
  auto report = store_->ApplyRetention(kBase + 2 * kDay + kSecond, keep_one_day);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->spans_removed, 0);
  trace = store_->GetTrace(s.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  EXPECT_EQ(trace->spans.size(), 1u);
}

TEST_F(ClickHouseStoreTest, RetentionDropsWholeDayPartitions) {
  ASSERT_TRUE(store_->WriteCalls(OneContentCallADay("d", 5, 7)).ok());
  const std::string partitions_before =
      "SELECT toInt64(uniqExact(partition_id)) FROM system.parts"
      " WHERE active AND database = " +
      SqlString(database_) + " AND table = ";
  EXPECT_EQ(QueryInt(partitions_before + SqlString(kCallsTable)), 5);
  storage::RetentionOptions options{2, 1, 0};
  auto report = store_->ApplyRetention(kBase + 4 * kDay + 3600 * kSecond, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->calls_removed, 2);    // days 0 and 1 (cutoff: the start of day 2)
  EXPECT_EQ(report->content_removed, 3);  // days 0, 1 and 2
  EXPECT_EQ(QueryInt(partitions_before + SqlString(kCallsTable)), 3);
  EXPECT_EQ(QueryInt(partitions_before + "'call_content'"), 2);
  EXPECT_EQ(store_->GetCall("d1").status().code(), core::StatusCode::kNotFound);
  auto d2 = store_->GetCall("d2");
  ASSERT_TRUE(d2.ok()) << d2.status().ToString();
  EXPECT_EQ(d2->response_text, "");
  auto d3 = store_->GetCall("d3");
  ASSERT_TRUE(d3.ok()) << d3.status().ToString();
  EXPECT_EQ(d3->response_text, "text");
}

TEST_F(ClickHouseStoreTest, AQueryPastItsTimeoutIsDeadlineExceeded) {
  std::vector<core::LlmCall> calls;
  for (int i = 0; i < 100; ++i) calls.push_back(Call("t-" + std::to_string(i), kBase + i));
  ASSERT_TRUE(store_->WriteCalls(calls).ok());
  // No server answers within a microsecond: the client's deadline ends the exchange.
  storage::CallQuery q;
  q.timeout = 1us;
  auto page = store_->ListCalls(q);
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.status().code(), core::StatusCode::kDeadlineExceeded) << page.status().ToString();
  EXPECT_NE(page.status().message().find("1us"), std::string::npos) << page.status().message();
  // The server's own limit (max_execution_time, here set lower in the query itself) ends a
  // long query with TIMEOUT_EXCEEDED, which maps to the same code.
  auto start = std::chrono::steady_clock::now();
  auto slow =
      env->conn().Query("SELECT count() FROM system.numbers SETTINGS max_execution_time = 1", 20s);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), core::StatusCode::kDeadlineExceeded) << slow.status().ToString();
  EXPECT_NE(slow.status().message().find("Timeout exceeded"), std::string::npos)
      << slow.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 15s);
  // The store still answers afterwards.
  q.timeout = 30s;
  page = store_->ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->calls.size(), 50u);
}

// Must stay last of the tests that use the shared server: it stops and restarts it.
TEST_F(ClickHouseStoreTest, ZZ_ServerRestartKeepsDataAndAnOutageIsUnavailable) {
  if (env->server() == nullptr) {
    GTEST_SKIP() << "LLMSCOPE_CLICKHOUSE_URL names an external server: it is not ours to stop";
  }
  std::vector<core::LlmCall> calls;
  for (int i = 0; i < 20; ++i) calls.push_back(Call("keep-" + std::to_string(i), kBase + i));
  ASSERT_TRUE(store_->WriteCalls(calls).ok());
  ASSERT_TRUE(store_->Ping().ok());

  env->server()->Stop();
  auto start = std::chrono::steady_clock::now();
  auto write = store_->WriteCalls(std::vector<core::LlmCall>{Call("during", kBase + 100)});
  EXPECT_EQ(write.code(), core::StatusCode::kUnavailable) << write.ToString();
  EXPECT_EQ(store_->Ping().code(), core::StatusCode::kUnavailable);
  EXPECT_EQ(store_->ListCalls(storage::CallQuery{}).status().code(),
            core::StatusCode::kUnavailable);
  EXPECT_EQ(store_->Stats().status().code(), core::StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);  // refused at once, not timed out

  auto restarted = env->server()->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted.ToString();
  ASSERT_TRUE(store_->Ping().ok());
  auto stats = store_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 20);
  ASSERT_TRUE(store_->WriteCalls(std::vector<core::LlmCall>{Call("after", kBase + 200)}).ok());
  auto got = store_->GetCall("after");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(store_->GetCall("during").ok());
}

}  // namespace
}  // namespace llmscope::storage_clickhouse
