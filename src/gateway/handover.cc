#include "gateway/handover.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace llmscope::gateway {

HandoverTracker::HandoverTracker(int workers)
    : workers_(workers), counts_(std::make_unique<Counts[]>(static_cast<size_t>(workers))) {}

HandoverTracker::Ticket HandoverTracker::Begin(int worker) {
  // Count in the current epoch's slot, then confirm the epoch did not move meanwhile. All
  // operations are sequentially consistent: either the confirming load precedes a waiter's
  // flip (and the waiter's later read of this slot sees the increment), or it sees the new
  // epoch and the ticket moves to the new slot, which no earlier waiter reads.
  Counts& c = counts_[static_cast<size_t>(worker)];
  for (;;) {
    const uint64_t e = epoch_.load();
    const int slot = static_cast<int>(e & 1);
    c.slot[slot].fetch_add(1);
    if (epoch_.load() == e) return Ticket{worker, slot};
    c.slot[slot].fetch_sub(1);
  }
}

void HandoverTracker::End(Ticket& t) {
  if (t.slot < 0) return;
  counts_[static_cast<size_t>(t.worker)].slot[t.slot].fetch_sub(1);
  t = Ticket{};
}

bool HandoverTracker::WaitForAll(core::Nanos timeout) {
  std::lock_guard lock(wait_mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto drained = [&](int slot) {
    auto pause = std::chrono::microseconds(20);
    for (;;) {
      int64_t pending = 0;
      for (int w = 0; w < workers_; ++w)
        pending += counts_[static_cast<size_t>(w)].slot[slot].load();
      if (pending == 0) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(1000));
    }
  };
  // The slot new tickets do not go to may still hold stragglers of an earlier wait that timed
  // out: they began before this wait too, and they must be gone before that slot is reused.
  // No new ticket enters it, so a steady load cannot starve this phase.
  const int current = static_cast<int>(epoch_.load() & 1);
  if (!drained(1 - current)) return false;
  // Flip: tickets from now on go to the drained slot; the old one holds exactly the tickets
  // taken before this wait (and not yet ended).
  epoch_.fetch_add(1);
  return drained(current);
}

int64_t HandoverTracker::InProgress() const {
  int64_t n = 0;
  for (int w = 0; w < workers_; ++w) {
    n += counts_[static_cast<size_t>(w)].slot[0].load() +
         counts_[static_cast<size_t>(w)].slot[1].load();
  }
  return n;
}

}  // namespace llmscope::gateway
