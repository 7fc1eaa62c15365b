#include "tsdb/db.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <type_traits>
#include <utility>

namespace llmscope::tsdb {
namespace {

constexpr int64_t kMinTime = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max();
constexpr int64_t kNoWindow = kMinTime;

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if (a % b != 0 && ((a < 0) != (b < 0))) --q;
  return q;
}

// Heap bytes of a std::string beyond the object (libstdc++ keeps up to 15 chars inline).
size_t StringHeap(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

// Parses "<tier>-<20 digits>.block".
bool ParseBlockName(const std::string& name, Tier* tier, uint64_t* seq) {
  for (Tier t : {Tier::kRaw, Tier::kDownsampled}) {
    const std::string prefix = std::string(TierName(t)) + "-";
    if (name.size() == prefix.size() + 20 + 6 && name.starts_with(prefix) &&
        name.ends_with(".block")) {
      uint64_t v = 0;
      for (size_t i = prefix.size(); i < prefix.size() + 20; ++i) {
        if (name[i] < '0' || name[i] > '9') return false;
        v = v * 10 + static_cast<uint64_t>(name[i] - '0');
      }
      *tier = t;
      *seq = v;
      return true;
    }
  }
  return false;
}

// Sorts chunks by start time and drops any that overlap an earlier one; returns how many.
uint64_t SortAndDedupe(std::vector<Chunk>& chunks) {
  std::stable_sort(chunks.begin(), chunks.end(),
                   [](const Chunk& a, const Chunk& b) { return a.min_t < b.min_t; });
  std::vector<Chunk> out;
  out.reserve(chunks.size());
  uint64_t dropped = 0;
  for (Chunk& c : chunks) {
    if (!out.empty() && c.min_t <= out.back().max_t) {
      ++dropped;
      continue;
    }
    out.push_back(std::move(c));
  }
  chunks = std::move(out);
  return dropped;
}

}  // namespace

struct Db::TierData {
  std::vector<Chunk> sealed;  // sorted by time, not overlapping
  ChunkEncoder open;          // after every sealed chunk
  uint32_t unpersisted = 0;   // the last `unpersisted` sealed chunks are in no block file yet
  // The open-chunk cache (raw tier only): the open chunk's samples, decoded, in a buffer
  // shared with selections (ChunkSelection). Slots [0, decoded_n) are never written again,
  // so a selection reads the first n it saw without the lock while appends fill later slots;
  // growing or cutting the chunk starts a new buffer, and a selection keeps the old one
  // alive. Usable only while in step: decoded_n == open.num_samples(). Once an append
  // misses it (the budget is spent) it stays out of step, and queries decode the chunk's
  // bytes, until the chunk is cut. decoded_cap, in samples, is what this series holds of
  // the budget (DbOptions::open_chunk_cache_bytes), kept across cuts; `decoded` may be null
  // after a cut until the next append.
  std::shared_ptr<Sample[]> decoded;
  uint32_t decoded_n = 0;
  uint32_t decoded_cap = 0;

  bool OpenCached() const { return !open.empty() && decoded_n == open.num_samples(); }
  // Empties the open chunk. Its decoded buffer is dropped (selections may still read it);
  // the series keeps its share of the budget for the next chunk.
  void ResetOpen() {
    open.Reset();
    decoded.reset();
    decoded_n = 0;
  }

  bool empty() const { return sealed.empty() && open.empty(); }
  int64_t MinTime() const {
    if (!sealed.empty()) return sealed.front().min_t;
    return open.empty() ? kMaxTime : open.min_t();
  }
  int64_t MaxTime() const {
    if (!open.empty()) return open.max_t();
    return sealed.empty() ? kMinTime : sealed.back().max_t;
  }
  bool Overlaps(int64_t lo, int64_t hi) const {
    return !empty() && MinTime() <= hi && MaxTime() >= lo;
  }
  // References to the chunks overlapping [lo, hi]; the open chunk as a sealed copy.
  void Collect(int64_t lo, int64_t hi, std::vector<Chunk>& out) const {
    if (lo > hi) return;
    auto it = std::lower_bound(sealed.begin(), sealed.end(), lo,
                               [](const Chunk& c, int64_t t) { return c.max_t < t; });
    for (; it != sealed.end() && it->min_t <= hi; ++it) out.push_back(*it);
    if (!open.empty() && open.min_t() <= hi && open.max_t() >= lo) out.push_back(open.Seal());
  }
};

struct Db::MemSeries {
  uint64_t id = 0;
  uint64_t hash = 0;
  // Shared with query answers (ChunkSelection), which may outlive the series; never null.
  std::shared_ptr<const Labels> labels;
  int64_t last_t = kMinTime;
  TierData raw;
  TierData ds;
  // The downsampling window being collected (kNoWindow: none): its last real sample, and
  // whether a stale marker came after it.
  int64_t pend_window = kNoWindow;
  bool pend_real = false;
  bool pend_stale = false;
  Sample pend_sample;
  int64_t pend_stale_t = 0;
};

core::Status ValidateDbOptions(const DbOptions& o) {
  std::string problems;
  auto bad = [&problems](std::string_view what) {
    if (!problems.empty()) problems += "; ";
    problems += what;
  };
  if (o.downsample_window < std::chrono::seconds(1)) bad("downsample_window must be >= 1s");
  if (o.raw_retention < 2 * o.downsample_window) {
    bad("raw_retention must be >= 2 * downsample_window");
  }
  if (o.downsampled_retention < o.raw_retention) {
    bad("downsampled_retention must be >= raw_retention");
  }
  if (o.samples_per_chunk < 2 || o.samples_per_chunk > ChunkEncoder::kMaxSamples) {
    bad("samples_per_chunk must be in 2..65535");
  }
  if (o.max_chunk_span < std::chrono::milliseconds(1)) bad("max_chunk_span must be >= 1ms");
  if (o.max_series < 1) bad("max_series must be >= 1");
  if (o.raw_compaction_period < std::chrono::minutes(1) ||
      o.downsampled_compaction_period < std::chrono::minutes(1)) {
    bad("compaction periods must be >= 1m");
  }
  if (o.max_block_bytes < 1024) bad("max_block_bytes must be >= 1024");
  if (!problems.empty()) return core::InvalidArgument("tsdb options: " + problems);
  return core::Status::Ok();
}

Db::Db(DbOptions options, const core::Clock& clock, core::Logger& logger)
    : options_(std::move(options)), clock_(clock), logger_(logger) {}

Db::~Db() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

core::Result<std::unique_ptr<Db>> Db::Open(DbOptions options, const core::Clock& clock,
                                           core::Logger& logger) {
  if (auto s = ValidateDbOptions(options); !s.ok()) return s;
  std::unique_ptr<Db> db(new Db(std::move(options), clock, logger));
  if (!db->options_.dir.empty()) {
    if (auto s = db->LoadBlocks(); !s.ok()) return s;
  }
  std::unique_lock lock(db->mu_);
  db->MaintainLocked(db->NowMs());
  return db;
}

int64_t Db::NowMs() const { return FloorDiv(clock_.UnixNanos(), 1'000'000); }

core::Status Db::LoadBlocks() {
  namespace fs = std::filesystem;
  const std::string& dir = options_.dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return core::Internal("create directory " + dir + ": " + ec.message());
  const std::string lock_path = dir + "/LOCK";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return core::Internal("open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return core::FailedPrecondition("tsdb directory " + dir + " is in use by another store");
  }

  struct Found {
    std::string path;
    Tier tier;
    uint64_t seq;
  };
  std::vector<Found> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.ends_with(".tmp")) {
      // A block write cut short by a crash: its rename never happened, nothing refers to it.
      fs::remove(it->path(), ec);
      ec.clear();
      continue;
    }
    Tier tier;
    uint64_t seq;
    if (ParseBlockName(name, &tier, &seq)) found.push_back({it->path().string(), tier, seq});
  }
  if (ec) return core::Internal("list directory " + dir + ": " + ec.message());
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.seq < b.seq; });

  std::vector<std::pair<Block, BlockMeta>> loaded;
  std::set<uint64_t> superseded;
  for (const Found& f : found) {
    next_block_seq_ = std::max(next_block_seq_, f.seq + 1);
    auto block = ReadBlockFile(f.path, options_.max_block_bytes);
    std::string error;
    if (!block.ok()) {
      error = block.status().message();
    } else if (block->tier != f.tier || block->seq != f.seq) {
      error = f.path + ": header names another tier or sequence number than the file name";
    }
    if (!error.empty()) {
      stats_.corrupt_blocks++;
      load_errors_.push_back(error);
      logger_.Error("tsdb: skipping unusable block file", {{"error", error}});
      fs::rename(f.path, f.path + ".corrupt", ec);
      ec.clear();
      continue;
    }
    BlockMeta meta{f.path,           f.tier,           f.seq,
                   block->MinTime(), block->MaxTime(), fs::file_size(f.path, ec),
                   block->sources};
    ec.clear();
    superseded.insert(block->sources.begin(), block->sources.end());
    loaded.emplace_back(std::move(block).value(), std::move(meta));
  }

  std::unique_lock lock(mu_);
  for (auto& [block, meta] : loaded) {
    if (superseded.contains(block.seq)) {
      // Compaction wrote the merged block but died before deleting this source.
      fs::remove(meta.path, ec);
      ec.clear();
      continue;
    }
    stats_.blocks_loaded++;
    for (BlockSeries& bs : block.series) {
      const uint64_t hash = HashLabels(bs.labels);
      MemSeries* s = FindLocked(bs.labels, hash);
      if (s == nullptr) s = CreateLocked(bs.labels, hash);
      if (s == nullptr) {
        stats_.series_limit_rejected++;
        continue;
      }
      TierData& tier = block.tier == Tier::kRaw ? s->raw : s->ds;
      for (Chunk& c : bs.chunks) tier.sealed.push_back(std::move(c));
    }
    blocks_.push_back(std::move(meta));
  }
  for (auto& [id, s] : series_) {
    stats_.overlapping_chunks += SortAndDedupe(s->raw.sealed);
    stats_.overlapping_chunks += SortAndDedupe(s->ds.sealed);
    s->last_t = std::max(s->raw.MaxTime(), s->ds.MaxTime());
    RebuildDownsampler(*s);
  }
  return core::Status::Ok();
}

Db::MemSeries* Db::FindLocked(const Labels& labels, uint64_t hash) const {
  auto [begin, end] = by_hash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    if (*it->second->labels == labels) return it->second;
  }
  return nullptr;
}

Db::MemSeries* Db::CreateLocked(const Labels& labels, uint64_t hash) {
  if (series_.size() >= options_.max_series) return nullptr;
  auto s = std::make_unique<MemSeries>();
  s->id = next_series_id_++;
  s->hash = hash;
  s->labels = std::make_shared<const Labels>(labels.begin(), labels.end());  // sized exactly
  MemSeries* raw = s.get();
  by_hash_.emplace(hash, raw);
  const std::string_view name = GetLabel(labels, kMetricNameLabel);
  if (!name.empty()) {
    // Kept sorted by labels, so that Select by name returns series in order without sorting
    // them per query. New series usually sort last (they arrive in a scrape's order); an
    // insertion elsewhere moves the pointers after it, once per new series.
    auto& list = by_name_[std::string(name)];
    auto at = list.end();
    if (!list.empty() && *raw->labels < *list.back()->labels) {
      at = std::upper_bound(
          list.begin(), list.end(), raw,
          [](const MemSeries* a, const MemSeries* b) { return *a->labels < *b->labels; });
    }
    list.insert(at, raw);
  }
  series_.emplace(raw->id, std::move(s));
  return raw;
}

void Db::RemoveLocked(MemSeries* s) {
  auto [begin, end] = by_hash_.equal_range(s->hash);
  for (auto it = begin; it != end; ++it) {
    if (it->second == s) {
      by_hash_.erase(it);
      break;
    }
  }
  const std::string_view name = GetLabel(*s->labels, kMetricNameLabel);
  if (!name.empty()) {
    auto it = by_name_.find(std::string(name));
    if (it != by_name_.end()) {
      std::erase(it->second, s);
      if (it->second.empty()) by_name_.erase(it);
    }
  }
  stats_.series_removed++;
  ReleaseOpenCache(s->raw);
  series_.erase(s->id);
}

void Db::AppendToTier(TierData& tier, int64_t t, double v, int64_t max_span, bool cache) {
  if (t <= tier.MaxTime()) return;  // cannot happen for callers that keep order; never corrupt
  if (!tier.open.empty() && (tier.open.num_samples() >= options_.samples_per_chunk ||
                             // t > min_t, so the unsigned difference is exact.
                             static_cast<uint64_t>(t) - static_cast<uint64_t>(tier.open.min_t()) >=
                                 static_cast<uint64_t>(max_span))) {
    tier.sealed.push_back(tier.open.Seal());
    ++tier.unpersisted;
    tier.ResetOpen();
  }
  const bool in_step = tier.decoded_n == tier.open.num_samples();
  tier.open.Append(t, v);
  if (!cache || !in_step) return;
  if (tier.decoded == nullptr || tier.decoded_n == tier.decoded_cap) {
    uint32_t cap = tier.decoded_cap;
    if (tier.decoded_n == cap) {
      // Doubling from 8, capped at a chunk's most samples: a series holds at most
      // samples_per_chunk * 16 bytes, and reaches it after a few chunks' growth.
      cap = std::min<uint32_t>(std::max<uint32_t>(8, 2 * cap), options_.samples_per_chunk);
      const uint64_t more = uint64_t{cap - tier.decoded_cap} * sizeof(Sample);
      if (cap <= tier.decoded_n || open_cache_bytes_ + more > options_.open_chunk_cache_bytes) {
        return;  // over budget: this chunk is decoded per query, as without the cache
      }
      open_cache_bytes_ += more;
      tier.decoded_cap = cap;
    }
    // A new buffer, never a write into one a selection may hold (see TierData::decoded).
    auto grown = std::make_shared_for_overwrite<Sample[]>(cap);
    std::copy_n(tier.decoded.get(), tier.decoded_n, grown.get());
    tier.decoded = std::move(grown);
  }
  tier.decoded[tier.decoded_n++] = Sample{t, v};
}

void Db::ReleaseOpenCache(TierData& tier) {
  open_cache_bytes_ -= uint64_t{tier.decoded_cap} * sizeof(Sample);
  tier.decoded.reset();
  tier.decoded_n = 0;
  tier.decoded_cap = 0;
}

void Db::FeedDownsampler(MemSeries& s, int64_t t, double v) {
  const int64_t w = FloorDiv(t, options_.downsample_window.count());
  if (s.pend_window != kNoWindow && w != s.pend_window) FlushDownsampler(s);
  s.pend_window = w;
  if (IsStaleNaN(v)) {
    s.pend_stale = true;
    s.pend_stale_t = t;
  } else {
    s.pend_real = true;
    s.pend_sample = {t, v};
    s.pend_stale = false;
  }
}

void Db::FlushDownsampler(MemSeries& s) {
  const int64_t span = options_.downsample_window.count() * options_.samples_per_chunk;
  if (s.pend_real) AppendToTier(s.ds, s.pend_sample.t_ms, s.pend_sample.v, span, false);
  if (s.pend_stale) AppendToTier(s.ds, s.pend_stale_t, StaleNaN(), span, false);
  s.pend_window = kNoWindow;
  s.pend_real = false;
  s.pend_stale = false;
}

void Db::RebuildDownsampler(MemSeries& s) {
  // The open downsampled chunk and the window being collected are never written to disk:
  // they are derived again from the raw samples after the last persisted downsampled one.
  const int64_t window = options_.downsample_window.count();
  const int64_t last_ds = s.ds.MaxTime();
  const int64_t from = last_ds == kMinTime ? kMinTime : (FloorDiv(last_ds, window) + 1) * window;
  for (const Chunk& c : s.raw.sealed) {
    if (c.max_t < from) continue;
    ChunkIterator it(c);
    while (it.Next()) {
      if (it.t() >= from) FeedDownsampler(s, it.t(), it.v());
    }
  }
}

Db::AppendOutcome Db::AppendLocked(const Labels& labels, int64_t t_ms, double v) {
  if (!IsValidLabels(labels)) return AppendOutcome::kInvalid;
  if (t_ms < raw_cutoff_) return AppendOutcome::kTooOld;
  const uint64_t hash = HashLabels(labels);
  MemSeries* s = FindLocked(labels, hash);
  if (s == nullptr) {
    s = CreateLocked(labels, hash);
    if (s == nullptr) return AppendOutcome::kSeriesLimit;
  }
  if (t_ms == s->last_t) return AppendOutcome::kDuplicate;
  if (t_ms < s->last_t) return AppendOutcome::kOutOfOrder;
  AppendToTier(s->raw, t_ms, v, options_.max_chunk_span.count(), true);
  s->last_t = t_ms;
  FeedDownsampler(*s, t_ms, v);
  return AppendOutcome::kOk;
}

void Db::Count(AppendOutcome outcome, AppendStats& st) {
  switch (outcome) {
    case AppendOutcome::kOk:
      st.appended++;
      stats_.samples_appended++;
      break;
    case AppendOutcome::kOutOfOrder:
      st.out_of_order++;
      stats_.out_of_order++;
      break;
    case AppendOutcome::kDuplicate:
      st.duplicate++;
      stats_.duplicate++;
      break;
    case AppendOutcome::kSeriesLimit:
      st.series_limit_rejected++;
      stats_.series_limit_rejected++;
      break;
    case AppendOutcome::kInvalid:
      st.invalid++;
      stats_.invalid++;
      break;
    case AppendOutcome::kTooOld:
      st.too_old++;
      stats_.too_old++;
      break;
  }
}

core::Status Db::Append(const Labels& labels, int64_t t_ms, double v) {
  AppendStats st;
  AppendOutcome outcome;
  {
    std::unique_lock lock(mu_);
    outcome = AppendLocked(labels, t_ms, v);
  }
  Count(outcome, st);
  switch (outcome) {
    case AppendOutcome::kOk:
      return core::Status::Ok();
    case AppendOutcome::kOutOfOrder:
      return core::InvalidArgument("out of order sample for " + LabelsToString(labels));
    case AppendOutcome::kDuplicate:
      return core::InvalidArgument("duplicate sample timestamp for " + LabelsToString(labels));
    case AppendOutcome::kSeriesLimit:
      return {core::StatusCode::kResourceExhausted,
              "series limit of " + std::to_string(options_.max_series) + " reached"};
    case AppendOutcome::kTooOld:
      return core::InvalidArgument("sample older than the raw retention for " +
                                   LabelsToString(labels));
    case AppendOutcome::kInvalid:
      break;
  }
  return core::InvalidArgument("invalid label set " + LabelsToString(labels));
}

AppendStats Db::AppendBatch(std::span<const LabeledSample> samples) {
  AppendStats st;
  std::unique_lock lock(mu_);
  for (const LabeledSample& s : samples) Count(AppendLocked(s.labels, s.t_ms, s.v), st);
  return st;
}

size_t ChunkSelection::EstimateSamples(size_t i) const {
  double n = 0;
  for (uint32_t k = series_[i].begin; k < series_[i].end; ++k) {
    const ChunkRef& c = chunks_[k];
    if (c.from <= c.min_t && c.max_t <= c.to) {
      n += c.num_samples;
    } else {
      // The share of the chunk's span inside the range, assuming even spacing, plus slack.
      const double span = static_cast<double>(c.max_t) - static_cast<double>(c.min_t);
      const double in = static_cast<double>(std::min(c.max_t, c.to)) -
                        static_cast<double>(std::max(c.min_t, c.from));
      n +=
          span > 0 ? std::min<double>(c.num_samples, c.num_samples * in / span + 2) : c.num_samples;
    }
  }
  return static_cast<size_t>(n);
}

template <typename P>
bool ChunkSelection::Decode(size_t i, std::vector<P>* out) const {
  // Callers decode series in order, and then read each series' labels (grouping hashes
  // them): start loading the label pairs two series ahead (a pair is 64 bytes, scattered on
  // the heap with its set; the set's header was prefetched by SelectChunks) and the next
  // series' chunks.
  if (i + 2 < series_.size() && series_[i + 2].labels != nullptr) {
    const Labels& ahead = *series_[i + 2].labels;
    const auto* p = reinterpret_cast<const char*>(ahead.data());
    const size_t bytes = std::min<size_t>(ahead.size() * sizeof(Label), 512);
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
  }
  if (i + 1 < series_.size()) {
    for (uint32_t k = series_[i + 1].begin; k < series_[i + 1].end; ++k) {
      const ChunkRef& c = chunks_[k];
      if (c.data == nullptr) continue;
      __builtin_prefetch(c.data);
      if (c.decoded) {
        // Copied whole, so every line of it (a [5m] window at 15 s: 5 or 6 lines).
        const auto* p = reinterpret_cast<const char*>(c.data);
        const size_t bytes = std::min<size_t>(c.num_samples * sizeof(Sample), 1024);
        for (size_t off = 64; off < bytes; off += 64) __builtin_prefetch(p + off);
      }
    }
  }
  for (uint32_t k = series_[i].begin; k < series_[i].end; ++k) {
    const ChunkRef& c = chunks_[k];
    if (c.decoded) {
      const auto* from = reinterpret_cast<const Sample*>(c.data);
      if constexpr (std::is_same_v<P, Sample>) {
        out->insert(out->end(), from, from + c.num_samples);
      } else {
        const size_t base = out->size();
        out->resize(base + c.num_samples);
        P* to = out->data() + base;
        for (uint32_t j = 0; j < c.num_samples; ++j) to[j] = P{from[j].t_ms, from[j].v};
      }
      continue;
    }
    const char* data = c.data != nullptr ? reinterpret_cast<const char*>(c.data)
                                         : open_bytes_.data() + c.open_offset;
    ChunkIterator it(std::string_view(data, c.size), c.num_samples);
    if (!it.AppendRange(c.from, c.to, out)) return false;
  }
  return true;
}

template bool ChunkSelection::Decode(size_t, std::vector<Sample>*) const;
template bool ChunkSelection::Decode(size_t, std::vector<promql::Point>*) const;

void ChunkSelection::Clear() {
  sealed_.clear();
  open_bytes_.clear();
  chunks_.clear();
  series_.clear();
}

size_t ChunkSelection::BufferBytes() const {
  return sealed_.capacity() * sizeof(sealed_[0]) + open_bytes_.capacity() +
         chunks_.capacity() * sizeof(ChunkRef) + series_.capacity() * sizeof(Entry);
}

ChunkSelection Db::SelectChunks(std::optional<std::string_view> metric_name,
                                const SeriesFilter& filter, int64_t min_ms, int64_t max_ms) const {
  ChunkSelection sel;
  SelectChunksInto(metric_name, filter, min_ms, max_ms, &sel);
  return sel;
}

void Db::SelectChunksInto(std::optional<std::string_view> metric_name, const SeriesFilter& filter,
                          int64_t min_ms, int64_t max_ms, ChunkSelection* out) const {
  out->Clear();
  ChunkSelection& sel = *out;
  if (min_ms > max_ms) return;
  // References to the chunks of `tier` overlapping [lo, hi], which answer for that part.
  auto add_tier = [&sel](const TierData& tier, int64_t lo, int64_t hi) {
    if (lo > hi) return;
    // Most queries read only the newest data: the last sealed chunk tells without a search.
    auto it = tier.sealed.end();
    if (!tier.sealed.empty() && tier.sealed.back().max_t >= lo) {
      it = std::lower_bound(tier.sealed.begin(), tier.sealed.end(), lo,
                            [](const Chunk& c, int64_t t) { return c.max_t < t; });
    }
    for (; it != tier.sealed.end() && it->min_t <= hi; ++it) {
      sel.sealed_.push_back(it->data);
      sel.chunks_.push_back(
          {it->data.get(), 0, it->size, it->num_samples, it->min_t, it->max_t, lo, hi, false});
    }
    const ChunkEncoder& open = tier.open;
    if (!open.empty() && open.min_t() <= hi && open.max_t() >= lo) {
      // The open chunk changes with the next append. Cached: the selection shares the
      // decoded buffer and reads the samples in the range, nothing to decode (appends write
      // only past them, see TierData::decoded). Else the chunk's bytes are copied into one
      // buffer for the whole query and decoded from their start.
      if (tier.OpenCached()) {
        const Sample* d = tier.decoded.get();
        const Sample* end = d + tier.decoded_n;
        auto by_time = [](const Sample& x, int64_t t) { return x.t_ms < t; };
        // Most queries want the newest samples: search only where the range ends inside.
        const Sample* first = d->t_ms >= lo ? d : std::lower_bound(d, end, lo, by_time);
        const Sample* last =
            end[-1].t_ms <= hi ? end : std::lower_bound(first, end, hi + 1, by_time);
        const auto n = static_cast<uint32_t>(last - first);
        if (n > 0) {
          // Shares the buffer's ownership: the selection reads it after the lock is released.
          sel.sealed_.emplace_back(tier.decoded, reinterpret_cast<const uint8_t*>(d));
        }
        sel.chunks_.push_back({reinterpret_cast<const uint8_t*>(first), 0, 0, n,
                               n > 0 ? first->t_ms : lo, n > 0 ? last[-1].t_ms : lo, lo, hi, true});
      } else {
        const std::string_view bytes = open.bytes();
        sel.chunks_.push_back({nullptr, sel.open_bytes_.size(), static_cast<uint32_t>(bytes.size()),
                               open.num_samples(), open.min_t(), open.max_t(), lo, hi, false});
        sel.open_bytes_.append(bytes);
      }
    }
  };
  {
    std::shared_lock lock(mu_);
    auto visit = [&](const MemSeries& s) {
      if (filter && !filter(*s.labels)) return;
      const auto begin = static_cast<uint32_t>(sel.chunks_.size());
      // The tier boundary: raw data from the retention cut-off (or the series' first raw
      // sample, if later) on; the downsampled tier before it. A fixed cut-off rather than
      // the first retained raw chunk keeps answers independent of how chunks were cut.
      const int64_t raw_start = std::max(s.raw.MinTime(), raw_cutoff_);
      if (raw_start > min_ms) add_tier(s.ds, min_ms, std::min(max_ms, raw_start - 1));
      add_tier(s.raw, std::max(min_ms, raw_start), max_ms);
      const auto end = static_cast<uint32_t>(sel.chunks_.size());
      if (begin != end) sel.series_.push_back({s.labels, begin, end});
    };
    if (metric_name.has_value()) {
      auto it = by_name_.find(std::string(*metric_name));
      if (it != by_name_.end()) {
        const std::vector<MemSeries*>& list = it->second;
        sel.series_.reserve(list.size());
        sel.chunks_.reserve(list.size());
        // Series records lie scattered on the heap, and each visit follows three pointers
        // from one (labels, sealed chunks, open chunk): prefetching records a few series
        // ahead, and what they point to a little later, hides most of the cache misses.
        constexpr size_t kRecordAhead = 8, kDataAhead = 4;
        for (size_t k = 0; k < list.size(); ++k) {
          if (k + kRecordAhead < list.size()) {
            const char* r = reinterpret_cast<const char*>(list[k + kRecordAhead]);
            for (size_t off = 0; off < sizeof(MemSeries); off += 64) __builtin_prefetch(r + off);
          }
          if (k + kDataAhead < list.size()) {
            const MemSeries& ahead = *list[k + kDataAhead];
            __builtin_prefetch(ahead.labels.get());
            if (!ahead.raw.sealed.empty()) {
              __builtin_prefetch(&ahead.raw.sealed.front());  // MinTime
              __builtin_prefetch(&ahead.raw.sealed.back());
            }
            if (ahead.raw.OpenCached()) {
              // The buffer's control block (shared below) with its first samples, and its
              // newest sample, which tells whether the range ends before it.
              __builtin_prefetch(ahead.raw.decoded.get());
              __builtin_prefetch(ahead.raw.decoded.get() + ahead.raw.decoded_n - 1);
            } else {
              __builtin_prefetch(ahead.raw.open.bytes().data());
            }
          }
          visit(*list[k]);
        }
      }
    } else {
      for (const auto& [id, s] : series_) visit(*s);
    }
  }
  // A name's index list is in label order already (see CreateLocked).
  if (!metric_name.has_value()) {
    std::sort(sel.series_.begin(), sel.series_.end(),
              [](const ChunkSelection::Entry& a, const ChunkSelection::Entry& b) {
                return *a.labels < *b.labels;
              });
  }
}

core::Result<std::vector<SeriesData>> Db::Select(std::optional<std::string_view> metric_name,
                                                 const SeriesFilter& filter, int64_t min_ms,
                                                 int64_t max_ms) const {
  const ChunkSelection sel = SelectChunks(metric_name, filter, min_ms, max_ms);
  // Decoding happens without the lock: the chunks are immutable and referenced.
  std::vector<SeriesData> out;
  out.reserve(sel.size());
  for (size_t i = 0; i < sel.size(); ++i) {
    SeriesData sd;
    sd.samples.reserve(sel.EstimateSamples(i));
    if (!sel.Decode(i, &sd.samples)) {
      return core::Internal("malformed chunk in series " + LabelsToString(*sel.labels(i)));
    }
    if (sd.samples.empty()) continue;
    sd.labels = *sel.labels(i);
    out.push_back(std::move(sd));
  }
  return out;
}

std::vector<Labels> Db::Series(std::optional<std::string_view> metric_name,
                               const SeriesFilter& filter, int64_t min_ms, int64_t max_ms) const {
  std::vector<Labels> out;
  {
    std::shared_lock lock(mu_);
    auto visit = [&](const MemSeries& s) {
      if (!s.raw.Overlaps(min_ms, max_ms) && !s.ds.Overlaps(min_ms, max_ms)) return;
      if (filter && !filter(*s.labels)) return;
      out.push_back(*s.labels);
    };
    if (metric_name.has_value()) {
      auto it = by_name_.find(std::string(*metric_name));
      if (it != by_name_.end()) {
        for (const MemSeries* s : it->second) visit(*s);
      }
    } else {
      for (const auto& [id, s] : series_) visit(*s);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Db::LabelNames(int64_t min_ms, int64_t max_ms) const {
  std::set<std::string, std::less<>> names;
  std::shared_lock lock(mu_);
  for (const auto& [id, s] : series_) {
    if (!s->raw.Overlaps(min_ms, max_ms) && !s->ds.Overlaps(min_ms, max_ms)) continue;
    for (const Label& l : *s->labels) {
      if (!names.contains(l.name)) names.insert(l.name);
    }
  }
  return {names.begin(), names.end()};
}

std::vector<std::string> Db::LabelValues(std::string_view name, int64_t min_ms,
                                         int64_t max_ms) const {
  std::set<std::string, std::less<>> values;
  std::shared_lock lock(mu_);
  for (const auto& [id, s] : series_) {
    if (!s->raw.Overlaps(min_ms, max_ms) && !s->ds.Overlaps(min_ms, max_ms)) continue;
    const std::string_view v = GetLabel(*s->labels, name);
    if (!v.empty() && !values.contains(v)) values.emplace(v);
  }
  return {values.begin(), values.end()};
}

void Db::Maintain() {
  const int64_t now = NowMs();
  std::unique_lock lock(mu_);
  MaintainLocked(now);
}

void Db::MaintainLocked(int64_t now_ms) {
  const int64_t window = options_.downsample_window.count();
  const int64_t raw_cut = now_ms - options_.raw_retention.count();
  const int64_t ds_cut = now_ms - options_.downsampled_retention.count();
  raw_cutoff_ = std::max(raw_cutoff_, raw_cut);
  auto expire = [this](TierData& tier, int64_t cut) {
    auto it = std::find_if(tier.sealed.begin(), tier.sealed.end(),
                           [cut](const Chunk& c) { return c.max_t >= cut; });
    const auto n = static_cast<uint64_t>(it - tier.sealed.begin());
    if (n > 0) {
      tier.sealed.erase(tier.sealed.begin(), it);
      stats_.chunks_expired += n;
      tier.unpersisted = std::min<uint32_t>(tier.unpersisted, tier.sealed.size());
    }
    if (!tier.open.empty() && tier.open.max_t() < cut) {
      // The series has been idle for the whole retention: give its cache memory back.
      tier.open.Reset();
      ReleaseOpenCache(tier);
      stats_.chunks_expired++;
    }
  };
  std::vector<MemSeries*> dead;
  for (auto& [id, sp] : series_) {
    MemSeries& s = *sp;
    // A window is closed once the clock has passed its end: no in-order sample can
    // belong to it any more (the scraper stamps samples with the clock).
    if (s.pend_window != kNoWindow && now_ms >= (s.pend_window + 1) * window) {
      FlushDownsampler(s);
    }
    expire(s.raw, raw_cut);
    expire(s.ds, ds_cut);
    if (s.raw.empty() && s.ds.empty() && s.pend_window == kNoWindow) dead.push_back(&s);
  }
  for (MemSeries* s : dead) RemoveLocked(s);
}

core::Status Db::Persist() {
  std::lock_guard persist_lock(persist_mu_);
  if (options_.dir.empty()) return core::Status::Ok();
  const int64_t now = NowMs();
  using Pending = std::vector<std::pair<uint64_t, BlockSeries>>;
  using Acks = std::vector<std::pair<uint64_t, uint32_t>>;
  Pending raw_pending, ds_pending;
  Acks raw_acks, ds_acks;
  {
    std::unique_lock lock(mu_);
    const int64_t ds_seal_before = now - options_.raw_retention.count() / 2;
    auto seal = [](TierData& tier) {
      tier.sealed.push_back(tier.open.Seal());
      ++tier.unpersisted;
      tier.ResetOpen();
    };
    auto collect = [](const MemSeries& s, const TierData& tier, Pending& pending, Acks& acks) {
      if (tier.unpersisted == 0) return;
      BlockSeries bs;
      bs.labels = *s.labels;
      bs.chunks.assign(tier.sealed.end() - tier.unpersisted, tier.sealed.end());
      pending.emplace_back(s.id, std::move(bs));
      acks.emplace_back(s.id, tier.unpersisted);
    };
    for (auto& [id, sp] : series_) {
      MemSeries& s = *sp;
      if (!s.raw.open.empty()) seal(s.raw);
      // The open downsampled chunk is rebuilt from raw samples on load (RebuildDownsampler)
      // as long as those are retained; past half the raw retention it is sealed and written.
      if (!s.ds.open.empty() && s.ds.open.min_t() < ds_seal_before) seal(s.ds);
      collect(s, s.raw, raw_pending, raw_acks);
      collect(s, s.ds, ds_pending, ds_acks);
    }
  }
  core::Status first = WriteTier(Tier::kDownsampled, std::move(ds_pending), std::move(ds_acks));
  core::Status raw = WriteTier(Tier::kRaw, std::move(raw_pending), std::move(raw_acks));
  if (first.ok()) first = std::move(raw);
  Compact(Tier::kRaw, now);
  Compact(Tier::kDownsampled, now);
  DeleteExpiredBlocks(now);
  return first;
}

core::Status Db::WriteTier(Tier tier, std::vector<std::pair<uint64_t, BlockSeries>> pending,
                           std::vector<std::pair<uint64_t, uint32_t>> acks) {
  if (pending.empty()) return core::Status::Ok();
  Block block;
  block.tier = tier;
  block.seq = next_block_seq_++;
  block.series.reserve(pending.size());
  for (auto& [id, bs] : pending) block.series.push_back(std::move(bs));
  std::sort(block.series.begin(), block.series.end(),
            [](const BlockSeries& a, const BlockSeries& b) { return a.labels < b.labels; });
  BlockMeta meta;
  if (auto s = WriteBlockFile(options_.dir, block, &meta); !s.ok()) {
    stats_.block_write_errors++;
    logger_.Error("tsdb: writing a block failed; its chunks stay pending",
                  {{"tier", TierName(tier)}, {"error", s.message()}});
    return s;
  }
  stats_.blocks_written++;
  blocks_.push_back(std::move(meta));
  std::unique_lock lock(mu_);
  for (auto [id, n] : acks) {
    auto it = series_.find(id);
    if (it == series_.end()) continue;
    TierData& t = tier == Tier::kRaw ? it->second->raw : it->second->ds;
    t.unpersisted -= std::min(n, t.unpersisted);
  }
  return core::Status::Ok();
}

void Db::Compact(Tier tier, int64_t now_ms) {
  namespace fs = std::filesystem;
  const int64_t period =
      (tier == Tier::kRaw ? options_.raw_compaction_period : options_.downsampled_compaction_period)
          .count();
  std::map<int64_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (blocks_[i].tier == tier) groups[FloorDiv(blocks_[i].max_t, period)].push_back(i);
  }
  std::set<size_t> remove;
  std::vector<BlockMeta> added;
  for (const auto& [group, idxs] : groups) {
    if (idxs.size() < 2 || (group + 1) * period > now_ms) continue;
    uint64_t total = 0;
    for (size_t i : idxs) total += blocks_[i].bytes;
    if (total > options_.max_block_bytes) continue;
    std::map<Labels, std::vector<Chunk>> merged;
    Block out;
    out.tier = tier;
    bool ok = true;
    for (size_t i : idxs) {
      auto b = ReadBlockFile(blocks_[i].path, options_.max_block_bytes);
      if (!b.ok()) {
        // The file changed under us since Open: stop using it, keep it for inspection.
        stats_.corrupt_blocks++;
        logger_.Error("tsdb: block unreadable during compaction; dropped",
                      {{"error", b.status().message()}});
        std::error_code ec;
        fs::rename(blocks_[i].path, blocks_[i].path + ".corrupt", ec);
        remove.insert(i);
        ok = false;
        continue;
      }
      out.sources.push_back(blocks_[i].seq);
      for (BlockSeries& bs : b->series) {
        auto& list = merged[bs.labels];
        for (Chunk& c : bs.chunks) list.push_back(std::move(c));
      }
    }
    if (!ok) continue;
    for (auto& [labels, chunks] : merged) {
      SortAndDedupe(chunks);
      out.series.push_back({labels, std::move(chunks)});
    }
    out.seq = next_block_seq_++;
    BlockMeta meta;
    if (auto s = WriteBlockFile(options_.dir, out, &meta); !s.ok()) {
      stats_.block_write_errors++;
      logger_.Warn("tsdb: compaction write failed; sources kept", {{"error", s.message()}});
      continue;
    }
    stats_.blocks_written++;
    for (size_t i : idxs) {
      std::error_code ec;
      fs::remove(blocks_[i].path, ec);
      remove.insert(i);
      stats_.blocks_compacted++;
    }
    added.push_back(std::move(meta));
  }
  std::vector<BlockMeta> kept;
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (!remove.contains(i)) kept.push_back(std::move(blocks_[i]));
  }
  for (BlockMeta& m : added) kept.push_back(std::move(m));
  blocks_ = std::move(kept);
}

void Db::DeleteExpiredBlocks(int64_t now_ms) {
  std::vector<BlockMeta> kept;
  for (BlockMeta& m : blocks_) {
    const auto retention =
        m.tier == Tier::kRaw ? options_.raw_retention : options_.downsampled_retention;
    if (m.max_t < now_ms - retention.count()) {
      std::error_code ec;
      std::filesystem::remove(m.path, ec);
      if (ec) {
        logger_.Warn("tsdb: deleting an expired block failed",
                     {{"path", m.path}, {"error", ec.message()}});
        kept.push_back(std::move(m));
        continue;
      }
      stats_.blocks_deleted++;
      continue;
    }
    kept.push_back(std::move(m));
  }
  blocks_ = std::move(kept);
}

DbStats Db::stats() const {
  DbStats s;
  {
    std::shared_lock lock(mu_);
    s.series = series_.size();
  }
  s.samples_appended = stats_.samples_appended;
  s.out_of_order = stats_.out_of_order;
  s.duplicate = stats_.duplicate;
  s.series_limit_rejected = stats_.series_limit_rejected;
  s.invalid = stats_.invalid;
  s.too_old = stats_.too_old;
  s.series_removed = stats_.series_removed;
  s.chunks_expired = stats_.chunks_expired;
  s.blocks_loaded = stats_.blocks_loaded;
  s.corrupt_blocks = stats_.corrupt_blocks;
  s.overlapping_chunks = stats_.overlapping_chunks;
  s.blocks_written = stats_.blocks_written;
  s.block_write_errors = stats_.block_write_errors;
  s.blocks_compacted = stats_.blocks_compacted;
  s.blocks_deleted = stats_.blocks_deleted;
  return s;
}

MemoryUsage Db::memory_usage() const {
  MemoryUsage m;
  std::shared_lock lock(mu_);
  m.series = series_.size();
  // Hash-table nodes: a node of series_ (key, pointer, next, cached hash) and of by_hash_,
  // plus the pointer in by_name_'s vector; bucket arrays counted per element.
  constexpr uint64_t kIndexBytesPerSeries = 2 * (32 + 16) + 8 + 2 * 8;
  for (const auto& [id, s] : series_) {
    for (const TierData* t : {&s->raw, &s->ds}) {
      for (const Chunk& c : t->sealed) {
        m.samples += c.num_samples;
        m.chunk_bytes += c.size;
        m.chunk_overhead_bytes += c.HeapBytes() - c.size;
      }
      m.chunk_overhead_bytes += t->sealed.capacity() * sizeof(Chunk);
      m.samples += t->open.num_samples();
      m.chunk_bytes += t->open.bytes().size();
      m.chunk_overhead_bytes +=
          t->open.HeapBytes() - std::min<uint64_t>(t->open.HeapBytes(), t->open.bytes().size());
      m.open_cache_bytes += uint64_t{t->decoded_cap} * sizeof(Sample);
    }
    // The labels' shared block: the control block and vector header (make_shared), then the
    // pairs.
    constexpr uint64_t kSharedLabelsBytes = 16 + sizeof(Labels);
    m.series_overhead_bytes += sizeof(MemSeries) + kSharedLabelsBytes +
                               s->labels->capacity() * sizeof(Label) + kIndexBytesPerSeries;
    for (const Label& l : *s->labels) {
      m.series_overhead_bytes += StringHeap(l.name) + StringHeap(l.value);
    }
  }
  return m;
}

std::vector<BlockMeta> Db::blocks() const {
  std::lock_guard lock(persist_mu_);
  std::vector<BlockMeta> out = blocks_;
  std::sort(out.begin(), out.end(), [](const BlockMeta& a, const BlockMeta& b) {
    return std::pair(a.tier, a.seq) < std::pair(b.tier, b.seq);
  });
  return out;
}

std::vector<std::string> Db::load_errors() const { return load_errors_; }

}  // namespace llmscope::tsdb
