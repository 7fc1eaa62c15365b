#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/status.h"
#include "http/blocking_client.h"
#include "http/client.h"

namespace llmscope::storage_clickhouse {

// Thread-safety: Query, Insert and Ping may be called from any number of threads at once
// (the BlockingClient gives each call its own event loop). set_extra_settings only before
// the connection is shared.
//
// One ClickHouse server spoken to over its HTTP interface: statements go in the POST body
// (or, for INSERT, in the `query` URL parameter with the data as the body); credentials in
// the X-ClickHouse-User / X-ClickHouse-Key headers, which 18.16 and current releases accept.
// Every statement carries its limits as URL settings:
//   max_execution_time     the timeout rounded up to whole seconds (18.16 truncates a
//                          fraction, and 0.5 would become 0 = unlimited);
//   timeout_overflow_mode  throw: a query past its limit fails, never returns a partial
//                          answer;
//   wait_end_of_query      1: the server buffers the result, so an error found late still
//                          arrives as an HTTP error status instead of a truncated 200 body;
//   max_query_size         large enough for the IN lists of a write batch's keys.
// The HTTP exchange itself is bounded by the same timeout on the client side.
class Connection {
 public:
  // `url` like "http://127.0.0.1:8123" (a path prefix is kept; https works). Fails with
  // INVALID_ARGUMENT naming the URL.
  static core::Result<std::unique_ptr<Connection>> Create(std::string_view url, std::string user,
                                                          std::string password);

  // Runs one statement and returns the response body: the result in the format the SQL
  // names (FORMAT RowBinary), empty for DDL. Errors: see StatusFromClickHouseError, plus
  // UNAVAILABLE when the server cannot be reached and DEADLINE_EXCEEDED when no complete
  // answer arrived within `timeout`.
  core::Result<std::string> Query(std::string_view sql, core::Nanos timeout);

  // Runs `insert_sql` ("INSERT INTO ... FORMAT RowBinary") with `data` as its input. OK only
  // when ClickHouse answered 200 (the rows are written).
  core::Status Insert(std::string_view insert_sql, std::string data, core::Nanos timeout);

  // GET /ping: OK when the server answers "Ok."; UNAVAILABLE otherwise, whatever the cause.
  core::Status Ping(core::Nanos timeout);

  // More URL settings appended to every statement, "&name=value..." (settings that only
  // some server versions know, found at start-up).
  void set_extra_settings(std::string settings) { extra_settings_ = std::move(settings); }

  // "http://host:port", for messages.
  std::string where() const { return origin_.Key(); }

 private:
  Connection(http::Origin origin, std::string user, std::string password,
             std::unique_ptr<http::BlockingClient> client);
  core::Result<std::string> Send(std::string method, std::string target, std::string body,
                                 core::Nanos timeout);
  std::string SettingsFor(core::Nanos timeout) const;

  const http::Origin origin_;
  const std::string user_;
  const std::string password_;
  std::unique_ptr<http::BlockingClient> client_;
  std::string extra_settings_;
};

// The whole seconds sent as max_execution_time for `timeout`: rounded up, at least 1.
int64_t MaxExecutionSeconds(core::Nanos timeout);

// Maps ClickHouse's answer to a failed statement (an HTTP status other than 200 and the
// "Code: N, e.displayText() = ..." body of 18.16, or "Code: N. DB::Exception: ..." of current
// releases) to a Status carrying ClickHouse's own message:
//   159 TIMEOUT_EXCEEDED, 160 TOO_SLOW          -> DEADLINE_EXCEEDED naming `timeout`
//   202, 209, 210, 252 (overload, network)      -> UNAVAILABLE (worth retrying)
//   241 MEMORY_LIMIT_EXCEEDED                   -> RESOURCE_EXHAUSTED
//   192, 193, 194, 497, 516 (who may connect)   -> FAILED_PRECONDITION
//   anything else                               -> INTERNAL (UNAVAILABLE for HTTP 503)
core::Status StatusFromClickHouseError(int http_status, std::string_view body, core::Nanos timeout);

// "10s", "250ms", "1ns": a duration as a message shows it.
std::string DurationText(core::Nanos d);

}  // namespace llmscope::storage_clickhouse
