#include "pipeline/call_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "core/json_string.h"

namespace llmscope::pipeline {
namespace {

// Shortest text that parses back to exactly v; JSON has no NaN or infinities: null.
void AppendDouble(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out.append("null");
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

void AppendOptionalDouble(std::string& out, const std::optional<double>& v) {
  if (v) {
    AppendDouble(out, *v);
  } else {
    out.append("null");
  }
}

// "2023-11-14T22:13:20.123456Z": RFC 3339, UTC, microseconds (truncated toward the past).
void AppendTimestamp(std::string& out, int64_t unix_nanos) {
  using namespace std::chrono;
  const sys_time<microseconds> t{floor<microseconds>(nanoseconds(unix_nanos))};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<microseconds> hms{t - day};
  char buf[40];
  const int n = std::snprintf(
      buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<int>(ymd.year()),
      static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
      static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
      static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  out.push_back('"');
  out.append(buf, static_cast<size_t>(n));
  out.push_back('"');
}

// Appends `"name":` to the object being written, with a comma before all but its first key.
class KeyWriter {
 public:
  explicit KeyWriter(std::string& out) : out_(out) {}
  void operator()(std::string_view name) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(name);
    out_.append("\":");
  }

 private:
  std::string& out_;
  bool first_ = true;
};

void AppendCallJson(std::string& line, const core::LlmCall& c, bool include_content) {
  line.reserve(line.size() + 768 +
               (include_content ? c.request_body.size() + c.response_text.size() : 0));
  KeyWriter key(line);
  line.push_back('{');
  key("ts");
  AppendTimestamp(line, c.start_unix_nanos);
  key("request_id");
  core::AppendJsonString(line, c.request_id);
  key("trace_id");
  core::AppendJsonString(line, core::ToHex(c.trace_id));
  key("span_id");
  core::AppendJsonString(line, core::ToHex(c.span_id));
  if (core::IsValid(c.parent_span_id)) {
    key("parent_span_id");
    core::AppendJsonString(line, core::ToHex(c.parent_span_id));
  }
  key("endpoint");
  core::AppendJsonString(line, core::EndpointName(c.endpoint));
  key("provider");
  core::AppendJsonString(line, c.provider);
  key("provider_kind");
  core::AppendJsonString(line, c.provider_kind);
  key("model");
  core::AppendJsonString(line, c.requested_model);
  key("response_model");
  core::AppendJsonString(line, c.response_model);
  key("stream");
  line.append(c.stream ? "true" : "false");
  key("status");
  AppendInt(line, c.http_status);
  if (c.error != core::ErrorClass::kNone) {
    key("error_type");
    core::AppendJsonString(line, core::ErrorClassName(c.error));
  }
  if (!c.error_message.empty()) {
    key("error_message");
    core::AppendJsonString(line, c.error_message);
  }
  key("client_cancelled");
  line.append(c.client_cancelled ? "true" : "false");
  key("duration_s");
  AppendOptionalDouble(line, c.DurationSeconds());
  key("ttft_s");
  AppendOptionalDouble(line, c.TimeToFirstTokenSeconds());
  key("tpot_s");
  AppendOptionalDouble(line, c.TimePerOutputTokenSeconds());
  key("first_byte_s");
  AppendOptionalDouble(line,
                       c.first_byte_nanos >= 0
                           ? std::optional<double>(static_cast<double>(c.first_byte_nanos) / 1e9)
                           : std::nullopt);
  key("overhead_us");
  AppendDouble(line, static_cast<double>(c.overhead_nanos) / 1e3);
  if (c.max_tokens) {
    key("max_tokens");
    AppendInt(line, *c.max_tokens);
  }
  if (c.temperature) {
    key("temperature");
    AppendDouble(line, *c.temperature);
  }
  if (c.top_p) {
    key("top_p");
    AppendDouble(line, *c.top_p);
  }
  key("finish_reasons");
  line.push_back('[');
  for (size_t i = 0; i < c.finish_reasons.size(); ++i) {
    if (i > 0) line.push_back(',');
    core::AppendJsonString(line, c.finish_reasons[i]);
  }
  line.push_back(']');
  key("usage");
  line.append("{\"input\":");
  AppendInt(line, c.usage.input);
  line.append(",\"output\":");
  AppendInt(line, c.usage.output);
  line.append(",\"cache_read\":");
  AppendInt(line, c.usage.cache_read);
  line.append(",\"cache_write\":");
  AppendInt(line, c.usage.cache_write);
  line.append(",\"reasoning\":");
  AppendInt(line, c.usage.reasoning);
  line.push_back('}');
  key("usage_source");
  core::AppendJsonString(line, core::UsageSourceName(c.usage_source));
  key("cost_usd");
  AppendOptionalDouble(line, c.cost_usd);
  key("unpriced");
  line.append(c.unpriced ? "true" : "false");
  if (!c.user.empty()) {
    key("user");
    core::AppendJsonString(line, c.user);
  }
  if (!c.session.empty()) {
    key("session");
    core::AppendJsonString(line, c.session);
  }
  key("tags");
  line.push_back('{');
  bool first_tag = true;
  for (size_t i = 0; i < c.tags.size(); ++i) {
    // JSON objects should have unique keys (RFC 8259 4); the first occurrence wins.
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = c.tags[j].first == c.tags[i].first;
    if (seen) continue;
    if (!first_tag) line.push_back(',');
    first_tag = false;
    core::AppendJsonString(line, c.tags[i].first);
    line.push_back(':');
    core::AppendJsonString(line, c.tags[i].second);
  }
  line.push_back('}');
  if (include_content) {
    key("request_body");
    core::AppendJsonString(line, c.request_body);
    key("response_text");
    core::AppendJsonString(line, c.response_text);
  }
  line.push_back('}');
}

}  // namespace

std::string FormatCallJson(const core::LlmCall& call, bool include_content) {
  std::string out;
  AppendCallJson(out, call, include_content);
  return out;
}

core::Result<std::unique_ptr<JsonLinesCallLog>> JsonLinesCallLog::Open(std::string_view target,
                                                                       CallLogOptions options,
                                                                       core::Logger* logger) {
  if (target.empty()) return core::InvalidArgument("call log target is empty");
  int fd;
  bool owns = false;
  if (target == "stdout") {
    fd = STDOUT_FILENO;
  } else if (target == "stderr") {
    fd = STDERR_FILENO;
  } else {
    const std::string path(target);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      return core::Unavailable("cannot open call log '" + path + "': " + std::strerror(err));
    }
    owns = true;
  }
  return std::unique_ptr<JsonLinesCallLog>(
      new JsonLinesCallLog(fd, owns, std::string(target), options, logger));
}

JsonLinesCallLog::JsonLinesCallLog(int fd, bool owns_fd, std::string target, CallLogOptions options,
                                   core::Logger* logger)
    : fd_(fd), owns_fd_(owns_fd), target_(std::move(target)), options_(options), logger_(logger) {}

JsonLinesCallLog::~JsonLinesCallLog() {
  if (owns_fd_) ::close(fd_);
}

void JsonLinesCallLog::Consume(const std::vector<core::LlmCall>& batch) {
  if (batch.empty()) return;
  buffer_.clear();
  for (const core::LlmCall& call : batch) {
    AppendCallJson(buffer_, call, options_.include_content);
    buffer_.push_back('\n');
  }
  // One write(2) for the whole batch; loop only on a short write (pipes, signals), so a
  // batch is never split except by the kernel.
  size_t off = 0;
  int err = 0;
  while (off < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (err == 0) {
    lines_written_.fetch_add(batch.size(), std::memory_order_relaxed);
    if (failing_ && logger_ != nullptr) {
      logger_->Info("call log writes recovered", {{"target", target_}});
    }
    failing_ = false;
    return;
  }
  failed_writes_.fetch_add(1, std::memory_order_relaxed);
  if (!failing_ && logger_ != nullptr) {
    logger_->Error("call log write failed; lines are being lost until it recovers",
                   {{"target", target_}, {"error", std::strerror(err)}});
  }
  failing_ = true;
}

void JsonLinesCallLog::Flush() {
  // Only files: fsync on a pipe or terminal fails with EINVAL and means nothing there.
  if (owns_fd_) ::fsync(fd_);
}

}  // namespace llmscope::pipeline
