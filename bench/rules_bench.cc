// The built-in rule pack over a metrics history the size the alerting issue names: one
// evaluation of every group of src/alerts/builtin_rules.yaml, as `llmscope serve` runs it
// (alerts::RuleManager over tsdb::DbQueryable, rule samples appended back into the store),
// at the newest sample time. Goal: the whole pack in under 10 ms (docs/BENCHMARKS.md,
// "Metrics history and rules").
//
// The store holds 10,089 series shaped like llmscope's own registry (src/stats/llm_metrics.cc):
// 30 models x 3 providers x 2 endpoints of llm_requests_total{status},
// llm_errors_total{error_type}, llm_request_duration_seconds and
// llm_time_to_first_token_seconds (the real bucket bounds), and per model and provider
// llm_time_per_output_token_seconds, llm_tokens_total{type} and llm_cost_usd_total; plus the
// llmscope_* health series and up{job="llmscope"} that the pipeline and availability groups
// read. Every series has a sample every 15 s for 25 h 10 min, so that the longest look-back
// of the pack (`rate(llm_requests_total[1h] offset 1d)`) finds a full window, as on a
// server that has run for a day. A few model/provider pairs are slow or failing, so some
// alerts are pending and their templates are expanded, as on a real service.
//
// The history is generated scrape by scrape (one AppendBatch per 15 s, as the self-scrape
// appends) into an in-memory Db on a fake clock; nothing sleeps. Building it takes tens of
// seconds and is done once, outside the timing.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numbers>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "alerts/builtin_rules.h"
#include "alerts/manager.h"
#include "core/log.h"
#include "promql/engine.h"
#include "server/rules_setup.h"
#include "split_mix64.h"
#include "testing/fake_clock.h"
#include "tsdb/db.h"
#include "tsdb/labels.h"
#include "tsdb/promql_queryable.h"

namespace llmscope {
namespace {

constexpr int64_t kStepMs = 15'000;
// 1 day + 1 hour (the offset window) + 10 minutes (the [10m] windows at its start).
constexpr int64_t kHistoryMs = (25 * 60 + 10) * 60'000;
// The newest sample: a whole 15 s step, fixed so every run stores the same samples.
constexpr int64_t kEndMs = 1'700'000'100'000 / kStepMs * kStepMs;

constexpr double kDurationBounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                      5,    10,    20,   40,  80,   160, 320};
constexpr double kTtftBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75,
                                  1,     1.5,  2,     3,    5,   10,   20,  30};
constexpr double kTpotBounds[] = {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04,
                                  0.05,  0.075,  0.1,   0.15,   0.2,  0.3,   0.5,  1,    2.5};

using Rng = bench::SplitMix64;

std::string FormatLe(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", b);
  return buf;
}

// A histogram of one label set: cumulative bucket counters, _sum and _count, fed by a number
// of observations per scrape drawn from an exponential distribution of the given mean (the
// bucket increments follow its CDF, so buckets stay cumulative).
struct Histogram {
  std::vector<double> bounds;
  double mean = 0;
  size_t first = 0;            // index of the first bucket sample in the batch; then _sum, _count
  std::vector<double> counts;  // expected cumulative counts; a bucket stores their floor
  double sum = 0;

  void Observe(double n, Rng& rng, std::vector<tsdb::LabeledSample>& batch) {
    const double m = mean * (0.8 + 0.4 * rng.Unit());
    for (size_t i = 0; i < bounds.size(); ++i) {
      counts[i] += n * (1 - std::exp(-bounds[i] / m));
      batch[first + i].v = std::floor(counts[i]);
    }
    counts.back() += n;
    batch[first + bounds.size()].v = counts.back();
    sum += n * m;
    batch[first + bounds.size() + 1].v = sum;
    batch[first + bounds.size() + 2].v = counts.back();
  }
};

// The series of one model/provider pair and where their samples sit in the scrape batch.
struct Pair {
  double rate = 0;         // requests per second
  double error_ratio = 0;  // of requests
  double price = 0;        // USD per 1000 tokens
  struct Endpoint {
    size_t requests = 0;  // 200, 429, 500
    size_t errors = 0;    // rate_limit, server_error, timeout
    Histogram duration, ttft;
    double req[3] = {0, 0, 0};
    double err[3] = {0, 0, 0};
  } endpoints[2];
  Histogram tpot;
  size_t tokens = 0;  // input, output, cache_read, reasoning
  size_t cost = 0;
  double tok[4] = {0, 0, 0, 0};
  double usd = 0;
};

struct History {
  testing::FakeClock clock{kEndMs * 1'000'000};
  core::NullLogger logger;
  std::unique_ptr<tsdb::Db> db;
  std::unique_ptr<tsdb::DbQueryable> view;
  promql::Engine engine;
  std::unique_ptr<alerts::RuleManager> rules;
  uint64_t samples = 0;
};

History* BuildHistory() {
  auto* h = new History();
  tsdb::DbOptions options;  // in memory; raw retention (2 d) keeps the whole history raw
  auto db = tsdb::Db::Open(options, h->clock, h->logger);
  if (!db.ok()) {
    std::fprintf(stderr, "Db::Open: %s\n", db.status().ToString().c_str());
    std::abort();
  }
  h->db = std::move(db).value();

  std::vector<tsdb::LabeledSample> batch;
  auto add = [&batch](std::vector<tsdb::Label> labels) {
    batch.push_back({tsdb::MakeLabels(std::move(labels)), 0, 0});
    return batch.size() - 1;
  };
  auto add_histogram = [&](Histogram& hist, const std::string& name,
                           const std::vector<tsdb::Label>& labels, std::span<const double> bounds,
                           double mean) {
    hist.bounds.assign(bounds.begin(), bounds.end());
    hist.mean = mean;
    hist.counts.assign(bounds.size() + 1, 0);
    hist.first = batch.size();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      auto l = labels;
      l.push_back({"__name__", name + "_bucket"});
      l.push_back({"le", i < bounds.size() ? FormatLe(bounds[i]) : "+Inf"});
      add(std::move(l));
    }
    for (const char* suffix : {"_sum", "_count"}) {
      auto l = labels;
      l.push_back({"__name__", name + suffix});
      add(std::move(l));
    }
  };

  const char* kProviders[] = {"openai", "anthropic", "azure.ai.openai"};
  const char* kEndpoints[] = {"chat_completions", "responses"};
  Rng rng(20240917);
  std::vector<Pair> pairs(90);
  for (size_t p = 0; p < pairs.size(); ++p) {
    Pair& pair = pairs[p];
    const std::string model = "model-" + std::to_string(p / 3);
    const std::string provider = kProviders[p % 3];
    pair.rate = 0.2 + 4.0 * rng.Unit();
    // Every 17th pair fails 3% of its calls (LLMHighErrorRate), every 23rd is slow.
    pair.error_ratio = p % 17 == 5 ? 0.03 : 0.002;
    const double slow = p % 23 == 7 ? 4.0 : 1.0;
    pair.price = 0.002 + 0.02 * rng.Unit();
    for (int e = 0; e < 2; ++e) {
      auto& ep = pair.endpoints[e];
      const std::vector<tsdb::Label> base = {
          {"model", model}, {"provider", provider}, {"endpoint", kEndpoints[e]}};
      ep.requests = batch.size();
      for (const char* status : {"200", "429", "500"}) {
        auto l = base;
        l.push_back({"__name__", "llm_requests_total"});
        l.push_back({"status", status});
        add(std::move(l));
      }
      ep.errors = batch.size();
      for (const char* type : {"rate_limit", "server_error", "timeout"}) {
        auto l = base;
        l.push_back({"__name__", "llm_errors_total"});
        l.push_back({"error_type", type});
        add(std::move(l));
      }
      add_histogram(ep.duration, "llm_request_duration_seconds", base, kDurationBounds, 0.3 * slow);
      add_histogram(ep.ttft, "llm_time_to_first_token_seconds", base, kTtftBounds, 0.08 * slow);
    }
    const std::vector<tsdb::Label> base = {{"model", model}, {"provider", provider}};
    add_histogram(pair.tpot, "llm_time_per_output_token_seconds", base, kTpotBounds, 0.02 * slow);
    pair.tokens = batch.size();
    for (const char* type : {"input", "output", "cache_read", "reasoning"}) {
      auto l = base;
      l.push_back({"__name__", "llm_tokens_total"});
      l.push_back({"type", type});
      add(std::move(l));
    }
    pair.cost = add({{"__name__", "llm_cost_usd_total"}, {"model", model}, {"provider", provider}});
  }
  // The health series the pipeline and availability groups read: all quiet.
  const size_t health = batch.size();
  for (const char* reason : {"queue_full", "shutdown"}) {
    add({{"__name__", "llmscope_pipeline_records_dropped_total"}, {"reason", reason}});
  }
  for (const char* reason : {"spill_full", "memory_full_no_spill", "spill_error"}) {
    add({{"__name__", "llmscope_storage_records_dropped_total"}, {"reason", reason}});
  }
  add({{"__name__", "llmscope_storage_spill_records"}});
  add({{"__name__", "llmscope_storage_spill_oldest_age_seconds"}});
  const size_t backend_up = add({{"__name__", "llmscope_storage_backend_up"}});
  const size_t up = add({{"__name__", "up"}, {"job", "llmscope"}, {"instance", "127.0.0.1:8080"}});

  const int64_t steps = kHistoryMs / kStepMs;
  for (int64_t k = 0; k <= steps; ++k) {
    const int64_t t = kEndMs - (steps - k) * kStepMs;
    // A daily cycle: traffic at night is a third of the day's.
    const double day =
        2.0 / 3 +
        std::sin(2 * std::numbers::pi * static_cast<double>(t % 86'400'000) / 86'400'000) / 3;
    for (Pair& pair : pairs) {
      double calls_total = 0;
      for (auto& ep : pair.endpoints) {
        const double calls = std::floor(pair.rate * day * 15 * (0.5 + rng.Unit()) / 2);
        const double failed = std::floor(calls * pair.error_ratio * 2 * rng.Unit() + 0.3);
        const double limited = std::floor(failed / 2);
        ep.req[0] += calls - failed;
        ep.req[1] += limited;
        ep.req[2] += failed - limited;
        ep.err[0] += limited;
        ep.err[1] += failed - limited;
        ep.err[2] += rng.Unit() < 0.01 ? 1 : 0;
        for (int i = 0; i < 3; ++i) {
          batch[ep.requests + i].v = ep.req[i];
          batch[ep.errors + i].v = ep.err[i];
        }
        ep.duration.Observe(calls, rng, batch);
        ep.ttft.Observe(calls, rng, batch);
        calls_total += calls;
      }
      pair.tpot.Observe(calls_total, rng, batch);
      const double in = std::floor(calls_total * (400 + 800 * rng.Unit()));
      const double out = std::floor(calls_total * (100 + 300 * rng.Unit()));
      pair.tok[0] += in;
      pair.tok[1] += out;
      pair.tok[2] += std::floor(in * 0.3);
      pair.tok[3] += std::floor(out * 0.1);
      for (int i = 0; i < 4; ++i) batch[pair.tokens + i].v = pair.tok[i];
      pair.usd += (in + out) / 1000 * pair.price;
      batch[pair.cost].v = pair.usd;
    }
    for (size_t i = health; i < backend_up; ++i) batch[i].v = 0;
    batch[backend_up].v = 1;
    batch[up].v = 1;
    for (auto& s : batch) s.t_ms = t;
    const tsdb::AppendStats st = h->db->AppendBatch(batch);
    h->samples += st.appended;
    if (st.appended != batch.size()) {
      std::fprintf(stderr, "AppendBatch refused %zu samples\n",
                   batch.size() - static_cast<size_t>(st.appended));
      std::abort();
    }
  }

  h->view = std::make_unique<tsdb::DbQueryable>(*h->db);
  // The sink serve installs: rule samples (ALERTS, ALERTS_FOR_STATE) go back into the store.
  h->rules =
      std::make_unique<alerts::RuleManager>(alerts::RuleManagerOptions{}, h->engine, *h->view,
                                            h->clock, h->logger, server::RuleSamplesInto(*h->db));
  auto pack = alerts::BuiltinRules();
  if (!pack.ok()) {
    std::fprintf(stderr, "BuiltinRules: %s\n", pack.status().ToString().c_str());
    std::abort();
  }
  std::vector<alerts::RuleFile> files;
  files.push_back(std::move(pack).value());
  if (auto st = h->rules->LoadParsed(std::move(files)); !st.ok()) {
    std::fprintf(stderr, "LoadParsed: %s\n", st.ToString().c_str());
    std::abort();
  }
  return h;
}

// Built once per process, on first use, outside every timed loop.
History& GetHistory() {
  static History* h = BuildHistory();
  return *h;
}

// Pending and firing alerts, and rules in error, after the last evaluation.
void ReportPack(benchmark::State& state, History& h) {
  int alerts = 0, errors = 0, rules = 0;
  for (const auto& g : h.rules->Snapshot()) {
    for (const auto& r : g.rules) {
      ++rules;
      alerts += static_cast<int>(r.alerts.size());
      if (r.health == alerts::RuleHealth::kErr) {
        ++errors;
        state.SkipWithError(("rule " + r.spec.name + ": " + r.last_error).c_str());
      }
    }
  }
  state.counters["series"] = static_cast<double>(h.db->stats().series);
  state.counters["samples"] = static_cast<double>(h.samples);
  state.counters["rules"] = rules;
  state.counters["alerts"] = alerts;
  state.counters["rule_errors"] = errors;
  // The open-chunk cache the queries read from (tsdb::DbOptions::open_chunk_cache_bytes).
  const tsdb::MemoryUsage m = h.db->memory_usage();
  state.counters["open_cache_MB"] = static_cast<double>(m.open_cache_bytes) / 1e6;
  state.counters["chunks_MB"] = static_cast<double>(m.chunk_bytes + m.chunk_overhead_bytes) / 1e6;
}

// One evaluation of every group of the pack at the newest sample time.
void BM_BuiltinPack(benchmark::State& state) {
  History& h = GetHistory();
  const auto groups = h.rules->groups();
  for (auto _ : state) {
    size_t notified = 0;
    for (const auto& g : groups) notified += h.rules->EvalGroup(*g, kEndMs).size();
    benchmark::DoNotOptimize(notified);
  }
  ReportPack(state, h);
}
BENCHMARK(BM_BuiltinPack)->Unit(benchmark::kMillisecond)->MinTime(2);

// One group at a time, to see where the pack's time goes (argument: the group's index).
void BM_PackGroup(benchmark::State& state) {
  History& h = GetHistory();
  const auto groups = h.rules->groups();
  const auto& g = groups.at(static_cast<size_t>(state.range(0)));
  state.SetLabel(g->name());
  for (auto _ : state) benchmark::DoNotOptimize(h.rules->EvalGroup(*g, kEndMs).size());
}
BENCHMARK(BM_PackGroup)->DenseRange(0, 4)->Unit(benchmark::kMillisecond)->MinTime(1);

}  // namespace
}  // namespace llmscope

BENCHMARK_MAIN();
