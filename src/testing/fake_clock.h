#pragma once

#include <atomic>
#include <cstdint>

#include "core/clock.h"

namespace llmscope::testing {

// A clock that moves only when told. Thread-safety: Advance and reads may race safely.
class FakeClock final : public core::Clock {
 public:
  explicit FakeClock(int64_t unix_nanos = 1'700'000'000'000'000'000) : unix_(unix_nanos) {}
  core::MonoTime Now() const override { return core::MonoTime(core::Nanos(mono_.load())); }
  int64_t UnixNanos() const override { return unix_.load(); }
  void Advance(core::Nanos d) {
    mono_ += d.count();
    unix_ += d.count();
  }

 private:
  std::atomic<int64_t> mono_{1'000'000'000};
  std::atomic<int64_t> unix_;
};

}  // namespace llmscope::testing
