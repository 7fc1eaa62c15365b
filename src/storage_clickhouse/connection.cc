#include "storage_clickhouse/connection.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "storage_clickhouse/row_binary.h"

namespace llmscope::storage_clickhouse {

namespace {

// A write batch's keys go into IN lists in the SQL text: 5000 request ids of up to a few
// hundred bytes each must fit (18.16's default max_query_size is 256 KiB).
constexpr int64_t kMaxQueryBytes = 64 << 20;
// The longest part of an error body kept in a Status (ClickHouse may append a stack trace).
constexpr size_t kMaxMessageBytes = 2000;

// ClickHouse's message without the noise: "Code: 60, e.displayText() = DB::Exception: X,
// e.what() = DB::Exception" (18.16) or "Code: 60. DB::Exception: X. (UNKNOWN_TABLE)
// (version ...)" (current), reduced to the part from "DB::Exception: ".
std::string CleanMessage(std::string_view body) {
  std::string_view m = body;
  if (size_t p = m.find("DB::Exception: "); p != std::string_view::npos) {
    m.remove_prefix(p + 15);
  }
  if (size_t p = m.rfind(", e.what() = "); p != std::string_view::npos) m = m.substr(0, p);
  if (size_t p = m.find("\nStack trace"); p != std::string_view::npos) m = m.substr(0, p);
  while (!m.empty() && (m.back() == '\n' || m.back() == '\r' || m.back() == ' ')) {
    m.remove_suffix(1);
  }
  if (m.size() > kMaxMessageBytes) m = m.substr(0, kMaxMessageBytes);
  return std::string(m);
}

int ErrorCode(std::string_view body) {
  size_t p = body.find("Code: ");
  if (p == std::string_view::npos) return 0;
  std::string_view digits = body.substr(p + 6);
  int code = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), code);
  return ec == std::errc() ? code : 0;
}

}  // namespace

std::string DurationText(core::Nanos d) {
  const int64_t ns = d.count();
  if (ns > 0 && ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns > 0 && ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns > 0 && ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  return std::to_string(ns) + "ns";
}

int64_t MaxExecutionSeconds(core::Nanos timeout) {
  const int64_t ns = timeout.count();
  if (ns <= 0) return 1;
  return std::max<int64_t>(1, (ns + 999'999'999) / 1'000'000'000);
}

core::Status StatusFromClickHouseError(int http_status, std::string_view body,
                                       core::Nanos timeout) {
  const int code = ErrorCode(body);
  std::string message = CleanMessage(body);
  if (message.empty()) message = "HTTP status " + std::to_string(http_status);
  const std::string where = "clickhouse error " + std::to_string(code) + ": ";
  switch (code) {
    case 159:  // TIMEOUT_EXCEEDED
    case 160:  // TOO_SLOW
      return core::Status(core::StatusCode::kDeadlineExceeded,
                          "clickhouse: the query ran past its timeout of " + DurationText(timeout) +
                              " (max_execution_time=" +
                              std::to_string(MaxExecutionSeconds(timeout)) + "s): " + message);
    case 202:  // TOO_MANY_SIMULTANEOUS_QUERIES
    case 209:  // SOCKET_TIMEOUT
    case 210:  // NETWORK_ERROR
    case 252:  // TOO_MANY_PARTS
      return core::Unavailable(where + message);
    case 241:  // MEMORY_LIMIT_EXCEEDED
      return core::Status(core::StatusCode::kResourceExhausted, where + message);
    case 192:  // UNKNOWN_USER
    case 193:  // WRONG_PASSWORD
    case 194:  // REQUIRED_PASSWORD
    case 497:  // ACCESS_DENIED
    case 516:  // AUTHENTICATION_FAILED
      return core::FailedPrecondition(where + message);
    default:
      if (http_status == 503) return core::Unavailable(where + message);
      return core::Internal(where + message);
  }
}

Connection::Connection(http::Origin origin, std::string user, std::string password,
                       std::unique_ptr<http::BlockingClient> client)
    : origin_(std::move(origin)),
      user_(std::move(user)),
      password_(std::move(password)),
      client_(std::move(client)) {}

core::Result<std::unique_ptr<Connection>> Connection::Create(std::string_view url, std::string user,
                                                             std::string password) {
  auto origin = http::Origin::Parse(url);
  if (!origin.ok()) return core::InvalidArgument("url: " + origin.status().message());
  http::BlockingClientOptions options;
  // Every call carries its own deadline (Fetch's timeout); these are only backstops.
  options.client.connect_timeout = std::chrono::seconds(30);
  options.client.first_byte_timeout = std::chrono::seconds(3600);
  options.client.idle_timeout = std::chrono::seconds(3600);
  options.client.max_idle_per_origin = 4;
  options.client.max_response_bytes = size_t{256} << 20;  // a call with large content
  options.max_idle_loops = 8;
  auto client = http::BlockingClient::Create(std::move(options));
  if (!client.ok()) return client.status();
  return std::unique_ptr<Connection>(new Connection(
      std::move(origin).value(), std::move(user), std::move(password), std::move(client).value()));
}

std::string Connection::SettingsFor(core::Nanos timeout) const {
  return "max_execution_time=" + std::to_string(MaxExecutionSeconds(timeout)) +
         "&timeout_overflow_mode=throw&wait_end_of_query=1&max_query_size=" +
         std::to_string(kMaxQueryBytes) + extra_settings_;
}

core::Result<std::string> Connection::Send(std::string method, std::string target, std::string body,
                                           core::Nanos timeout) {
  http::ClientRequest req;
  req.method = std::move(method);
  req.target = origin_.base_path + std::move(target);
  req.headers.emplace_back("X-ClickHouse-User", user_);
  if (!password_.empty()) req.headers.emplace_back("X-ClickHouse-Key", password_);
  req.body = std::move(body);
  auto response = client_->Fetch(origin_, std::move(req), timeout);
  if (!response.ok()) {
    const core::Status& s = response.status();
    if (s.code() == core::StatusCode::kDeadlineExceeded) {
      return core::Status(core::StatusCode::kDeadlineExceeded,
                          "clickhouse at " + where() +
                              ": no complete answer within the timeout of " +
                              DurationText(timeout));
    }
    return core::Status(s.code(), "clickhouse at " + where() + ": " + s.message());
  }
  if (response->status != 200) {
    return StatusFromClickHouseError(response->status, response->body, timeout);
  }
  return std::move(response->body);
}

core::Result<std::string> Connection::Query(std::string_view sql, core::Nanos timeout) {
  return Send("POST", "/?" + SettingsFor(timeout), std::string(sql), timeout);
}

core::Status Connection::Insert(std::string_view insert_sql, std::string data,
                                core::Nanos timeout) {
  auto r = Send("POST", "/?query=" + UrlEncode(insert_sql) + "&" + SettingsFor(timeout),
                std::move(data), timeout);
  return r.status();
}

core::Status Connection::Ping(core::Nanos timeout) {
  http::ClientRequest req;
  req.method = "GET";
  req.target = origin_.base_path + "/ping";
  auto response = client_->Fetch(origin_, std::move(req), timeout);
  if (!response.ok()) {
    return core::Unavailable("clickhouse at " + where() + ": " + response.status().message());
  }
  if (response->status != 200) {
    return core::Unavailable("clickhouse at " + where() + " answered /ping with HTTP " +
                             std::to_string(response->status));
  }
  return core::Status::Ok();
}

}  // namespace llmscope::storage_clickhouse
