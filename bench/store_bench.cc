// The event store side by side: ingest rate, query latencies and bytes per call of the SQLite
// and ClickHouse backends on the same synthetic calls. Figures go to docs/BENCHMARKS.md
// ("Event store").
//
//   store_bench [--calls N] [--backend sqlite|clickhouse|both] [--reps K] [--dir DIR]
//               [--max-ingest-seconds S] [--seed S] [--sqlite-wal-pages P]
//               [--sqlite-background-checkpoint] [--gateway-ids] [--clickhouse-db NAME]
//
// The calls are generated batch by batch from a seeded PRNG (batch i from seed and i alone),
// so every backend stores exactly the same calls, in start order with a little jitter as a
// gateway hands them over: uuid request ids, 5 models over 3 providers, 1000 users (skewed),
// sessions, three tags, 30 days of starts, 2% errors, no content. Writes go in batches of
// 5000 calls, what pipeline::StoreWriter uses; only the WriteCalls time counts.
//
// ClickHouse: a private clickhouse-server started with the tests' helper (stopped by its pid
// at exit), or the server LLMSCOPE_CLICKHOUSE_URL names (a fresh database is created there
// and left behind); without either the backend is skipped with a message. SQLite writes to a
// temporary directory that is removed at exit.
//
// STORE_BENCH_EACH=1 in the environment prints every repetition's time as well.
//
// Bounded: ingest stops after --max-ingest-seconds per backend (the calls written so far are
// reported), and each query runs --reps times with a 60 s timeout.
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/call_json.h"
#include "core/llm_call.h"
#include "core/status.h"
#include "split_mix64.h"
#include "storage/store.h"
#include "storage_clickhouse/clickhouse_store.h"
#include "storage_clickhouse/test_server.h"
#include "storage_sqlite/sqlite_store.h"

namespace llmscope {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kBatch = 5'000;  // pipeline::StoreWriterOptions::write_batch_records
constexpr int kDays = 30;
constexpr int kUsers = 1000;
// 2023-11-01T00:00:00Z: the first day of the generated month.
constexpr int64_t kFirstDayNanos = 1'698'796'800LL * storage::kNanosPerSecond;
constexpr auto kQueryTimeout = std::chrono::seconds(60);

struct Flags {
  int64_t calls = 1'000'000;
  std::string backend = "both";
  int reps = 30;
  std::string dir;  // parent of the temporary directory; "" = the system's
  double max_ingest_seconds = 1800;
  uint64_t seed = 42;
  // SQLite settings to compare (0 / false: the store's defaults).
  int64_t sqlite_wal_pages = 0;  // wal_autocheckpoint_pages; wal_max_pages 4x it
  bool sqlite_background_checkpoint = false;
  // Request ids as the gateway makes them ("req_" + 16 hex digits, 20 bytes) instead of
  // 36-byte uuids (what clients and OTLP spans often carry): every index entry repeats it.
  bool gateway_ids = false;
  // ClickHouse only: query this database, which a run with the same --calls and --seed
  // left on the server LLMSCOPE_CLICKHOUSE_URL names, instead of writing a new one (the
  // calls are generated for the samples but not written): the queries once merges settle.
  std::string clickhouse_db;
};

using Rng = bench::SplitMix64;

struct Model {
  const char* name;
  const char* response_model;
  const char* provider;
  const char* provider_kind;
  core::Endpoint endpoint;
  double input_usd_per_mtok;
  double output_usd_per_mtok;
  int weight;  // share of traffic, out of 100
};

constexpr std::array<Model, 5> kModels = {{
    {"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", "openai", core::Endpoint::kChatCompletions,
     0.15, 0.60, 40},
    {"gpt-4o", "gpt-4o-2024-08-06", "openai", "openai", core::Endpoint::kChatCompletions, 2.50,
     10.0, 20},
    {"claude-3-5-sonnet-latest", "claude-3-5-sonnet-20241022", "anthropic", "anthropic",
     core::Endpoint::kMessages, 3.00, 15.0, 15},
    {"claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", "anthropic", "anthropic",
     core::Endpoint::kMessages, 0.80, 4.00, 15},
    {"llama-3.1-70b-instruct", "meta-llama/Meta-Llama-3.1-70B-Instruct", "together",
     "openai_compatible", core::Endpoint::kChatCompletions, 0.88, 0.88, 10},
}};

constexpr std::array<const char*, 8> kFeatures = {"chat",    "search",    "summarize",   "classify",
                                                  "extract", "translate", "code-review", "support"};
constexpr std::array<const char*, 5> kTeams = {"growth", "platform", "support", "research",
                                               "ml-infra"};

std::string Uuid(Rng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t a = rng.Next();
  uint64_t b = rng.Next();
  std::string s(36, '-');
  int bit = 0;
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) continue;
    uint64_t& src = bit < 64 ? a : b;
    s[i] = kHex[(src >> (bit % 64)) & 0xf];
    bit += 4;
  }
  s[14] = '4';                          // version 4
  s[19] = kHex[8 + ((b >> 60) & 0x3)];  // variant 10xx
  return s;
}

std::string UserName(int u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "user-%04d", u);
  return buf;
}

// Calls [first, first + count) of `total`, spread evenly over kDays days in start order, each
// shifted by up to 2 s of jitter (calls are handed over as they finish, not as they start).
std::vector<core::LlmCall> GenerateBatch(uint64_t seed, int64_t batch_index, int64_t first,
                                         int64_t count, int64_t total, bool gateway_ids) {
  Rng rng(seed * 0x100000001b3ULL + static_cast<uint64_t>(batch_index));
  const double step = static_cast<double>(kDays * storage::kNanosPerDay) / total;
  std::vector<core::LlmCall> calls(count);
  for (int64_t i = 0; i < count; ++i) {
    core::LlmCall& c = calls[i];
    c.request_id = Uuid(rng);  // two draws either way: the other fields stay the same
    if (gateway_ids) {
      // "req_" and the uuid's first 16 hex digits (64 random bits; the dash at 8 skipped).
      c.request_id = "req_" + c.request_id.substr(0, 8) + c.request_id.substr(9, 4) +
                     c.request_id.substr(15, 3) + c.request_id.substr(19, 1);
    }
    for (auto& b : c.trace_id) b = static_cast<uint8_t>(rng.Next());
    for (auto& b : c.span_id) b = static_cast<uint8_t>(rng.Next());
    if (rng.Below(4) == 0) {
      for (auto& b : c.parent_span_id) b = static_cast<uint8_t>(rng.Next());
    }
    c.start_unix_nanos = kFirstDayNanos + static_cast<int64_t>(step * (first + i)) +
                         static_cast<int64_t>(rng.Below(2 * storage::kNanosPerSecond));

    int pick = static_cast<int>(rng.Below(100));
    const Model* m = &kModels[0];
    for (const Model& candidate : kModels) {
      if (pick < candidate.weight) {
        m = &candidate;
        break;
      }
      pick -= candidate.weight;
    }
    c.endpoint = m->endpoint;
    c.requested_model = m->name;
    c.response_model = m->response_model;
    c.provider = m->provider;
    c.provider_kind = m->provider_kind;
    c.stream = rng.Below(10) < 6;

    // Skewed users: a quarter of the users make about three quarters of the calls.
    int user = rng.Below(4) != 0 ? static_cast<int>(rng.Below(kUsers / 4))
                                 : static_cast<int>(rng.Below(kUsers));
    c.user = UserName(user);
    char session[32];
    std::snprintf(session, sizeof session, "sess-%08" PRIx64,
                  static_cast<uint64_t>(rng.Next() & 0xffffffffU));
    c.session = session;
    c.tags = {{"env", rng.Below(20) == 0 ? "staging" : "prod"},
              {"feature", kFeatures[rng.Below(kFeatures.size())]},
              {"team", kTeams[user % kTeams.size()]}};
    if (rng.Below(2) == 0) c.max_tokens = 256 << rng.Below(4);
    if (rng.Below(3) != 0) c.temperature = 0.1 * static_cast<double>(rng.Below(11));
    if (rng.Below(10) == 0) c.top_p = 0.9;

    const int64_t ms = 1'000'000;
    c.overhead_nanos = 30'000 + static_cast<int64_t>(rng.Below(200'000));
    const uint64_t fate = rng.Below(100);
    if (fate < 2) {  // 2% errors: rate limits and server errors, no usage
      const bool limited = fate == 0;
      c.http_status = limited ? 429 : 500;
      c.error = limited ? core::ErrorClass::kRateLimit : core::ErrorClass::kServerError;
      c.error_message = limited ? "Rate limit reached for requests per minute (RPM)"
                                : "The server had an error while processing your request";
      c.first_byte_nanos = 50 * ms + static_cast<int64_t>(rng.Below(400)) * ms;
      c.end_nanos = c.first_byte_nanos + static_cast<int64_t>(rng.Below(5)) * ms;
      c.usage_source = core::UsageSource::kMissing;
      c.unpriced = true;
    } else {
      c.http_status = 200;
      c.first_byte_nanos = 150 * ms + static_cast<int64_t>(rng.Below(900)) * ms;
      c.first_content_nanos = c.first_byte_nanos + static_cast<int64_t>(rng.Below(20)) * ms;
      c.usage.input = 50 + static_cast<int64_t>(rng.Below(4000));
      c.usage.output = 5 + static_cast<int64_t>(rng.Below(1200));
      if (rng.Below(3) == 0) c.usage.cache_read = static_cast<int64_t>(rng.Below(c.usage.input));
      c.end_nanos =
          c.first_content_nanos + c.usage.output * (8 + static_cast<int64_t>(rng.Below(25))) * ms;
      c.usage_source = core::UsageSource::kProvider;
      c.finish_reasons = {rng.Below(20) == 0 ? "length" : "stop"};
      c.cost_usd = (static_cast<double>(c.usage.input) * m->input_usd_per_mtok +
                    static_cast<double>(c.usage.output) * m->output_usd_per_mtok) /
                   1e6;
    }
  }
  return calls;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of the calling thread, in seconds: the whole cost of an in-process backend
// (SQLite runs in the caller's thread, kernel time of its writes included), only the client's
// share for a server backend.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// CPU time of the whole process (every thread), in seconds.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Nearest rank from below, as storage::ExactQuantile.
double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct QueryFigure {
  std::string name;
  double p50_ms = NAN;
  double p95_ms = NAN;
  std::string error;  // the first failure, if any
};

struct BackendFigures {
  std::string name;
  bool ran = false;
  std::string skipped;  // why, when not ran
  int64_t written = 0;
  double ingest_seconds = 0;
  double batch_p50_ms = NAN;
  double batch_p95_ms = NAN;
  std::vector<QueryFigure> queries;
  int64_t stored_calls = 0;
  int64_t bytes_on_disk = 0;
};

struct Workload {
  const Flags& flags;
  std::vector<std::string> sample_ids;  // request ids to open with GetCall, in write order
  int64_t sample_every = 1;             // one sampled id every this many calls
  int64_t json_bytes = 0;               // sum of FormatCallJson(call, false).size() + 1
  int64_t json_calls = 0;
};

QueryFigure Measure(const std::string& name, int reps,
                    const std::function<core::Status(int rep)>& query) {
  QueryFigure f;
  f.name = name;
  std::vector<double> ms;
  const bool print_each = std::getenv("STORE_BENCH_EACH") != nullptr;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    core::Status s = query(r);
    auto t1 = Clock::now();
    if (!s.ok()) {
      f.error = s.ToString();
      break;
    }
    ms.push_back(Seconds(t1 - t0) * 1e3);
    if (print_each) {
      std::fprintf(stderr, "    %s #%d: %.2f ms\n", name.c_str(), r, ms.back());
    }
  }
  if (f.error.empty()) {
    f.p50_ms = Quantile(ms, 0.5);
    f.p95_ms = Quantile(ms, 0.95);
  }
  std::fprintf(stderr, "  %-34s p50 %9.2f ms  p95 %9.2f ms%s%s\n", name.c_str(), f.p50_ms, f.p95_ms,
               f.error.empty() ? "" : "  FAILED: ", f.error.c_str());
  return f;
}

void RunBackend(storage::Store& store, Workload& w, BackendFigures& out) {
  const Flags& flags = w.flags;
  const bool count_json = w.json_calls == 0;
  const int64_t batches = (flags.calls + static_cast<int64_t>(kBatch) - 1) / kBatch;
  std::vector<double> batch_ms;
  double ingest_cpu_seconds = 0;
  // The store's threads besides the writing one (SQLite's background checkpointer) count
  // too: process CPU over the ingest loop minus the loop's own work outside WriteCalls.
  double outside_cpu_seconds = 0;
  const double process_cpu0 = ProcessCpuSeconds();
  double thread_cpu_mark = ThreadCpuSeconds();
  std::fprintf(stderr, "%s: writing %" PRId64 " calls in batches of %zu\n",
               std::string(store.name()).c_str(), flags.calls, kBatch);
  auto progress = Clock::now();
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * static_cast<int64_t>(kBatch);
    const int64_t count = std::min<int64_t>(kBatch, flags.calls - first);
    std::vector<core::LlmCall> calls =
        GenerateBatch(flags.seed, b, first, count, flags.calls, flags.gateway_ids);
    if (count_json) {
      for (int64_t i = 0; i < count; ++i) {
        w.json_bytes += static_cast<int64_t>(core::FormatCallJson(calls[i], false).size()) + 1;
        if ((first + i) % w.sample_every == 0) w.sample_ids.push_back(calls[i].request_id);
      }
      w.json_calls += count;
    }
    const double cpu0 = ThreadCpuSeconds();
    outside_cpu_seconds += cpu0 - thread_cpu_mark;
    auto t0 = Clock::now();
    core::Status s = flags.clickhouse_db.empty() || store.name() != "clickhouse"
                         ? store.WriteCalls(calls)
                         : core::Status::Ok();
    auto t1 = Clock::now();
    thread_cpu_mark = ThreadCpuSeconds();
    ingest_cpu_seconds += thread_cpu_mark - cpu0;
    if (!s.ok()) {
      out.skipped =
          "WriteCalls failed after " + std::to_string(out.written) + " calls: " + s.ToString();
      std::fprintf(stderr, "  %s\n", out.skipped.c_str());
      return;
    }
    out.written += count;
    out.ingest_seconds += Seconds(t1 - t0);
    batch_ms.push_back(Seconds(t1 - t0) * 1e3);
    if (Seconds(t1 - progress) > 10) {
      progress = t1;
      std::fprintf(stderr, "  %" PRId64 " calls, %.0f calls/s\n", out.written,
                   static_cast<double>(out.written) / out.ingest_seconds);
    }
    if (out.ingest_seconds > flags.max_ingest_seconds) {
      std::fprintf(stderr, "  ingest stopped at the %.0f s bound after %" PRId64 " calls\n",
                   flags.max_ingest_seconds, out.written);
      break;
    }
  }
  out.batch_p50_ms = Quantile(batch_ms, 0.5);
  out.batch_p95_ms = Quantile(batch_ms, 0.95);
  std::fprintf(stderr, "  ingest: %.0f calls/s (batch p50 %.1f ms, p95 %.1f ms)\n",
               static_cast<double>(out.written) / out.ingest_seconds, out.batch_p50_ms,
               out.batch_p95_ms);
  std::fprintf(stderr, "  ingest CPU of the writing thread: %.1f s, %.0f calls per CPU-second\n",
               ingest_cpu_seconds, static_cast<double>(out.written) / ingest_cpu_seconds);
  outside_cpu_seconds += ThreadCpuSeconds() - thread_cpu_mark;
  const double store_cpu_seconds = ProcessCpuSeconds() - process_cpu0 - outside_cpu_seconds;
  std::fprintf(stderr, "  ingest CPU of all store threads: %.1f s, %.0f calls per CPU-second\n",
               store_cpu_seconds, static_cast<double>(out.written) / store_cpu_seconds);

  // The day before the last generated day: a full day well inside the data.
  const int64_t days_written = std::max<int64_t>(
      1, static_cast<int64_t>(kDays * static_cast<double>(out.written) / flags.calls));
  const int64_t day_from =
      kFirstDayNanos + std::max<int64_t>(0, days_written - 2) * storage::kNanosPerDay;
  const int reps = flags.reps;
  out.queries.push_back(Measure("list page, 50 newest", reps, [&](int) {
    storage::CallQuery q;
    q.limit = 50;
    q.timeout = kQueryTimeout;
    auto r = store.ListCalls(q);
    if (r.ok() && r->calls.size() != 50) return core::Internal("short page");
    return r.status();
  }));
  out.queries.push_back(Measure("list page, user filter", reps, [&](int rep) {
    storage::CallQuery q;
    q.limit = 50;
    q.timeout = kQueryTimeout;
    q.filter.user = UserName((rep * 37) % kUsers);
    return store.ListCalls(q).status();
  }));
  out.queries.push_back(Measure("one-day aggregate by model", reps, [&](int) {
    storage::AggregateQuery q;
    q.filter.from_unix_nanos = day_from;
    q.filter.to_unix_nanos = day_from + storage::kNanosPerDay;
    q.group_by = storage::GroupBy::kModel;
    q.timeout = kQueryTimeout;
    auto r = store.Aggregate(q);
    if (r.ok() && r->rows.size() != kModels.size()) return core::Internal("rows");
    return r.status();
  }));
  out.queries.push_back(Measure("one-day top 10 users by cost", reps, [&](int) {
    storage::TopQuery q;
    q.filter.from_unix_nanos = day_from;
    q.filter.to_unix_nanos = day_from + storage::kNanosPerDay;
    q.dimension = storage::GroupBy::kUser;
    q.by = storage::TopMetric::kCost;
    q.limit = 10;
    q.timeout = kQueryTimeout;
    return store.Top(q).status();
  }));
  out.queries.push_back(Measure("GetCall", reps, [&](int rep) {
    // Only ids of calls this backend holds (an ingest cut short by its bound holds fewer).
    const size_t held =
        std::min(w.sample_ids.size(),
                 static_cast<size_t>((out.written + w.sample_every - 1) / w.sample_every));
    if (held == 0) return core::Internal("no request ids sampled");
    return store.GetCall(w.sample_ids[(static_cast<size_t>(rep) * 7919) % held]).status();
  }));

  auto stats = store.Stats();
  if (stats.ok()) {
    out.stored_calls = stats->calls;
    out.bytes_on_disk = stats->bytes_on_disk;
  } else {
    std::fprintf(stderr, "  Stats failed: %s\n", stats.status().ToString().c_str());
  }
  out.ran = true;
}

void PrintTable(const std::vector<BackendFigures>& all, const Workload& w, const Flags& flags) {
  std::printf("\nstore_bench: %" PRId64 " calls requested, batches of %zu, %d repetitions\n\n",
              flags.calls, kBatch, flags.reps);
  std::printf("| measure |");
  for (const auto& b : all) std::printf(" %s |", b.name.c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < all.size(); ++i) std::printf("--:|");
  std::printf("\n");
  auto row = [&](const char* label, const std::function<std::string(const BackendFigures&)>& f) {
    std::printf("| %s |", label);
    for (const auto& b : all) std::printf(" %s |", b.ran ? f(b).c_str() : "skipped");
    std::printf("\n");
  };
  auto fmt = [](const char* spec, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, spec, v);
    return std::string(buf);
  };
  row("calls written", [](const BackendFigures& b) { return std::to_string(b.written); });
  row("ingest, calls/s", [&](const BackendFigures& b) {
    return fmt("%.0f", static_cast<double>(b.written) / b.ingest_seconds);
  });
  row("write batch p50 / p95, ms", [&](const BackendFigures& b) {
    return fmt("%.1f", b.batch_p50_ms) + " / " + fmt("%.1f", b.batch_p95_ms);
  });
  for (size_t q = 0; !all.empty() && q < all.front().queries.size(); ++q) {
    std::string label = all.front().queries[q].name + " p50 / p95, ms";
    row(label.c_str(), [&](const BackendFigures& b) {
      if (q >= b.queries.size()) return std::string("-");
      const QueryFigure& f = b.queries[q];
      if (!f.error.empty()) return "failed: " + f.error;
      return fmt("%.2f", f.p50_ms) + " / " + fmt("%.2f", f.p95_ms);
    });
  }
  row("store bytes per call", [&](const BackendFigures& b) {
    return fmt("%.1f", static_cast<double>(b.bytes_on_disk) /
                           static_cast<double>(std::max<int64_t>(1, b.stored_calls)));
  });
  row("JSON log line bytes per call", [&](const BackendFigures&) {
    return fmt("%.1f", static_cast<double>(w.json_bytes) /
                           static_cast<double>(std::max<int64_t>(1, w.json_calls)));
  });
  for (const auto& b : all) {
    if (!b.ran) std::printf("\n%s skipped: %s\n", b.name.c_str(), b.skipped.c_str());
  }
}

bool ParseFlags(int argc, char** argv, Flags& f) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--calls" && (v = value())) {
      f.calls = std::strtoll(v, nullptr, 10);
    } else if (a == "--backend" && (v = value())) {
      f.backend = v;
    } else if (a == "--reps" && (v = value())) {
      f.reps = std::atoi(v);
    } else if (a == "--dir" && (v = value())) {
      f.dir = v;
    } else if (a == "--max-ingest-seconds" && (v = value())) {
      f.max_ingest_seconds = std::strtod(v, nullptr);
    } else if (a == "--seed" && (v = value())) {
      f.seed = std::strtoull(v, nullptr, 10);
    } else if (a == "--sqlite-wal-pages" && (v = value())) {
      f.sqlite_wal_pages = std::strtoll(v, nullptr, 10);
    } else if (a == "--clickhouse-db" && (v = value())) {
      f.clickhouse_db = v;
    } else if (a == "--gateway-ids") {
      f.gateway_ids = true;
    } else if (a == "--sqlite-background-checkpoint") {
      f.sqlite_background_checkpoint = true;
    } else {
      std::fprintf(stderr, "store_bench: unknown or incomplete flag %s\n", argv[i]);
      return false;
    }
  }
  if (f.calls < static_cast<int64_t>(kBatch) || f.reps < 1 || f.max_ingest_seconds <= 0 ||
      (f.backend != "sqlite" && f.backend != "clickhouse" && f.backend != "both")) {
    std::fprintf(stderr,
                 "store_bench: need --calls >= %zu, --reps >= 1, --max-ingest-seconds > 0, "
                 "--backend sqlite|clickhouse|both\n",
                 kBatch);
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  if (!ParseFlags(argc, argv, flags)) return 2;
  namespace fs = std::filesystem;
  std::string tmpl =
      ((flags.dir.empty() ? fs::temp_directory_path() : fs::path(flags.dir)) / "store_bench.XXXXXX")
          .string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "store_bench: mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
    return 1;
  }
  const fs::path dir = tmpl;
  Workload w{flags, {}, std::max<int64_t>(1, flags.calls / 1000), 0, 0};
  std::vector<BackendFigures> all;

  if (flags.backend != "clickhouse") {
    BackendFigures& b = all.emplace_back();
    b.name = "SQLite";
    storage_sqlite::SqliteOptions o;
    o.path = (dir / "llmscope.db").string();
    if (flags.sqlite_wal_pages > 0) {
      o.wal_autocheckpoint_pages = flags.sqlite_wal_pages;
      o.wal_max_pages = 4 * flags.sqlite_wal_pages;
    }
    o.background_checkpoint = flags.sqlite_background_checkpoint;
    auto store = storage_sqlite::SqliteStore::Open(o);
    if (!store.ok()) {
      b.skipped = store.status().ToString();
    } else {
      RunBackend(**store, w, b);
    }
  }

  if (flags.backend != "sqlite") {
    BackendFigures& b = all.emplace_back();
    b.name = "ClickHouse";
    std::unique_ptr<storage_clickhouse::TestClickHouse> server;
    storage_clickhouse::ClickHouseOptions o;
    o.timeout = kQueryTimeout;
    o.database = flags.clickhouse_db.empty() ? "llmscope_bench_" + std::to_string(getpid())
                                             : flags.clickhouse_db;
    if (const char* url = std::getenv("LLMSCOPE_CLICKHOUSE_URL"); url != nullptr && *url) {
      o.url = url;
    } else {
      auto started = storage_clickhouse::TestClickHouse::Start();
      if (started.ok()) {
        server = std::move(*started);
        o.url = server->url();
        std::fprintf(stderr, "clickhouse-server started, pid %d, %s\n",
                     static_cast<int>(server->pid()), o.url.c_str());
      } else {
        b.skipped = "no clickhouse-server could be started (" + started.status().ToString() +
                    ") and LLMSCOPE_CLICKHOUSE_URL is unset";
      }
    }
    if (b.skipped.empty()) {
      auto store = storage_clickhouse::ClickHouseStore::Open(o);
      if (!store.ok()) {
        b.skipped = store.status().ToString();
      } else {
        RunBackend(**store, w, b);
      }
    }
    if (!b.skipped.empty()) std::fprintf(stderr, "ClickHouse skipped: %s\n", b.skipped.c_str());
    if (server != nullptr) server->Stop();
  }

  PrintTable(all, w, flags);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

}  // namespace
}  // namespace llmscope

int main(int argc, char** argv) { return llmscope::Main(argc, argv); }
