#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/clock.h"

namespace llmscope::gateway {

// Closes the gap between "the client has the whole response" and "the call's record is in
// the pipeline". The record is submitted only after the last write completes, and the
// event loop resumes a completed write later than the client can read it (it may wait
// behind the very client process it woke). A client that reads its response and at once
// asks for a flush (`POST /-/flush`, then a query) must still find its call: the flush
// first waits here for every call whose response was already being handed over.
//
// Each call in its hand-over holds a Ticket from Begin() until End(), after its Submit. A
// WaitForAll() waits for the tickets taken before it began and never for later ones, so a
// steady load cannot starve it. Tickets are counted per worker (no shared cache line on the
// request path) in two slots; an epoch picks the slot that new tickets go to, and
// WaitForAll() flips it and waits for the old slot to drain.
//
// Thread-safety: Begin/End may be called from any thread, each worker index from one thread
// at a time; WaitForAll from any thread (calls are serialized).
class HandoverTracker {
 public:
  explicit HandoverTracker(int workers);

  struct Ticket {
    int worker = -1;
    int slot = -1;  // -1: no hand-over in progress
  };

  // Marks the start of a call's hand-over on `worker`. REQUIRES: 0 <= worker < workers.
  Ticket Begin(int worker);
  // Ends it (after the record went to the sink). Harmless on a default Ticket; clears it.
  void End(Ticket& t);

  // Waits until every ticket taken before this call has ended. Returns false when that did
  // not happen within `timeout` (real time, polled; the wait is microseconds in practice).
  bool WaitForAll(core::Nanos timeout);

  // Hand-overs in progress now, for tests and diagnostics.
  int64_t InProgress() const;

 private:
  struct alignas(64) Counts {
    std::atomic<int64_t> slot[2] = {0, 0};
  };
  const int workers_;
  std::unique_ptr<Counts[]> counts_;
  std::atomic<uint64_t> epoch_{0};
  std::mutex wait_mu_;
};

}  // namespace llmscope::gateway
