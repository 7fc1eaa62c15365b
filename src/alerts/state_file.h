#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alerts/rules.h"
#include "core/status.h"

namespace llmscope::alerts {

// The on-disk state of active alerts, so a restart neither re-waits `for` nor re-notifies
// or forgets firing alerts. Format: one header line
//   "llmscope-alert-state <version> <crc32c of payload, 8 hex digits> <payload bytes>\n"
// then a JSON payload {"saved_at_ms":..,"alerts":[{"group","rule","labels","annotations",
// "state","value" (Go 'g' text, so NaN and Inf survive),"active_at_ms","fired_at_ms",
// "resolved_at_ms","last_sent_at_ms","valid_until_ms","keep_firing_since_ms"}]}.
// Thread-safety: pure functions over the file system; callers serialize writes to a path.

inline constexpr int kAlertStateVersion = 1;

// Writes atomically: a temporary file next to `path`, fsync, rename over `path`, fsync of
// the directory. UNAVAILABLE naming the step that failed; `path` is then unchanged.
core::Status WriteAlertState(const std::string& path, const std::vector<PersistedAlert>& alerts,
                             int64_t saved_at_ms);

// Reads a file written by WriteAlertState. NOT_FOUND when it does not exist;
// INVALID_ARGUMENT naming the problem when it is corrupt (bad header, unknown version,
// checksum or length mismatch, malformed JSON or entry): the caller reports and ignores it.
core::Result<std::vector<PersistedAlert>> ReadAlertState(const std::string& path);

// The serialized bytes (header and payload), exposed for tests.
std::string EncodeAlertState(const std::vector<PersistedAlert>& alerts, int64_t saved_at_ms);
core::Result<std::vector<PersistedAlert>> DecodeAlertState(std::string_view bytes);

}  // namespace llmscope::alerts
