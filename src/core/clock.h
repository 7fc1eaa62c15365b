#pragma once

#include <chrono>
#include <cstdint>

namespace llmscope::core {

using Nanos = std::chrono::nanoseconds;
// Monotonic instant: for durations (latency, TTFT). Never compared across processes.
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, Nanos>;

// The seam for time. Production code takes a Clock& and never calls a clock directly, so
// tests drive time with testing::FakeClock and never sleep.
// Thread-safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for measuring durations.
  virtual MonoTime Now() const = 0;
  // Wall-clock time as nanoseconds since the Unix epoch, for timestamps in records.
  virtual int64_t UnixNanos() const = 0;
};

// The real clocks of the machine.
class SystemClock final : public Clock {
 public:
  MonoTime Now() const override {
    return std::chrono::time_point_cast<Nanos>(std::chrono::steady_clock::now());
  }
  int64_t UnixNanos() const override {
    return std::chrono::duration_cast<Nanos>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace llmscope::core
