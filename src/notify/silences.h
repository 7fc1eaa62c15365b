#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "notify/alert.h"

namespace llmscope::notify {

// A silence: alerts matching every matcher are muted between starts_at and ends_at.
struct Silence {
  std::string id;  // UUID-like ("8c1f...-....-4...-....-............"); set by Silences
  Matchers matchers;
  int64_t starts_at_unix_nanos = 0;
  int64_t ends_at_unix_nanos = 0;
  int64_t updated_at_unix_nanos = 0;  // set by Silences
  std::string created_by;
  std::string comment;
};

enum class SilenceState { kPending, kActive, kExpired };
// "pending", "active", "expired": the Alertmanager v2 API's names.
std::string_view SilenceStateName(SilenceState s);
// pending: now < starts_at; active: starts_at <= now < ends_at; expired: ends_at <= now.
SilenceState StateAt(const Silence& s, int64_t now_unix_nanos);

struct SilencesOptions {
  // Where silences persist; empty keeps them in memory only. Written as <path>.tmp, fsynced
  // and renamed over <path> after every change; a corrupt file is moved to <path>.corrupt.
  std::string path;
  // How long an expired silence stays listed before GarbageCollect removes it (Alertmanager's
  // --data.retention default: 5 days).
  core::Nanos retention = std::chrono::hours(120);
};

// Thread-safety: every method is safe from any number of threads (one internal mutex; file
// writes happen under it, and silences change rarely).
//
// The silence store. Times are the Clock's wall time (UnixNanos). Every change is persisted
// at once; a failed write is logged, counted (persist_failures()) and retried by the next
// GarbageCollect, while the change stays in effect in memory.
//
// File format: one header line "llmscope-silences 1 <crc32c of payload, 8 hex> <payload
// bytes>\n", then the JSON payload (an array of silences with times in Unix nanoseconds).
class Silences {
 public:
  // `clock` and `logger` are borrowed and must outlive the store. Nothing is read until Load.
  Silences(SilencesOptions options, const core::Clock& clock, core::Logger& logger);
  Silences(const Silences&) = delete;
  Silences& operator=(const Silences&) = delete;

  // Restores the silences of options.path (a missing file is no error: nothing to restore).
  // A corrupt file (bad header, version, checksum or JSON) is moved aside to <path>.corrupt
  // and reported as INTERNAL naming the problem; the store then starts empty and stays usable.
  core::Status Load();

  // Creates a silence (s.id empty) and returns its new id, or updates silence s.id: in place
  // when it is not expired and its matchers are unchanged (same id returned), otherwise by
  // expiring the old one (when still running) and creating a new one (new id), as
  // Alertmanager does. A start in the past becomes now.
  // Errors: INVALID_ARGUMENT (no matchers; every matcher matches the empty string; ends_at
  // not after starts_at; ends_at in the past), NOT_FOUND (an unknown s.id).
  core::Result<std::string> Set(Silence s);
  // Ends a silence now (a pending one ends before it started). NOT_FOUND for an unknown id;
  // FAILED_PRECONDITION when already expired.
  core::Status Expire(const std::string& id);
  core::Result<Silence> Get(const std::string& id) const;
  // Every silence kept: active first (by ends_at), then pending (by starts_at), then expired
  // (most recently ended first), as Alertmanager's UI orders them.
  std::vector<Silence> List() const;
  // Ids of the active silences matching `labels`, sorted.
  std::vector<std::string> Mutes(const LabelSet& labels) const;
  // Removes silences expired longer than options.retention ago and retries a failed persist.
  // Returns how many were removed.
  size_t GarbageCollect();

  uint64_t persist_failures() const { return persist_failures_.load(); }

 private:
  std::string NewId();                           // REQUIRES: mu_ held
  core::Status PersistLocked();                  // REQUIRES: mu_ held
  void PersistOrRecordLocked();                  // REQUIRES: mu_ held
  core::Status Decode(const std::string& data);  // REQUIRES: mu_ held

  const SilencesOptions options_;
  const core::Clock& clock_;
  core::Logger& logger_;
  mutable std::mutex mu_;
  std::map<std::string, Silence> silences_;  // GUARDED_BY(mu_): by id
  std::mt19937_64 rng_;                      // GUARDED_BY(mu_)
  bool dirty_ = false;                       // GUARDED_BY(mu_): a persist failed
  std::atomic<uint64_t> persist_failures_{0};
};

// The silence as the Alertmanager v2 API renders it (GET /api/v2/silences element,
// GET /api/v2/silence/{id}): {"id","status":{"state"},"updatedAt","comment","createdBy",
// "endsAt","matchers":[{"isEqual","isRegex","name","value"}],"startsAt"}.
std::string RenderSilenceJson(const Silence& s, int64_t now_unix_nanos);
// A JSON array of RenderSilenceJson.
std::string RenderSilencesJson(const std::vector<Silence>& silences, int64_t now_unix_nanos);
// The body of POST /api/v2/silences' answer: {"silenceID":"<id>"}.
std::string RenderSilenceIdJson(const std::string& id);
// Parses a POST /api/v2/silences body (a postableSilence: optional "id", "matchers",
// "startsAt", "endsAt", "createdBy", "comment"; isEqual defaults to true). INVALID_ARGUMENT
// names the offending field ("matchers[1].name: ...").
core::Result<Silence> ParsePostableSilenceJson(std::string_view body);

}  // namespace llmscope::notify
