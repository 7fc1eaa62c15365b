#include "storage_clickhouse/row_binary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "storage/store.h"
#include "storage_clickhouse/connection.h"
#include "storage_clickhouse/records.h"

// Pure tests of the codec, the SQL literals and the error mapping: no server needed.
namespace llmscope::storage_clickhouse {
namespace {

using namespace std::chrono_literals;

TEST(RowBinaryTest, RoundTripsEveryType) {
  std::string data;
  RowBinaryWriter w(data);
  std::string bytes("a\0b\xff\"\\", 6);
  w.UInt8(200);
  w.UInt16(65535);
  w.UInt32(4'000'000'000u);
  w.UInt64(UINT64_MAX);
  w.Int32(-5);
  w.Int64(INT64_MIN);
  w.Float64(0.1 + 0.2);
  w.String(bytes);
  w.String(std::string(300, 'x'));  // a two-byte length prefix
  w.FixedString(std::array<uint8_t, 3>{1, 0, 255});
  w.NullableInt64(std::nullopt);
  w.NullableInt64(int64_t{-7});
  w.NullableFloat64(5e-324);
  w.StringArray({"", "one", bytes});

  RowBinaryReader r(data);
  EXPECT_EQ(r.UInt8(), 200);
  EXPECT_EQ(r.UInt16(), 65535);
  EXPECT_EQ(r.UInt32(), 4'000'000'000u);
  EXPECT_EQ(r.UInt64(), UINT64_MAX);
  EXPECT_EQ(r.Int32(), -5);
  EXPECT_EQ(r.Int64(), INT64_MIN);
  EXPECT_EQ(r.Float64(), 0.1 + 0.2);
  EXPECT_EQ(r.String(), bytes);
  EXPECT_EQ(r.String(), std::string(300, 'x'));
  EXPECT_EQ((r.FixedString<3>()), (std::array<uint8_t, 3>{1, 0, 255}));
  EXPECT_EQ(r.NullableInt64(), std::nullopt);
  EXPECT_EQ(r.NullableInt64(), -7);
  EXPECT_EQ(r.NullableFloat64(), 5e-324);
  EXPECT_EQ(r.StringArray(), (std::vector<std::string>{"", "one", bytes}));
  EXPECT_FALSE(r.failed());
  EXPECT_TRUE(r.AtEnd());
}

TEST(RowBinaryTest, ShortOrCorruptInputFailsInsteadOfReadingPastTheEnd) {
  std::string data;
  RowBinaryWriter w(data);
  w.String("hello");
  RowBinaryReader cut(std::string_view(data).substr(0, 3));
  EXPECT_EQ(cut.String(), "");
  EXPECT_TRUE(cut.failed());

  RowBinaryReader empty("");
  EXPECT_EQ(empty.Int64(), 0);
  EXPECT_TRUE(empty.failed());

  // An array count far larger than the bytes that follow.
  std::string huge;
  RowBinaryWriter hw(huge);
  hw.VarUInt(uint64_t{1} << 40);
  RowBinaryReader hr(huge);
  EXPECT_TRUE(hr.StringArray().empty());
  EXPECT_TRUE(hr.failed());
}

TEST(SqlLiteralTest, StringsAreQuotedExactly) {
  EXPECT_EQ(SqlString(""), "''");
  EXPECT_EQ(SqlString("it's"), "'it\\'s'");
  EXPECT_EQ(SqlString("a\\b"), "'a\\\\b'");
  EXPECT_EQ(SqlString(std::string("\0\n\x7f", 3)), "'\\x00\\x0a\\x7f'");
  EXPECT_EQ(SqlString("h\xC3\xA9\xff"), "'h\xC3\xA9\xff'");  // other bytes pass through
  EXPECT_EQ(SqlString("x' OR 1=1 --"), "'x\\' OR 1=1 --'");
}

TEST(SqlLiteralTest, NumbersDatesAndBytes) {
  EXPECT_EQ(SqlInt(-42), "-42");
  EXPECT_EQ(SqlInt(INT64_MIN), "(-9223372036854775807 - 1)");
  EXPECT_EQ(SqlFloat64(0.1 + 0.2), "reinterpretAsFloat64(unhex('343333333333d33f'))");
  EXPECT_EQ(SqlFloat64(5e-324), "reinterpretAsFloat64(unhex('0100000000000000'))");
  EXPECT_EQ(SqlDate(0), "'1970-01-01'");
  EXPECT_EQ(SqlDate(19783), "'2024-03-01'");
  EXPECT_EQ(SqlBytes(std::array<uint8_t, 2>{0xab, 0x01}), "toFixedString(unhex('ab01'), 2)");
  EXPECT_EQ(UrlEncode("INSERT INTO `d`.t (a) FORMAT RowBinary"),
            "INSERT%20INTO%20%60d%60.t%20%28a%29%20FORMAT%20RowBinary");
}

TEST(SqlLiteralTest, DayOfClampsIntoTheDateRange) {
  EXPECT_EQ(DayOf(0), 0);
  EXPECT_EQ(DayOf(-1), 0);
  EXPECT_EQ(DayOf(storage::kNanosPerDay - 1), 0);
  EXPECT_EQ(DayOf(storage::kNanosPerDay), 1);
  EXPECT_EQ(DayOf(INT64_MAX), 65535);
}

TEST(ConnectionTest, MaxExecutionTimeRoundsUpToWholeSeconds) {
  EXPECT_EQ(MaxExecutionSeconds(1ns), 1);
  EXPECT_EQ(MaxExecutionSeconds(0ns), 1);
  EXPECT_EQ(MaxExecutionSeconds(1s), 1);
  EXPECT_EQ(MaxExecutionSeconds(1001ms), 2);
  EXPECT_EQ(MaxExecutionSeconds(10s), 10);
}

TEST(ConnectionTest, MapsClickHouseErrorsToStatusCodes) {
  // 18.16's body, then a current release's.
  auto timeout = StatusFromClickHouseError(
      500,
      "Code: 159, e.displayText() = DB::Exception: Timeout exceeded: elapsed 1.0 seconds, "
      "maximum: 1, e.what() = DB::Exception\n",
      1500ms);
  EXPECT_EQ(timeout.code(), core::StatusCode::kDeadlineExceeded);
  EXPECT_NE(timeout.message().find("1500ms"), std::string::npos) << timeout.message();
  EXPECT_NE(timeout.message().find("max_execution_time=2s"), std::string::npos);
  EXPECT_NE(timeout.message().find("Timeout exceeded: elapsed 1.0 seconds, maximum: 1"),
            std::string::npos);
  EXPECT_EQ(timeout.message().find("e.what()"), std::string::npos);

  auto table = StatusFromClickHouseError(
      404, "Code: 60. DB::Exception: Table x.y doesn't exist. (UNKNOWN_TABLE) (version 24.3)", 1s);
  EXPECT_EQ(table.code(), core::StatusCode::kInternal);
  EXPECT_NE(table.message().find("Table x.y doesn't exist"), std::string::npos);
  EXPECT_NE(table.message().find("60"), std::string::npos);

  EXPECT_EQ(StatusFromClickHouseError(500, "Code: 241, e.displayText() = x", 1s).code(),
            core::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusFromClickHouseError(500, "Code: 252, e.displayText() = x", 1s).code(),
            core::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromClickHouseError(401, "Code: 193, e.displayText() = x", 1s).code(),
            core::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromClickHouseError(503, "busy", 1s).code(), core::StatusCode::kUnavailable);
  auto empty = StatusFromClickHouseError(502, "", 1s);
  EXPECT_EQ(empty.code(), core::StatusCode::kInternal);
  EXPECT_NE(empty.message().find("502"), std::string::npos);
}

TEST(RecordsTest, CallRowsRoundTripThroughTheCodec) {
  core::LlmCall c;
  c.request_id = std::string("id\0\xff", 4);
  c.trace_id[0] = 1;
  c.start_unix_nanos = 5;
  c.endpoint = core::Endpoint::kMessages;
  c.error = core::ErrorClass::kTimeout;
  c.usage_source = core::UsageSource::kEstimated;
  c.tags = {{"k", "v"}, {"k", ""}};
  c.finish_reasons = {"stop"};
  c.cost_usd = 0.5;
  // AppendCallRow writes the ingest layout (day, ver, ..., content); the stored layout
  // starts with ver and has no content. Build the stored row from the ingest row to check
  // that the two orders agree.
  std::string ingest;
  RowBinaryWriter iw(ingest);
  AppendCallRow(iw, 7, c);
  std::string stored;
  RowBinaryWriter sw(stored);
  sw.UInt64(7);
  // Skip day (2) and ver (8); drop the two trailing empty content strings.
  stored.append(ingest.substr(10, ingest.size() - 10 - 2));
  RowBinaryReader r(stored);
  auto back = ReadStoredCall(r);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(r.AtEnd());
  EXPECT_EQ(back->ver, 7u);
  EXPECT_EQ(back->call, c);
}

}  // namespace
}  // namespace llmscope::storage_clickhouse
