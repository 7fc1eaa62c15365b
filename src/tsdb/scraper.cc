#include "tsdb/scraper.h"

#include <algorithm>
#include <utility>

namespace llmscope::tsdb {

std::vector<LabeledSample> FamiliesToSamples(const std::vector<metrics::FamilySnapshot>& families,
                                             int64_t t_ms) {
  std::vector<LabeledSample> out;
  for (const metrics::FamilySnapshot& f : families) {
    for (const metrics::Sample& s : f.samples) {
      // The registry keeps counter families without "_total" and its renderers append it;
      // Prometheus' scrape of /metrics would therefore see "_total": store that name.
      std::string name = f.name + s.suffix;
      if (f.type == metrics::MetricType::kCounter) name += "_total";
      std::vector<Label> labels;
      labels.reserve(s.labels.size() + 1);
      labels.push_back({std::string(kMetricNameLabel), std::move(name)});
      for (const metrics::Label& l : s.labels) labels.push_back({l.name, l.value});
      out.push_back({MakeLabels(std::move(labels)), t_ms, s.value});
    }
  }
  return out;
}

ScrapeStats Scraper::ScrapeOnce(int64_t t_ms) {
  std::vector<metrics::FamilySnapshot> families;
  registry_.Collect(families);
  return Ingest(families, t_ms);
}

ScrapeStats Scraper::Ingest(const std::vector<metrics::FamilySnapshot>& families, int64_t t_ms) {
  std::vector<LabeledSample> samples = FamiliesToSamples(families, t_ms);
  ScrapeStats st;
  st.samples = samples.size();
  std::lock_guard lock(mu_);
  std::unordered_set<Labels, LabelsHash> current;
  current.reserve(samples.size());
  for (const LabeledSample& s : samples) current.insert(s.labels);
  for (const Labels& l : previous_) {
    if (!current.contains(l)) {
      samples.push_back({l, t_ms, StaleNaN()});
      ++st.stale_markers;
    }
  }
  st.append = db_.AppendBatch(samples);
  previous_ = std::move(current);
  return st;
}

ScrapeRunner::ScrapeRunner(ScrapeRunnerOptions options, Scraper& scraper, Db& db,
                           const core::Clock& clock, core::Logger& logger)
    : options_(options), scraper_(scraper), db_(db), clock_(clock), logger_(logger) {}

ScrapeRunner::~ScrapeRunner() { (void)Stop(); }

core::Status ScrapeRunner::Start() {
  if (started_) return core::FailedPrecondition("scrape runner already started");
  if (options_.interval.count() < 1 || options_.max_wait.count() < 1 ||
      options_.persist_interval < options_.interval) {
    return core::InvalidArgument(
        "scrape runner options: interval and max_wait must be >= 1ms, persist_interval >= "
        "interval");
  }
  const int64_t now = clock_.UnixNanos() / 1'000'000;
  next_scrape_ms_ = now;
  next_persist_ms_ = now + options_.persist_interval.count();
  Tick(now);
  started_ = true;
  worker_ = std::jthread([this](std::stop_token stop) { Run(std::move(stop)); });
  return core::Status::Ok();
}

core::Status ScrapeRunner::Stop() {
  if (!started_) return core::Status::Ok();
  started_ = false;
  worker_.request_stop();
  if (worker_.joinable()) worker_.join();
  db_.Maintain();
  core::Status s = db_.Persist();
  if (!s.ok()) logger_.Error("tsdb: final persist failed", {{"error", s.message()}});
  return s;
}

void ScrapeRunner::Tick(int64_t now_ms) {
  if (now_ms < next_scrape_ms_) return;
  const int64_t interval = options_.interval.count();
  // On schedule: stamp with the scheduled time. Far behind (a stall, a clock jump): stamp
  // with now and restart the schedule there; never stamp a time before the last one.
  const int64_t t = now_ms - next_scrape_ms_ < interval ? next_scrape_ms_ : now_ms;
  const ScrapeStats st = scraper_.ScrapeOnce(t);
  const AppendStats& a = st.append;
  if (a.out_of_order + a.duplicate + a.series_limit_rejected + a.invalid + a.too_old > 0) {
    logger_.Warn("tsdb: self-scrape samples rejected",
                 {{"out_of_order", std::to_string(a.out_of_order)},
                  {"duplicate", std::to_string(a.duplicate)},
                  {"series_limit", std::to_string(a.series_limit_rejected)},
                  {"invalid", std::to_string(a.invalid)},
                  {"too_old", std::to_string(a.too_old)}});
  }
  next_scrape_ms_ = t + interval;
  db_.Maintain();
  if (now_ms >= next_persist_ms_) {
    if (auto s = db_.Persist(); !s.ok()) {
      logger_.Error("tsdb: persist failed; retried at the next interval", {{"error", s.message()}});
    }
    next_persist_ms_ = now_ms + options_.persist_interval.count();
  }
}

void ScrapeRunner::Run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const int64_t now = clock_.UnixNanos() / 1'000'000;
    if (now >= next_scrape_ms_) {
      lock.unlock();
      Tick(now);
      lock.lock();
      continue;
    }
    // Waits in real time for what remains on the Clock, capped by max_wait; wakes at once
    // on stop.
    const auto wait = std::min<int64_t>(next_scrape_ms_ - now, options_.max_wait.count());
    cv_.wait_for(lock, stop, std::chrono::milliseconds(wait), [] { return false; });
  }
}

}  // namespace llmscope::tsdb
