#pragma once

#include <initializer_list>
#include <string_view>
#include <utility>

namespace llmscope::core {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Operational log (not the per-call log): start-up, degraded modes, failures.
// Each degraded mode logs once per occurrence class and bumps a counter elsewhere.
// Thread-safety: implementations accept calls from any thread.
class Logger {
 public:
  using Field = std::pair<std::string_view, std::string_view>;
  virtual ~Logger() = default;
  virtual void Log(LogLevel level, std::string_view message,
                   std::initializer_list<Field> fields = {}) = 0;
  void Info(std::string_view m, std::initializer_list<Field> f = {}) { Log(LogLevel::kInfo, m, f); }
  void Warn(std::string_view m, std::initializer_list<Field> f = {}) { Log(LogLevel::kWarn, m, f); }
  void Error(std::string_view m, std::initializer_list<Field> f = {}) {
    Log(LogLevel::kError, m, f);
  }
};

// Discards everything: for tests that do not look at operational logs.
class NullLogger final : public Logger {
 public:
  void Log(LogLevel, std::string_view, std::initializer_list<Field>) override {}
};

}  // namespace llmscope::core
