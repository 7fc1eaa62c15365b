#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <thread>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "metrics/registry.h"
#include "metrics/snapshot.h"
#include "tsdb/db.h"
#include "tsdb/labels.h"

namespace llmscope::tsdb {

// Turns a registry snapshot into samples named as Prometheus would scrape them: a counter
// family "x" gives "x_total"; a histogram "h" gives "h_bucket" (with its "le" label),
// "h_sum" and "h_count"; gauges and unknown-typed families keep their name. Labels with an
// empty value are dropped (absent, as in Prometheus); exemplars are not stored.
std::vector<LabeledSample> FamiliesToSamples(const std::vector<metrics::FamilySnapshot>& families,
                                             int64_t t_ms);

struct ScrapeStats {
  uint64_t samples = 0;        // samples in the snapshot
  uint64_t stale_markers = 0;  // series that vanished since the previous scrape
  AppendStats append;          // what the store did with both
};

// Thread-safety: Ingest/ScrapeOnce may be called from any thread; calls are serialized by
// an internal mutex (the staleness state is shared between them).
//
// Copies the metric registry into the store, one scrape at a time. Staleness as in
// Prometheus: a series present in the previous scrape and absent from this one gets a
// stale marker (StaleNaN()) at this scrape's time, so PromQL stops returning it at once
// instead of for the 5-minute lookback. The previous-scrape set lives in memory only: after
// a restart, series that vanished while the process was down get no marker (the lookback
// ends them).
class Scraper {
 public:
  // `registry` and `db` are borrowed and must outlive the scraper.
  Scraper(const metrics::Registry& registry, Db& db) : registry_(registry), db_(db) {}

  // Collects the registry and ingests it at `t_ms`.
  ScrapeStats ScrapeOnce(int64_t t_ms);
  // Ingests a snapshot at `t_ms` (the registry-independent half of ScrapeOnce).
  ScrapeStats Ingest(const std::vector<metrics::FamilySnapshot>& families, int64_t t_ms);

 private:
  const metrics::Registry& registry_;
  Db& db_;
  std::mutex mu_;
  std::unordered_set<Labels, LabelsHash> previous_;  // GUARDED_BY(mu_)
};

struct ScrapeRunnerOptions {
  // Time between scrapes on the Clock. REQUIRES: >= 1 ms.
  std::chrono::milliseconds interval = std::chrono::seconds(15);
  // Time between Db::Persist calls on the Clock (Stop persists too). At most half the raw
  // retention (see Db::Persist). REQUIRES: >= interval.
  std::chrono::milliseconds persist_interval = std::chrono::minutes(30);
  // The longest real-time wait between looks at the Clock, so a clock that jumps (a fake
  // one in tests, a suspended machine) is noticed within this. REQUIRES: >= 1 ms.
  std::chrono::milliseconds max_wait = std::chrono::seconds(1);
};

// Thread-safety: Start and Stop from one owning thread; the worker is internal.
//
// Runs the self-scrape in production: a std::jthread that scrapes every `interval`, runs
// Db::Maintain after each scrape, and Db::Persist every `persist_interval`. Timestamps are
// the scheduled times start + k * interval (not the moment the thread woke), so the
// delta-of-delta timestamp encoding costs one bit per sample; a scrape more than one
// interval late is taken at the Clock's time and the schedule restarts from there.
class ScrapeRunner {
 public:
  // All borrowed; they must outlive the runner.
  ScrapeRunner(ScrapeRunnerOptions options, Scraper& scraper, Db& db, const core::Clock& clock,
               core::Logger& logger);
  // Stops (see Stop).
  ~ScrapeRunner();
  ScrapeRunner(const ScrapeRunner&) = delete;
  ScrapeRunner& operator=(const ScrapeRunner&) = delete;

  // Takes the first scrape on the calling thread, then starts the worker.
  // INVALID_ARGUMENT for options outside their REQUIRES; FAILED_PRECONDITION when started.
  core::Status Start();
  // Stops and joins the worker (bounded by one scrape plus max_wait), then persists.
  // Returns Persist's status. Idempotent; a Stop without Start does nothing.
  core::Status Stop();

 private:
  void Run(std::stop_token stop);
  void Tick(int64_t now_ms);

  const ScrapeRunnerOptions options_;
  Scraper& scraper_;
  Db& db_;
  const core::Clock& clock_;
  core::Logger& logger_;
  // Schedule, touched by Start (before the worker exists) and then by the worker only.
  int64_t next_scrape_ms_ = 0;
  int64_t next_persist_ms_ = 0;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread worker_;
  bool started_ = false;
};

}  // namespace llmscope::tsdb
