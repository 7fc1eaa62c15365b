#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace llmscope::gateway {

// One dispatched Server-Sent Event. The views point into the tap's input or its internal
// buffers and are valid only during the callback that receives the event.
struct SseEvent {
  std::string_view event;  // the last `event:` field's value; empty when none was sent
  std::string_view data;   // the `data:` lines' values joined with "\n" (may be empty)
  // The exact bytes of the event, comments and all, through its terminating blank line.
  // One exception: when a feed ends on the CR of the blank line's CRLF, the event is
  // dispatched at once (no waiting on the next read) and its LF, arriving with the next
  // feed, is forwarded or dropped together with the event without appearing in `raw`.
  std::string_view raw;
};

// Thread-safety: not thread-safe; one instance per upstream stream, used by one thread at a
// time.
//
// Incremental SSE framing for a proxy: feed upstream bytes as they arrive; each complete
// event goes to a callback that says keep (true) or drop (false); the bytes to send to the
// client now are appended to `out`: every byte of the input except those of dropped events,
// in order, with a partial trailing event held back until its blank line arrives.
//
// Framing follows the WHATWG EventSource rules: lines end with CRLF, LF or CR (a CRLF split
// across two feeds is one line ending); an optional UTF-8 BOM opens the stream; lines
// starting with ':' are comments; `data:`/`event:` take one optional leading space off
// their value; other fields are ignored; a blank line dispatches the event, and an event is
// dispatched only when it had at least one `data` line (a block of comments or of `event:`
// alone is forwarded without a callback).
//
// A block that grows past `max_event_bytes` without a blank line (a broken or hostile
// upstream) stops being held: its bytes are forwarded as they come, it is never dispatched,
// and oversized_events() counts it.
//
// Allocation: one internal buffer, reused, that holds only bytes of an incomplete event
// (or multi-line data) between feeds.
class SseTap {
 public:
  static constexpr size_t kDefaultMaxEventBytes = 16u << 20;

  explicit SseTap(size_t max_event_bytes = kDefaultMaxEventBytes)
      : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`. For each event completed by them calls `on_event(const SseEvent&)`,
  // which returns true to keep (forward) the event and false to drop it. Appends the bytes
  // to forward to `out` (never clears it).
  // REQUIRES: Finish() has not been called.
  template <typename F>
  void Feed(std::string_view bytes, std::string& out, F&& on_event) {
    using Fn = std::remove_reference_t<F>;
    FeedImpl(bytes, out, const_cast<void*>(static_cast<const void*>(&on_event)),
             [](void* fn, const SseEvent& e) -> bool {
               return static_cast<bool>((*static_cast<Fn*>(fn))(e));
             });
  }

  // Ends the stream: appends any held bytes of an incomplete event to `out` (what the
  // provider sent is forwarded even when truncated) and returns true when there were any,
  // i.e. the stream ended in the middle of an event. Such an event is never dispatched.
  bool Finish(std::string& out);

  // How many events were dispatched to the callback, and how many of those were dropped.
  uint64_t events() const { return events_; }
  uint64_t dropped_events() const { return dropped_; }
  // How many blocks outgrew max_event_bytes and were passed through without dispatch.
  uint64_t oversized_events() const { return oversized_; }

 private:
  using Thunk = bool (*)(void*, const SseEvent&);

  void FeedImpl(std::string_view bytes, std::string& out, void* fn, Thunk thunk);
  // Parses one complete block and dispatches it; appends its raw bytes to `out` when kept.
  void Dispatch(std::string_view raw, std::string& out, void* fn, Thunk thunk);

  size_t max_event_bytes_;
  std::string held_;      // raw bytes of the incomplete block, when it started in an earlier feed
  std::string data_buf_;  // joined multi-line data, reused
  uint8_t bom_matched_ = 0;  // bytes of the UTF-8 BOM matched at stream start
  bool bom_done_ = false;    // past the point where a BOM may appear
  bool at_line_start_ = true;
  bool after_cr_ = false;           // the last byte fed was a CR: a following LF is its partner
  bool cr_dispatched_ = false;      // ... and that CR ended a block (already dispatched)
  bool last_kept_ = true;           // fate of the last dispatched block (for a split CRLF's LF)
  bool skip_bom_in_block_ = false;  // the current block opens with the stream's BOM
  bool passthrough_ = false;        // the current block outgrew the limit and is being streamed
  bool finished_ = false;
  uint64_t events_ = 0;
  uint64_t dropped_ = 0;
  uint64_t oversized_ = 0;
};

}  // namespace llmscope::gateway
