#include "logging/logger.h"

#include <unistd.h>

#include <ctime>

#include "core/json_string.h"

namespace llmscope::logging {

core::LogLevel ParseLevel(std::string_view s, bool* ok) {
  *ok = true;
  if (s == "debug") return core::LogLevel::kDebug;
  if (s == "info") return core::LogLevel::kInfo;
  if (s == "warn" || s == "warning") return core::LogLevel::kWarn;
  if (s == "error") return core::LogLevel::kError;
  *ok = false;
  return core::LogLevel::kInfo;
}

void JsonLogger::Log(core::LogLevel level, std::string_view message,
                     std::initializer_list<Field> fields) {
  if (level < min_.load(std::memory_order_relaxed)) return;
  static constexpr std::string_view kNames[] = {"debug", "info", "warn", "error"};
  int64_t ns = clock_.UnixNanos();
  std::time_t secs = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[40];
  size_t n = std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(ts + n, sizeof ts - n, ".%03dZ", static_cast<int>((ns / 1'000'000) % 1000));
  std::string line;
  line.reserve(128 + message.size());
  line += "{\"ts\":\"";
  line += ts;
  line += "\",\"level\":\"";
  line += kNames[static_cast<int>(level)];
  line += "\",\"msg\":";
  core::AppendJsonString(line, message);
  for (const auto& [k, v] : fields) {
    line += ',';
    core::AppendJsonString(line, k);
    line += ':';
    core::AppendJsonString(line, v);
  }
  line += "}\n";
  for (size_t off = 0; off < line.size();) {
    ssize_t w = ::write(fd_, line.data() + off, line.size() - off);
    if (w <= 0) return;  // nowhere left to report a failing log
    off += static_cast<size_t>(w);
  }
}

}  // namespace llmscope::logging
