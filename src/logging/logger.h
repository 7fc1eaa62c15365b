#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/log.h"

namespace llmscope::logging {

core::LogLevel ParseLevel(std::string_view s, bool* ok);

// Operational log as JSON lines ({"ts":..,"level":..,"msg":..,<fields>}) on a file
// descriptor (stderr by default), kept apart from the per-call log.
// Thread-safety: Log may be called from any thread; one write(2) per line keeps lines whole.
class JsonLogger final : public core::Logger {
 public:
  JsonLogger(int fd, core::LogLevel min_level, const core::Clock& clock)
      : fd_(fd), min_(min_level), clock_(clock) {}
  void Log(core::LogLevel level, std::string_view message,
           std::initializer_list<Field> fields) override;
  void set_min_level(core::LogLevel l) { min_ = l; }

 private:
  int fd_;
  std::atomic<core::LogLevel> min_;
  const core::Clock& clock_;
};

}  // namespace llmscope::logging
