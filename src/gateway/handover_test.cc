#include "gateway/handover.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace llmscope::gateway {
namespace {

using std::chrono::seconds;

TEST(HandoverTracker, WaitsForAHandoverInProgressUntilItEnds) {
  HandoverTracker t(2);
  EXPECT_TRUE(t.WaitForAll(core::Nanos(0)));

  auto a = t.Begin(1);
  EXPECT_EQ(t.InProgress(), 1);
  EXPECT_FALSE(t.WaitForAll(core::Nanos(0))) << "a hand-over in progress is waited for";
  t.End(a);
  EXPECT_EQ(a.slot, -1) << "End clears the ticket";
  t.End(a);  // harmless twice
  EXPECT_EQ(t.InProgress(), 0);
  EXPECT_TRUE(t.WaitForAll(core::Nanos(0)));
}

TEST(HandoverTracker, AStragglerFromATimedOutWaitIsStillWaitedForLater) {
  HandoverTracker t(1);
  auto a = t.Begin(0);
  EXPECT_FALSE(t.WaitForAll(core::Nanos(0)));
  auto b = t.Begin(0);  // taken after that wait began
  t.End(b);
  // `a` is still in progress: no later wait may claim that everything is handed over.
  EXPECT_FALSE(t.WaitForAll(core::Nanos(0)));
  EXPECT_FALSE(t.WaitForAll(core::Nanos(0)));
  t.End(a);
  EXPECT_TRUE(t.WaitForAll(core::Nanos(0)));
}

// The contract under concurrency: when WaitForAll returns true, every hand-over that had begun
// before it was called has ended. Workers record each ticket's start after Begin and its
// end (the record's Submit) before End; the waiter snapshots the starts first.
TEST(HandoverTracker, EveryHandoverBegunBeforeAWaitHasEndedWhenItReturns) {
  constexpr int kWorkers = 4;
  constexpr int kWaits = 300;
  HandoverTracker t(kWorkers);
  std::atomic<bool> stop{false};
  std::vector<std::atomic<uint64_t>> begun(kWorkers), ended(kWorkers);
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (uint64_t k = 1; !stop.load(); ++k) {
        auto ticket = t.Begin(w);
        begun[w].store(k);
        for (uint64_t spin = 0; spin < (k % 7) * 50; ++spin) {
          std::atomic_signal_fence(std::memory_order_seq_cst);
        }
        ended[w].store(k);
        t.End(ticket);
      }
    });
  }
  int violations = 0;
  for (int i = 0; i < kWaits; ++i) {
    uint64_t snap[kWorkers];
    for (int w = 0; w < kWorkers; ++w) snap[w] = begun[w].load();
    ASSERT_TRUE(t.WaitForAll(seconds(10))) << "a steady load never starves a wait";
    for (int w = 0; w < kWorkers; ++w) violations += ended[w].load() < snap[w];
  }
  stop.store(true);
  for (auto& th : workers) th.join();
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(t.InProgress(), 0);
}

}  // namespace
}  // namespace llmscope::gateway
