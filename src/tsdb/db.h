#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "tsdb/labels.h"

namespace llmscope::tsdb {

// Settings of a Db, fixed at Open. Every duration is wall-clock time on the injected Clock.
struct DbOptions {
  // Directory of the block files, created (with its parents) when missing. Empty: the store
  // lives in memory only and Persist does nothing.
  std::string dir;
  // How long every sample is kept at full resolution. REQUIRES: >= 2 * downsample_window.
  std::chrono::milliseconds raw_retention = std::chrono::hours(48);
  // How long the downsampled tier is kept. REQUIRES: >= raw_retention.
  std::chrono::milliseconds downsampled_retention = std::chrono::hours(24 * 35);
  // The downsampling window: the downsampled tier keeps the last sample of each window of
  // this length (aligned to the Unix epoch), plus a stale marker that ended the window.
  // REQUIRES: >= 1 s.
  std::chrono::milliseconds downsample_window = std::chrono::minutes(5);
  // A chunk is cut when it holds this many samples (raw and downsampled tiers).
  // REQUIRES: 2..65535.
  uint32_t samples_per_chunk = 120;
  // A raw chunk is also cut once it spans this long. (A downsampled chunk spans at most
  // samples_per_chunk windows.) REQUIRES: >= 1 ms.
  std::chrono::milliseconds max_chunk_span = std::chrono::hours(2);
  // The most series kept. A sample of a new series beyond it is rejected and counted
  // (DbStats::series_limit_rejected); series come back under the limit when retention
  // removes old ones. REQUIRES: >= 1.
  size_t max_series = 100'000;
  // Block files of one tier whose last sample falls in the same period (aligned to the
  // epoch) are merged into one once that period is over, so the file count stays small.
  // REQUIRES: >= 1 min.
  std::chrono::milliseconds raw_compaction_period = std::chrono::hours(6);
  std::chrono::milliseconds downsampled_compaction_period = std::chrono::hours(24);
  // Block files larger than this are refused on load (reported like a corrupt block), and
  // compaction never produces one. REQUIRES: >= 1 KiB.
  uint64_t max_block_bytes = uint64_t{1} << 30;
  // Memory for the open-chunk cache: each series' open raw chunk is also kept decoded
  // (16 bytes per sample, up to samples_per_chunk per series), so that a query of recent
  // data copies samples instead of decoding the chunk from its start. Capacity is kept
  // across chunk cuts and released when the series' open chunk expires or the series is
  // removed; once this much is held, series that need more decode their open chunk as
  // before (answers are the same either way). 0 disables the cache. README.md, "Memory".
  uint64_t open_chunk_cache_bytes = uint64_t{64} << 20;
};

// Validates options; INVALID_ARGUMENT naming every field outside its REQUIRES.
core::Status ValidateDbOptions(const DbOptions& options);

// Outcome counts of an AppendBatch.
struct AppendStats {
  uint64_t appended = 0;
  uint64_t out_of_order = 0;           // t earlier than the series' last sample
  uint64_t duplicate = 0;              // t equal to the series' last sample
  uint64_t series_limit_rejected = 0;  // new series beyond DbOptions::max_series
  uint64_t invalid = 0;                // labels not a valid Labels (see labels.h)
  uint64_t too_old = 0;                // t before the raw retention cut-off (see Append)
};

// Cumulative counters since Open, and the current series count.
struct DbStats {
  uint64_t series = 0;
  uint64_t samples_appended = 0;
  uint64_t out_of_order = 0;
  uint64_t duplicate = 0;
  uint64_t series_limit_rejected = 0;
  uint64_t invalid = 0;
  uint64_t too_old = 0;
  uint64_t series_removed = 0;      // series left without data by retention
  uint64_t chunks_expired = 0;      // chunks dropped from memory by retention
  uint64_t blocks_loaded = 0;       // valid block files read by Open
  uint64_t corrupt_blocks = 0;      // block files Open (or compaction) could not use
  uint64_t overlapping_chunks = 0;  // chunks skipped on load because they overlap others
  uint64_t blocks_written = 0;      // by Persist and compaction
  uint64_t block_write_errors = 0;
  uint64_t blocks_compacted = 0;  // source blocks merged away by compaction
  uint64_t blocks_deleted = 0;    // block files deleted by retention
};

// An estimate of the heap the head holds (see README.md, "Memory").
struct MemoryUsage {
  uint64_t series = 0;
  uint64_t samples = 0;                // samples in memory, both tiers
  uint64_t chunk_bytes = 0;            // compressed sample payload, sealed and open chunks
  uint64_t chunk_overhead_bytes = 0;   // Chunk records, shared-array headers, spare capacity
  uint64_t series_overhead_bytes = 0;  // series records, label strings, indexes
  uint64_t open_cache_bytes = 0;  // the decoded open chunks (DbOptions::open_chunk_cache_bytes)
};

// The series one query selected (Db::SelectChunks): their label sets, shared with the store,
// and references to the chunks holding their samples in the range, taken under the store's
// lock and decoded afterwards without it, straight into the caller's own sample type. Sealed
// chunks are referenced, and so is an open chunk's decoded copy when the open-chunk cache
// holds it (DbOptions::open_chunk_cache_bytes); else the open chunk's bytes are copied into
// one buffer per selection.
// Thread-safety: immutable once returned; const methods may be called concurrently.
class ChunkSelection {
 public:
  size_t size() const { return series_.size(); }
  // Series i's label set, shared with the store (immutable; kept alive by the pointer).
  const std::shared_ptr<const Labels>& labels(size_t i) const { return series_[i].labels; }
  // Moves series i's label set out (labels(i) is null afterwards): saves a reference count
  // increment and decrement per series.
  std::shared_ptr<const Labels> TakeLabels(size_t i) { return std::move(series_[i].labels); }
  // About how many samples series i has in the range (from the chunks' spans), to reserve.
  size_t EstimateSamples(size_t i) const;
  // Appends series i's samples in the range, sorted by time, stale markers included, as
  // P{t_ms, v}. A series may have none (its chunks overlap the range but no sample falls in
  // it). False if a chunk is malformed. P is Sample or promql::Point.
  template <typename P>
  bool Decode(size_t i, std::vector<P>* out) const;

  // Empties the selection, dropping its references (labels, chunks), and keeps its buffers
  // for the next Db::SelectChunksInto.
  void Clear();
  // Heap bytes of the buffers (what a reused selection keeps between queries).
  size_t BufferBytes() const;

 private:
  friend class Db;
  struct ChunkRef {
    // A sealed chunk's bytes; nullptr: an open chunk's bytes, at open_offset in
    // open_bytes_; decoded: the first of an open chunk's samples in the range, as Sample[]
    // (the open-chunk cache's buffer, kept alive in sealed_).
    const uint8_t* data;
    size_t open_offset;
    uint32_t size;
    uint32_t num_samples;
    int64_t min_t, max_t;
    int64_t from, to;  // the part of the range this chunk's tier answers for
    bool decoded;      // taken from the open-chunk cache: num_samples samples, all in range
  };
  struct Entry {
    std::shared_ptr<const Labels> labels;
    uint32_t begin, end;  // into chunks_
  };
  // Keeps sealed chunks' bytes and open-chunk cache buffers alive.
  std::vector<std::shared_ptr<const uint8_t[]>> sealed_;
  std::string open_bytes_;
  std::vector<ChunkRef> chunks_;
  std::vector<Entry> series_;
};

// A predicate on a series' labels. Called under the store's shared lock: it must be quick
// and must not call back into the Db. An empty function accepts every series.
using SeriesFilter = std::function<bool(const Labels&)>;

// Thread-safety: every method may be called from any thread. Appends take the exclusive
// lock for the duration of the append (one batch: a scrape); queries take the shared lock
// only to copy references to the chunks they need (and the bytes of open chunks), then
// decode without it, so a long query never holds up an append. Maintain and Persist take
// the exclusive lock briefly (sealing, collecting references); Persist writes files and
// compacts without it. Persist calls are serialized among themselves.
//
// The embedded time-series store (README.md has the whole story):
//   * head: series keyed by their label set, an index by metric name; each series holds
//     Gorilla-compressed chunks of two tiers, raw and downsampled.
//   * append: in order per series; an out-of-order or duplicate timestamp is rejected and
//     counted, never stored.
//   * retention: Maintain drops chunks older than each tier's retention; a query answers
//     from the raw tier where a series has raw data and from the downsampled tier before it.
//   * persistence: Persist cuts the head's new chunks into immutable, checksummed block
//     files (write-temporary, fsync, rename), merges old ones and deletes expired ones;
//     Open loads them back, reporting and skipping corrupt files. A crash loses the samples
//     appended since the last successful Persist.
class Db {
 public:
  // Validates the options, then (when options.dir is set) takes the directory's lock
  // file, removes leftover temporary files, loads every block file, and applies retention
  // as of clock.UnixNanos(). A corrupt or unreadable block is logged as an error, listed in
  // load_errors(), counted, renamed to "<name>.corrupt" (kept for inspection, never read
  // again) and skipped; the rest loads. Errors: INVALID_ARGUMENT for bad options;
  // FAILED_PRECONDITION when another Db holds the directory; INTERNAL when the directory
  // cannot be created or listed. `clock` and `logger` are borrowed and must outlive the Db.
  static core::Result<std::unique_ptr<Db>> Open(DbOptions options, const core::Clock& clock,
                                                core::Logger& logger);
  // Does not persist: call Persist first to keep the samples since the last one.
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Appends one sample. INVALID_ARGUMENT for invalid labels, an out-of-order or duplicate
  // timestamp, or a time before the raw retention cut-off of the last Maintain (such a
  // sample would be dropped at once; Prometheus calls it "out of bounds");
  // RESOURCE_EXHAUSTED for a new series beyond max_series. Each is counted.
  core::Status Append(const Labels& labels, int64_t t_ms, double v);
  // Appends samples in order under one lock acquisition; never fails as a whole.
  AppendStats AppendBatch(std::span<const LabeledSample> samples);

  // Every series whose __name__ equals `metric_name` (any series when nullopt) and which
  // `filter` accepts, with its samples in [min_ms, max_ms] sorted by time, stale markers
  // included; series without samples in the range are left out; series sorted by labels.
  // Each series answers from its raw tier from the raw retention cut-off of the last
  // Maintain (now - raw_retention) or its first raw sample, whichever is later, and from its
  // downsampled tier before that. INTERNAL if a chunk is malformed (a bug, not an input).
  core::Result<std::vector<SeriesData>> Select(std::optional<std::string_view> metric_name,
                                               const SeriesFilter& filter, int64_t min_ms,
                                               int64_t max_ms) const;
  // Select's series as references to decode later (see ChunkSelection): the same series in
  // the same order, each decoding to the samples Select returns for it; series whose chunks
  // overlap the range without a sample in it are included (and decode to none). Holds the
  // shared lock only to take the references.
  ChunkSelection SelectChunks(std::optional<std::string_view> metric_name,
                              const SeriesFilter& filter, int64_t min_ms, int64_t max_ms) const;
  // SelectChunks into `sel`, cleared first, reusing its buffers: a caller that selects again
  // and again (the rule engine, several selections per rule per evaluation) saves the
  // selection's allocations.
  void SelectChunksInto(std::optional<std::string_view> metric_name, const SeriesFilter& filter,
                        int64_t min_ms, int64_t max_ms, ChunkSelection* sel) const;
  // Label sets of the matching series with data overlapping [min_ms, max_ms] (chunk
  // granularity: a series whose chunk overlaps the range counts), sorted.
  std::vector<Labels> Series(std::optional<std::string_view> metric_name,
                             const SeriesFilter& filter,
                             int64_t min_ms = std::numeric_limits<int64_t>::min(),
                             int64_t max_ms = std::numeric_limits<int64_t>::max()) const;
  // Sorted, distinct label names / values of `name` over the series with data overlapping
  // [min_ms, max_ms] (chunk granularity).
  std::vector<std::string> LabelNames(int64_t min_ms = std::numeric_limits<int64_t>::min(),
                                      int64_t max_ms = std::numeric_limits<int64_t>::max()) const;
  std::vector<std::string> LabelValues(std::string_view name,
                                       int64_t min_ms = std::numeric_limits<int64_t>::min(),
                                       int64_t max_ms = std::numeric_limits<int64_t>::max()) const;

  // Housekeeping as of the Clock's now: closes downsampling windows that have ended,
  // drops chunks beyond each tier's retention, and removes series left without data.
  // Cheap (one pass over the series); ScrapeRunner calls it after every scrape.
  void Maintain();

  // Makes everything appended so far durable: seals the open raw chunks (and open
  // downsampled chunks older than half the raw retention), writes the chunks not yet in a
  // block as one block file per tier, then merges finished compaction periods and deletes
  // block files beyond retention. Chunks whose block failed to write stay pending for the
  // next call. OK without a directory. INTERNAL (naming the file) on a failed write; a
  // failed compaction or deletion is logged and counted only.
  core::Status Persist();

  DbStats stats() const;
  MemoryUsage memory_usage() const;
  // The block files in use, by tier then sequence number.
  std::vector<BlockMeta> blocks() const;
  // One message per block file Open could not use.
  std::vector<std::string> load_errors() const;

 private:
  struct TierData;
  struct MemSeries;

  Db(DbOptions options, const core::Clock& clock, core::Logger& logger);
  core::Status LoadBlocks();
  int64_t NowMs() const;

  MemSeries* FindLocked(const Labels& labels, uint64_t hash) const;
  MemSeries* CreateLocked(const Labels& labels, uint64_t hash);
  void RemoveLocked(MemSeries* s);
  // Appends one sample; returns which AppendStats field it counted in.
  enum class AppendOutcome { kOk, kOutOfOrder, kDuplicate, kSeriesLimit, kInvalid, kTooOld };
  AppendOutcome AppendLocked(const Labels& labels, int64_t t_ms, double v);
  // Appends to the tier's open chunk, cutting it first when full; `cache`: keep the tier's
  // decoded copy of the open chunk in step (the raw tier).
  void AppendToTier(TierData& tier, int64_t t, double v, int64_t max_span, bool cache);
  // Frees a tier's decoded open chunk and returns its bytes to the cache budget.
  void ReleaseOpenCache(TierData& tier);
  void FeedDownsampler(MemSeries& s, int64_t t, double v);
  void FlushDownsampler(MemSeries& s);
  void RebuildDownsampler(MemSeries& s);
  void MaintainLocked(int64_t now_ms);
  void Count(AppendOutcome outcome, AppendStats& stats);

  // Persist's steps, under persist_mu_.
  core::Status WriteTier(Tier tier, std::vector<std::pair<uint64_t, BlockSeries>> pending,
                         std::vector<std::pair<uint64_t, uint32_t>> acks);
  void Compact(Tier tier, int64_t now_ms);
  void DeleteExpiredBlocks(int64_t now_ms);

  const DbOptions options_;
  const core::Clock& clock_;
  core::Logger& logger_;
  int lock_fd_ = -1;

  mutable std::shared_mutex mu_;
  uint64_t next_series_id_ = 1;                                       // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, std::unique_ptr<MemSeries>> series_;   // GUARDED_BY(mu_)
  std::unordered_multimap<uint64_t, MemSeries*> by_hash_;             // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<MemSeries*>> by_name_;  // GUARDED_BY(mu_)
  // now - raw_retention as of the last Maintain: where answers switch tiers.
  int64_t raw_cutoff_ = std::numeric_limits<int64_t>::min();  // GUARDED_BY(mu_)
  // Bytes of capacity held by the decoded open chunks, at most open_chunk_cache_bytes.
  uint64_t open_cache_bytes_ = 0;  // GUARDED_BY(mu_)

  mutable std::mutex persist_mu_;         // serializes Persist; acquired before mu_, never after
  std::vector<BlockMeta> blocks_;         // GUARDED_BY(persist_mu_)
  uint64_t next_block_seq_ = 1;           // GUARDED_BY(persist_mu_)
  std::vector<std::string> load_errors_;  // written by Open only, then immutable

  struct AtomicStats {
    std::atomic<uint64_t> samples_appended{0}, out_of_order{0}, duplicate{0},
        series_limit_rejected{0}, invalid{0}, too_old{0}, series_removed{0}, chunks_expired{0},
        blocks_loaded{0}, corrupt_blocks{0}, overlapping_chunks{0}, blocks_written{0},
        block_write_errors{0}, blocks_compacted{0}, blocks_deleted{0};
  };
  mutable AtomicStats stats_;
};

}  // namespace llmscope::tsdb
