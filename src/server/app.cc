#include "server/app.h"

#include <signal.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "alerts/api_json.h"
#include "alerts/cli.h"
#include "alerts/manager.h"
#include "api/prom_api.h"
#include "api/query_api.h"
#include "api/render.h"
#include "core/clock.h"
#include "core/json_string.h"
#include "gateway/gateway.h"
#include "logging/logger.h"
#include "metrics/exposition.h"
#include "metrics/process_collector.h"
#include "metrics/registry.h"
#include "notify/config.h"
#include "notify/notifier.h"
#include "otlp/call_span.h"
#include "otlp/exporter.h"
#include "otlp/grpc_server.h"
#include "otlp/sampler.h"
#include "pipeline/call_log.h"
#include "pipeline/pipeline.h"
#include "pipeline/store_writer.h"
#include "pricing/price_catalog.h"
#include "promql/engine.h"
#include "redact/redactor.h"
#include "server/config.h"
#include "server/otlp_receiver.h"
#include "server/rules_setup.h"
#include "simulator/sim_server.h"
#include "stats/llm_metrics.h"
#include "storage_clickhouse/clickhouse_store.h"
#include "storage_sqlite/sqlite_store.h"
#include "tsdb/db.h"
#include "tsdb/db_collector.h"
#include "tsdb/import.h"
#include "tsdb/promql_queryable.h"
#include "tsdb/scraper.h"

#ifndef LLMSCOPE_VERSION
#define LLMSCOPE_VERSION "dev"
#endif

namespace llmscope::server {

namespace {

constexpr char kUsage[] =
    "usage: llmscope <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE] [--listen HOST:PORT] [--ready-file FILE]\n"
    "      Run the gateway. Without --config, the built-in default configuration\n"
    "      (examples/llmscope.yaml) is used.\n"
    "  simulate [--config FILE] [--listen HOST:PORT] [--ready-file FILE] [--threads N]\n"
    "           [--latency-ms N] [--ttft-ms N] [--tokens-per-second N] [--error-rate P]\n"
    "           [--seed N]\n"
    "      Run only the LLM simulator (OpenAI and Anthropic wire formats).\n"
    "  tsdb import [--config FILE] [--dir DIR] FILE\n"
    "      Backfill the metrics store from an OpenMetrics file with timestamps (the input\n"
    "      of promtool tsdb create-blocks-from openmetrics). The directory is tsdb.dir of\n"
    "      the configuration unless --dir is given; llmscope must not be serving from it.\n"
    "  rules check FILE...  Validate rule files like promtool check rules.\n"
    "  rules export [--format prometheus|prometheusrule]\n"
    "      Print the built-in rule pack as a Prometheus rule file or a PrometheusRule.\n"
    "  config check FILE   Validate a configuration file and list every problem.\n"
    "  config default      Print the built-in default configuration.\n"
    "  version             Print the version.\n";

struct Flags {
  std::string config;
  std::string listen;
  std::string ready_file;
  std::vector<std::pair<std::string, std::string>> sim;  // simulate overrides
  std::string threads;
};

bool ParseFlags(int argc, char** argv, int first, Flags& f, std::string& err) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    auto eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (a.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        err = "flag " + a + " needs a value";
        return false;
      }
      v = argv[++i];
    } else {
      err = "unexpected argument '" + a + "'";
      return false;
    }
    if (a == "--config")
      f.config = v;
    else if (a == "--listen")
      f.listen = v;
    else if (a == "--ready-file")
      f.ready_file = v;
    else if (a == "--threads")
      f.threads = v;
    else if (a == "--latency-ms" || a == "--ttft-ms" || a == "--tokens-per-second" ||
             a == "--error-rate" || a == "--seed")
      f.sim.emplace_back(a.substr(2), v);
    else {
      err = "unknown flag " + a;
      return false;
    }
  }
  return true;
}

core::Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return core::NotFound("cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<std::string> GetEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

core::Result<Config> LoadConfig(const std::string& path) {
  if (path.empty()) return ParseConfig(DefaultConfigYaml(), "<built-in default config>", GetEnv);
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path, GetEnv);
}

// The notification config named by `alerting.config_file`.
core::Result<notify::Config> LoadAlertingConfig(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto c = notify::ParseConfig(*text);
  if (!c.ok()) return core::InvalidArgument(path + ":\n" + c.status().message());
  return c;
}

bool WriteReadyFile(const std::string& path, uint16_t port) {
  if (path.empty()) return true;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << "{\"port\":" << port << ",\"pid\":" << ::getpid() << "}\n";
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

// Blocks SIGINT/SIGTERM in every thread (call before starting any), then waits for one.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);  // reload, as Prometheus does
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error code, not a signal
  return set;
}

int WaitForStopSignal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

core::Result<std::shared_ptr<const pricing::PriceCatalog>> LoadPrices(const Config& c) {
  auto catalog = pricing::PriceCatalog::Default();
  if (!catalog.ok()) return catalog.status();
  for (const auto& f : c.pricing_files) {
    auto text = ReadFile(f);
    if (!text.ok()) return text.status();
    auto extra = pricing::PriceCatalog::FromYaml(*text, f);
    if (!extra.ok()) return extra.status();
    if (auto st = catalog->Overlay(*extra); !st.ok()) return st;
  }
  if (!c.pricing_inline_yaml.empty()) {
    auto extra = pricing::PriceCatalog::FromYaml(c.pricing_inline_yaml, "config pricing.models");
    if (!extra.ok()) return extra.status();
    if (auto st = catalog->Overlay(*extra); !st.ok()) return st;
  }
  return std::make_shared<const pricing::PriceCatalog>(std::move(catalog).value());
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "llmscope: %s\n", what.c_str());
  return 2;
}

// Opens the configured event store; null (and OK) when storage is off.
core::Result<std::unique_ptr<storage::Store>> OpenStore(const StorageConfig& c,
                                                        const core::Clock& clock,
                                                        core::Logger& log) {
  switch (c.backend) {
    case StorageConfig::Backend::kOff:
      return std::unique_ptr<storage::Store>();
    case StorageConfig::Backend::kSqlite: {
      std::error_code ec;
      std::filesystem::create_directories(std::filesystem::path(c.sqlite_path).parent_path().empty()
                                              ? std::filesystem::path(".")
                                              : std::filesystem::path(c.sqlite_path).parent_path(),
                                          ec);
      storage_sqlite::SqliteOptions o;
      o.path = c.sqlite_path;
      o.background_checkpoint = c.sqlite_background_checkpoint;
      o.clock = &clock;
      auto s = storage_sqlite::SqliteStore::Open(std::move(o));
      if (!s.ok()) return s.status();
      return std::unique_ptr<storage::Store>(std::move(s).value());
    }
    case StorageConfig::Backend::kClickHouse: {
      storage_clickhouse::ClickHouseOptions o;
      o.url = c.clickhouse_url;
      o.database = c.clickhouse_database;
      o.user = c.clickhouse_user;
      o.password = c.clickhouse_password;
      o.timeout = c.clickhouse_timeout;
      o.clock = &clock;
      auto s = storage_clickhouse::ClickHouseStore::Open(std::move(o));
      if (!s.ok()) return s.status();
      if (!(*s)->advice().empty()) log.Warn("clickhouse: " + (*s)->advice(), {});
      return std::unique_ptr<storage::Store>(std::move(s).value());
    }
  }
  return core::Internal("unknown storage backend");
}

// Thread-safety: constructed and destroyed by the wiring thread; its own thread does the
// rest.
//
// Applies retention every `interval`: the first pass right after start (a restart after a
// long stop catches up at once), then periodically. Runs on its own thread because a large
// cut is I/O the event loops and the writer must not wait for.
class RetentionLoop {
 public:
  RetentionLoop(storage::Store& store, storage::RetentionOptions retention, core::Nanos interval,
                const core::Clock& clock, core::Logger& log)
      : thread_([this, &store, retention, interval, &clock, &log](std::stop_token stop) {
          while (!stop.stop_requested()) {
            auto r = store.ApplyRetention(clock.UnixNanos(), retention);
            if (!r.ok()) {
              log.Warn("retention failed", {{"error", r.status().ToString()}});
            } else if (r->calls_removed + r->content_removed + r->spans_removed > 0) {
              log.Info("retention removed rows", {{"calls", std::to_string(r->calls_removed)},
                                                  {"content", std::to_string(r->content_removed)},
                                                  {"spans", std::to_string(r->spans_removed)}});
            }
            std::unique_lock lock(mu_);
            cv_.wait_for(lock, stop, interval, [] { return false; });
          }
        }) {}

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;  // last: stopped and joined first
};

// The Alertmanager v2 API of the built-in notifier: GET /api/v2/alerts, GET|POST
// /api/v2/silences, GET|DELETE /api/v2/silence/{id}. 503 when alerting is not configured.
http::Task<void> AlertmanagerApi(http::Request& req, http::ResponseWriter& w,
                                 notify::Notifier* notifier, http::WorkPool& pool) {
  const http::HeaderList h{{"Content-Type", "application/json"}};
  auto error = [](std::string_view message) {
    std::string b = "{\"error\":";
    core::AppendJsonString(b, message);
    return b + "}";
  };
  const std::string path(req.path());
  const std::string method(req.method());
  if (notifier == nullptr) {
    co_await w.Send(503, h, error("alerting is not configured (alerting.config_file)"));
    co_return;
  }
  int status = 200;
  std::string body;
  bool known = true;
  co_await http::RunOnPool(pool, [&] {
    if (path == "/api/v2/alerts" && method == "GET") {
      body = notifier->AlertsJson();
    } else if (path == "/api/v2/silences" && method == "GET") {
      body = notifier->SilencesJson();
    } else if (path == "/api/v2/silences" && method == "POST") {
      auto r = notifier->PostSilence(req.body());
      status = r.ok() ? 200 : (r.status().code() == core::StatusCode::kNotFound ? 404 : 400);
      body = r.ok() ? *r : error(r.status().message());
    } else if (path.rfind("/api/v2/silence/", 0) == 0 && path.size() > 16) {
      const std::string id = path.substr(16);
      if (method == "GET") {
        auto r = notifier->SilenceJson(id);
        status = r.ok() ? 200 : 404;
        body = r.ok() ? *r : error(r.status().message());
      } else if (method == "DELETE") {
        auto st = notifier->ExpireSilence(id);
        status = st.ok() ? 200 : (st.code() == core::StatusCode::kNotFound ? 404 : 400);
        body = st.ok() ? "{}" : error(st.message());
      } else {
        known = false;
      }
    } else {
      known = false;
    }
  });
  if (!known) {
    status = 404;
    body = error("no such Alertmanager API endpoint or method: " + method + " " + path);
  }
  co_await w.Send(status, h, body);
}

int Serve(const Flags& flags) {
  core::SystemClock clock;
  auto cfg = LoadConfig(flags.config);
  if (!cfg.ok()) return Fail("invalid configuration:\n" + cfg.status().message());
  Config& c = *cfg;
  if (!flags.listen.empty()) {
    if (auto st = ParseListen(flags.listen, c.http.host, c.http.port); !st.ok()) {
      return Fail(st.message());
    }
  }
  if (c.http.threads <= 0)
    c.http.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  logging::JsonLogger log(STDERR_FILENO, c.log_level, clock);
  const sigset_t stop_signals = BlockStopSignals();

  metrics::Registry registry;
  registry.AddCollector(std::make_shared<metrics::ProcessCollector>());
  if (auto bi =
          registry.AddGauge("llmscope_build_info", "llmscope version; always 1.", {"version"});
      bi.ok()) {
    (*bi)->WithLabels({LLMSCOPE_VERSION}).Set(1);
  }

  auto prices = LoadPrices(c);
  if (!prices.ok()) return Fail("invalid prices:\n" + prices.status().message());

  pipeline::Pipeline pipe(c.pipeline, *prices, registry, log, clock);
  auto llm_metrics = stats::LlmMetrics::Create(registry, c.stats);
  if (!llm_metrics.ok()) return Fail(llm_metrics.status().ToString());
  pipe.AddSink(llm_metrics->get());
  std::unique_ptr<pipeline::JsonLinesCallLog> call_log;
  if (c.calls_log != "off") {
    pipeline::CallLogOptions clo;
    clo.include_content = c.gateway.capture_content;
    auto cl = pipeline::JsonLinesCallLog::Open(c.calls_log, clo, &log);
    if (!cl.ok()) return Fail(cl.status().message());
    call_log = std::move(cl).value();
    pipe.AddSink(call_log.get());
  }
  // The event store, the durable writer in front of it, and the query API over it.
  auto store = OpenStore(c.storage, clock, log);
  if (!store.ok()) return Fail("storage: " + store.status().message());
  std::unique_ptr<pipeline::StoreWriter> writer;
  if (*store) {
    pipeline::StoreWriterOptions wo;
    if (c.storage.spill) {
      wo.spill_dir = c.storage.dir + "/spill";
      std::error_code ec;
      std::filesystem::create_directories(wo.spill_dir, ec);
      if (ec) return Fail("storage: cannot create " + wo.spill_dir + ": " + ec.message());
    }
    wo.spill_max_bytes = c.storage.spill_max_bytes;
    writer = std::make_unique<pipeline::StoreWriter>(wo, **store, registry, log, clock);
    if (auto st = writer->Start(); !st.ok()) return Fail("storage: " + st.ToString());
    pipe.AddSink(writer.get());
    log.Info("storage", {{"backend", std::string((*store)->name())},
                         {"spill", wo.spill_dir.empty() ? "off" : wo.spill_dir}});
  }
  // Sending on (otlp.export): gateway calls become spans; they and the spans the OTLP
  // receiver stores pass the tail sampler; kept traces go to the exporter.
  std::unique_ptr<otlp::Exporter> exporter;
  std::unique_ptr<otlp::TailSampler> sampler;
  std::unique_ptr<otlp::CallSpanSink> call_spans;
  if (!c.otlp.exporter.endpoint.empty()) {
    exporter = std::make_unique<otlp::Exporter>(c.otlp.exporter, &registry, log);
    if (auto st = exporter->Start(); !st.ok()) return Fail("otlp.export: " + st.message());
    sampler = std::make_unique<otlp::TailSampler>(
        c.otlp.sampling,
        [e = exporter.get()](std::vector<core::Span>&& spans) { e->Enqueue(std::move(spans)); },
        clock, &registry);
    sampler->Start();
    call_spans = std::make_unique<otlp::CallSpanSink>(
        [s = sampler.get()](std::vector<core::Span>&& spans) { s->Add(std::move(spans)); });
    pipe.AddSink(call_spans.get());
    log.Info("otlp export", {{"endpoint", c.otlp.exporter.endpoint},
                             {"ratio", std::to_string(c.otlp.sampling.ratio)}});
  }
  api::QueryApiOptions qo;
  qo.threads = c.storage.query_threads;
  qo.limits.default_timeout = c.storage.query_timeout;
  qo.limits.max_timeout = c.storage.query_max_timeout;
  api::QueryApi query_api(qo, store->get(), clock, registry);

  // llmscope's own metrics history: the self-scrape into the embedded time-series store,
  // and the Prometheus-compatible API (PromQL) over it.
  std::unique_ptr<tsdb::Db> tsdb_db;
  std::unique_ptr<tsdb::Scraper> scraper;
  std::unique_ptr<tsdb::ScrapeRunner> scrape_runner;
  std::unique_ptr<tsdb::DbQueryable> tsdb_view;
  if (c.tsdb.enabled) {
    tsdb::DbOptions o = c.tsdb.db;
    o.dir = c.tsdb.dir;
    auto db = tsdb::Db::Open(o, clock, log);
    if (!db.ok()) return Fail("tsdb: " + db.status().message());
    tsdb_db = std::move(db).value();
    registry.AddCollector(std::make_shared<tsdb::DbCollector>(*tsdb_db));
    scraper = std::make_unique<tsdb::Scraper>(registry, *tsdb_db);
    tsdb_view = std::make_unique<tsdb::DbQueryable>(*tsdb_db);
  }
  const promql::Engine engine;

  // Notifications (an Alertmanager-style config file): routes, receivers, silences, and
  // pushes to external Alertmanagers.
  std::unique_ptr<notify::Notifier> notifier;
  if (!c.alerting_config_file.empty()) {
    auto nc = LoadAlertingConfig(c.alerting_config_file);
    if (!nc.ok()) return Fail("alerting: " + nc.status().message());
    notify::NotifierOptions no;
    no.external_url = c.rules.external_url;
    no.silences_path = c.storage.dir + "/silences";
    std::error_code ec;
    std::filesystem::create_directories(c.storage.dir, ec);
    auto n = notify::Notifier::Create(no, std::move(*nc), registry, clock, log);
    if (!n.ok()) return Fail("alerting: " + n.status().message());
    notifier = std::move(n).value();
  }

  // Rules over the metrics history: recording rules write back into it, alerts go to the
  // notifier.
  std::unique_ptr<alerts::RuleManager> rules;
  std::unique_ptr<alerts::RuleRunner> rule_runner;
  if (tsdb_db) {
    alerts::RuleManagerOptions ro;
    ro.group.default_interval_ms = c.rules.evaluation_interval.count();
    ro.group.external_labels = c.rules.external_labels;
    ro.group.external_url = c.rules.external_url;
    ro.state_file = c.rules.state_file;
    rules = std::make_unique<alerts::RuleManager>(ro, engine, *tsdb_view, clock, log,
                                                  RuleSamplesInto(*tsdb_db));
    if (auto st = LoadRules(c.rules, *rules); !st.ok()) return Fail("rules:\n" + st.message());
    size_t restored = 0;
    if (auto st = rules->RestoreState(&restored); !st.ok()) {
      log.Warn("rules: the saved alert state was not restored", {{"error", st.message()}});
    }
    notify::Notifier* to = notifier.get();
    rule_runner = std::make_unique<alerts::RuleRunner>(
        alerts::RuleRunnerOptions{}, *rules, clock, log,
        [to](std::vector<alerts::NotifyAlert> alerts) {
          if (to == nullptr) return;
          std::vector<notify::Alert> out;
          out.reserve(alerts.size());
          for (auto& a : alerts) {
            notify::Alert n;
            for (const auto& l : a.labels) n.labels[l.name] = l.value;
            for (auto& [k, v] : a.annotations) n.annotations[k] = std::move(v);
            n.starts_at_unix_nanos = a.starts_at_ms * 1'000'000;
            n.ends_at_unix_nanos = a.ends_at_ms * 1'000'000;
            n.generator_url = std::move(a.generator_url);
            out.push_back(std::move(n));
          }
          to->Send(std::move(out));
        });
    log.Info("rules", {{"groups", std::to_string(rules->groups().size())},
                       {"restored_alerts", std::to_string(restored)}});
  } else if (c.rules.builtin || !c.rules.files.empty()) {
    log.Warn("rules need the metrics history (tsdb.enabled: true); no rule is evaluated");
  }

  api::PromApiOptions po;
  po.threads = c.storage.query_threads;
  po.version = LLMSCOPE_VERSION;
  api::PromRuleSources sources;
  if (rules) {
    alerts::RuleManager* m = rules.get();
    sources.rules = [m] {
      return alerts::RenderRulesJson(m->Snapshot(), alerts::RuleTypeFilter::kAll);
    };
    sources.alerts = [m] { return alerts::RenderAlertsJson(m->Snapshot()); };
  }
  api::PromApi prom_api(po, engine, tsdb_view.get(), sources, clock, registry);

  // Captured content is redacted on the pipeline's worker (off the request path) before any
  // sink logs or stores it; OTLP spans kept with content are redacted by the receiver.
  std::unique_ptr<redact::Redactor> redactor;
  metrics::CounterFamily* redactions = nullptr;
  if (c.redaction.enabled) {
    auto r = redact::Redactor::Create({c.redaction.builtin, c.redaction.patterns});
    if (!r.ok()) return Fail("redaction: " + r.status().message());
    redactor = std::move(r).value();
    auto f = registry.AddCounter("llmscope_redactions",
                                 "Values replaced in captured prompts and completions, by kind.",
                                 {"kind"});
    if (!f.ok()) return Fail(f.status().message());
    redactions = *f;
  }
  std::function<int(std::string&)> redact_text;
  if (redactor) {
    redact_text = [r = redactor.get(), redactions](std::string& text) {
      std::vector<std::string_view> kinds;
      const int n = r->Redact(text, &kinds);
      for (auto k : kinds) redactions->WithLabels({k}).Inc();
      return n;
    };
    pipe.SetTransform([redact_text](core::LlmCall& call) {
      if (!call.request_body.empty()) redact_text(call.request_body);
      if (!call.response_text.empty()) redact_text(call.response_text);
    });
  }

  // Gateway calls that continued a client's traceparent, so that the client's own span of
  // the same call, received over OTLP, is not counted again.
  GatewayCallIndex gateway_calls(pipe);

  if (auto st = pipe.Start(); !st.ok()) return Fail(st.ToString());
  // From here on, any return stops the pipeline first, while the sinks declared above it
  // (metrics, call log, store writer, span export) still exist: its Stop drains into them.
  struct PipelineStopper {
    pipeline::Pipeline& pipe;
    ~PipelineStopper() { pipe.Stop(); }
  } stop_pipeline_first{pipe};
  if (tsdb_db) {
    tsdb::ScrapeRunnerOptions ro;
    ro.interval = c.tsdb.scrape_interval;
    ro.persist_interval = c.tsdb.persist_interval;
    scrape_runner = std::make_unique<tsdb::ScrapeRunner>(ro, *scraper, *tsdb_db, clock, log);
    if (auto st = scrape_runner->Start(); !st.ok()) return Fail("tsdb: " + st.message());
    log.Info("tsdb", {{"dir", c.tsdb.dir},
                      {"scrape_interval", promql::FormatDuration(c.tsdb.scrape_interval.count())},
                      {"series", std::to_string(tsdb_db->stats().series)}});
  }
  if (notifier) {
    if (auto st = notifier->Start(); !st.ok()) return Fail("alerting: " + st.message());
  }
  if (rule_runner) {
    if (auto st = rule_runner->Start(); !st.ok()) return Fail("rules: " + st.message());
  }
  std::unique_ptr<RetentionLoop> retention;
  if (*store) {
    retention = std::make_unique<RetentionLoop>(**store, c.storage.retention,
                                                c.storage.retention_interval, clock, log);
  }

  // Simulator upstreams run inside the process on their own loopback port, so that they
  // take exactly the path real providers take.
  std::vector<std::unique_ptr<simulator::SimServer>> sims;
  for (auto& u : c.upstreams) {
    if (u.kind != gateway::ProviderKind::kSimulator) continue;
    simulator::SimServerOptions so;
    so.http.host = "127.0.0.1";
    so.http.port = 0;
    so.http.threads = 1;
    so.sim = c.simulator;
    auto sim = simulator::SimServer::Create(so, clock);
    if (!sim.ok()) return Fail("simulator: " + sim.status().message());
    if (auto st = (*sim)->Start(); !st.ok()) return Fail("simulator: " + st.message());
    u.origin = http::Origin{false, "127.0.0.1", (*sim)->port(), "/v1"};
    sims.push_back(std::move(sim).value());
  }

  auto router = gateway::Router::Create(c.upstreams, c.routes);
  if (!router.ok()) return Fail(router.status().message());
  c.gateway.workers = c.http.threads;
  c.http.pass_body_too_large = true;  // the gateway answers 413 in the caller's dialect
  auto gw = gateway::Gateway::Create(c.gateway, std::move(router).value(), gateway_calls, registry,
                                     clock, log);
  if (!gw.ok()) return Fail(gw.status().message());
  gateway::Gateway& gateway = **gw;

  // OTLP: spans are stored; LLM spans become calls in the pipeline unless they are an
  // application's view of a call the gateway recorded.
  std::unique_ptr<OtlpReceiver> otlp_receiver;
  if (c.otlp.enabled) {
    OtlpReceiverOptions oo;
    oo.capture_content = c.otlp.capture_content.value_or(c.gateway.capture_content);
    oo.threads = c.otlp.threads;
    oo.max_queued = c.otlp.max_queued;
    oo.max_queued_bytes = c.otlp.max_queued_bytes;
    oo.limits.max_body_bytes = c.otlp.max_body_bytes;
    oo.limits.max_items = c.otlp.max_spans_per_request;
    oo.limits.max_attributes = c.otlp.max_attributes;
    oo.redact = redact_text;
    auto genai_metrics = std::make_shared<OtlpGenAiMetrics>();
    registry.AddCollector(genai_metrics);
    oo.genai_metrics = genai_metrics.get();  // the registry keeps it alive
    oo.wait_for_gateway = [&gateway] { (void)gateway.WaitForHandovers(std::chrono::seconds(1)); };
    if (sampler) {
      oo.on_spans = [s = sampler.get()](const std::vector<core::Span>& spans) { s->Add(spans); };
    }
    otlp_receiver = std::make_unique<OtlpReceiver>(oo, pipe, writer.get(), &gateway_calls, registry,
                                                   clock, log);
  }

  // Re-reads the configuration file and applies what changes without a restart: the rules
  // (files, built-in pack and overrides) and the alerting config. Anything invalid leaves
  // the running set as it was and is reported. Serialized (SIGHUP and POST /-/reload).
  std::mutex reload_mu;
  auto reload = [&]() -> core::Status {
    std::lock_guard lock(reload_mu);
    auto fresh = LoadConfig(flags.config);
    std::string errors;
    if (!fresh.ok()) {
      errors = fresh.status().message();
    } else if (rules) {
      if (auto st = LoadRules(fresh->rules, *rules); !st.ok()) errors += st.message();
    }
    if (fresh.ok() && notifier && !fresh->alerting_config_file.empty()) {
      auto nc = LoadAlertingConfig(fresh->alerting_config_file);
      core::Status st = nc.ok() ? notifier->Reload(std::move(*nc)) : nc.status();
      if (!st.ok()) errors += (errors.empty() ? "" : "\n") + st.message();
    }
    if (!errors.empty()) {
      log.Error("reload failed; the previous rules and alerting config keep running",
                {{"error", errors}});
      return core::InvalidArgument(errors);
    }
    log.Info("reloaded", {{"rule_groups", rules ? std::to_string(rules->groups().size()) : "0"}});
    return core::Status::Ok();
  };

  // Admin work that may block (flushes, reloads, silence files): never on an event loop.
  http::WorkPool flush_pool(1, 16);
  // Everything but the gateway's endpoints: OTLP, the query and Prometheus APIs, admin.
  auto serve_other = [&](http::Request& req, http::ResponseWriter& w) -> http::Task<void> {
    const auto path = req.path();
    if (req.body_too_large()) {
      const http::HeaderList h{{"Content-Type", "application/json"}};
      co_await w.Send(413, h,
                      "{\"error\":{\"message\":\"request body exceeds the configured limit "
                      "(max_body_bytes)\",\"type\":\"invalid_request_error\",\"param\":null,"
                      "\"code\":\"request_too_large\"}}");
    } else if (otlp_receiver && OtlpReceiver::Handles(path)) {
      co_await otlp_receiver->Handle(req, w);
    } else if (path == "/api/v1/conformance") {
      const http::HeaderList h{{"Content-Type", "application/json"}};
      if (!otlp_receiver) {
        const std::string body = api::RenderError(core::NotFound("otlp.enabled is false"));
        co_await w.Send(404, h, body);
      } else {
        co_await w.Send(
            200, h, "{\"status\":\"success\",\"data\":" + otlp_receiver->ConformanceJson() + "}");
      }
    } else if (query_api.Handles(path)) {
      co_await query_api.Handle(req, w);
    } else if (prom_api.Handles(path)) {
      co_await prom_api.Handle(req, w);
    } else if (path == "/-/flush") {
      const http::HeaderList h{{"Content-Type", "application/json"}};
      if (req.method() != "POST") {
        co_await w.Send(405, h, "{\"status\":\"error\",\"error\":\"use POST\"}");
        co_return;
      }
      // The wait blocks: it runs on the query pool, never on this event loop.
      bool flushed = false;
      co_await http::RunOnPool(flush_pool, [&] {
        // First the calls whose responses are already with their clients, so that a client
        // that read its response and then flushed finds its call; then the pipeline.
        const auto timeout = std::chrono::seconds(10);
        flushed = gateway.WaitForHandovers(timeout) && pipe.Flush(timeout) &&
                  (!writer || writer->Flush(timeout)) && (!exporter || exporter->Flush(timeout));
      });
      co_await w.Send(flushed ? 200 : 503, h,
                      flushed ? "{\"status\":\"success\",\"data\":{\"flushed\":true}}"
                              : "{\"status\":\"error\",\"errorType\":\"timeout\","
                                "\"error\":\"not everything became durable within 10 s\"}");
    } else if (path == "/-/reload") {
      const http::HeaderList h{{"Content-Type", "application/json"}};
      if (req.method() != "POST") {
        co_await w.Send(405, h, "{\"status\":\"error\",\"error\":\"use POST\"}");
        co_return;
      }
      core::Status st;
      co_await http::RunOnPool(flush_pool, [&] { st = reload(); });
      // A named body: GCC 12 mishandles temporaries of a conditional inside co_await.
      const std::string body = st.ok() ? "{\"status\":\"success\"}" : api::RenderError(st);
      co_await w.Send(st.ok() ? 200 : 400, h, body);
    } else if (path.substr(0, 8) == "/api/v2/") {
      co_await AlertmanagerApi(req, w, notifier.get(), flush_pool);
    } else if (path == "/metrics") {
      auto format = metrics::NegotiateFormat(req.header("accept").value_or(""));
      const http::HeaderList h{{"Content-Type", std::string(metrics::ContentType(format))}};
      co_await w.Send(200, h, registry.Render(format));
    } else if (path == "/healthz" || path == "/readyz") {
      const http::HeaderList h{{"Content-Type", "text/plain"}};
      co_await w.Send(200, h, "ok\n");
    } else {
      const http::HeaderList h{{"Content-Type", "application/json"}};
      co_await w.Send(404, h,
                      "{\"error\":{\"message\":\"no such endpoint; llmscope serves /v1/chat/"
                      "completions, /v1/completions, /v1/embeddings, /v1/responses, "
                      "/v1/messages, /v1/models, /api/v1/..., /metrics, /healthz, /readyz\","
                      "\"type\":\"invalid_request_error\",\"param\":null,\"code\":null}}");
    }
  };
  // Not a coroutine: a proxied call's coroutine is the gateway's own, with no frame
  // allocated for this dispatch.
  http::Server server(c.http, [&](http::Request& req, http::ResponseWriter& w) -> http::Task<void> {
    if (gateway.Handles(req.method(), req.path())) return gateway.Handle(req, w);
    return serve_other(req, w);
  });
  // OTLP on a listener of its own (the standard port 4318), besides the main one.
  std::unique_ptr<http::Server> otlp_server;
  if (otlp_receiver && !c.otlp.listen_host.empty()) {
    http::ServerOptions so = c.http;
    so.host = c.otlp.listen_host;
    so.port = c.otlp.listen_port;
    so.threads = 1;
    so.max_body_bytes = c.otlp.max_body_bytes;
    so.pass_body_too_large = true;
    OtlpReceiver* receiver = otlp_receiver.get();
    otlp_server = std::make_unique<http::Server>(
        so, [receiver](http::Request& req, http::ResponseWriter& w) -> http::Task<void> {
          if (OtlpReceiver::Handles(req.path())) {
            co_await receiver->Handle(req, w);
          } else {
            const http::HeaderList h{{"Content-Type", "application/json"}};
            co_await w.Send(404, h,
                            "{\"code\":5,\"message\":\"this listener serves OTLP/HTTP: "
                            "/v1/traces, /v1/metrics, /v1/logs\"}");
          }
        });
    if (auto st = otlp_server->Start(); !st.ok()) return Fail("otlp.listen: " + st.message());
    log.Info("otlp listening",
             {{"addr", c.otlp.listen_host + ":" + std::to_string(otlp_server->port())}});
  }
  // OTLP/gRPC (the standard port 4317): its own handler threads run the receiver's decode
  // and accept; a call that finds them saturated is answered UNAVAILABLE and counted.
  std::unique_ptr<otlp::GrpcServer> otlp_grpc;
  if (otlp_receiver && !c.otlp.grpc_listen_host.empty()) {
    otlp::GrpcServerOptions go;
    go.host = c.otlp.grpc_listen_host;
    go.port = c.otlp.grpc_listen_port;
    go.max_receive_bytes = c.otlp.max_body_bytes;
    go.threads = c.otlp.threads;
    go.max_queued = c.otlp.max_queued;
    OtlpReceiver* receiver = otlp_receiver.get();
    go.on_refused = [receiver](otlp::Signal signal, int code) {
      receiver->CountGrpcRequest(signal, code);
    };
    auto started =
        otlp::GrpcServer::Start(go, [receiver](otlp::Signal signal, std::string_view bytes) {
          return receiver->ProcessGrpc(signal, bytes);
        });
    if (!started.ok()) return Fail("otlp.grpc_listen: " + started.status().message());
    otlp_grpc = std::move(started).value();
    const bool v6 = c.otlp.grpc_listen_host.find(':') != std::string::npos;
    log.Info("otlp grpc listening",
             {{"addr", (v6 ? "[" + c.otlp.grpc_listen_host + "]" : c.otlp.grpc_listen_host) + ":" +
                           std::to_string(otlp_grpc->port())}});
  }

  server.OnWorkerStop([&](int worker) {
    gateway.ShutdownWorker(worker);
    // Pool threads hand results to the event loops: they must be done before loops go.
    query_api.Shutdown();
    prom_api.Shutdown();
    flush_pool.Close();
    if (otlp_receiver) otlp_receiver->Shutdown();
  });
  if (auto st = server.Start(); !st.ok()) return Fail(st.message());
  const std::string addr = c.http.host + ":" + std::to_string(server.port());
  log.Info("listening", {{"addr", addr}, {"version", LLMSCOPE_VERSION}});
  if (!WriteReadyFile(flags.ready_file, server.port())) {
    log.Error("cannot write the ready file", {{"path", flags.ready_file}});
  }

  int sig = WaitForStopSignal(stop_signals);
  while (sig == SIGHUP) {
    (void)reload();  // logged either way
    sig = WaitForStopSignal(stop_signals);
  }
  log.Info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  if (otlp_grpc) otlp_grpc->Stop();  // its handler threads use the receiver
  if (otlp_server) otlp_server->Stop();
  server.Stop();
  for (auto& s : sims) s->Stop();
  pipe.Stop();  // drains: every accepted call reaches metrics, the call log and the writer
  if (sampler) sampler->Stop();    // decides what is pending; kept traces go to the exporter
  if (exporter) exporter->Stop();  // sends what is queued, within its shutdown timeout
  retention.reset();
  if (writer) writer->Stop();  // to the store within its timeout, the rest to the spill
  if (rule_runner) {
    if (auto st = rule_runner->Stop(); !st.ok()) {
      log.Error("rules: saving the alert state at stop failed", {{"error", st.message()}});
    }
  }
  if (notifier) notifier->Stop();  // delivers what is queued, within its timeout
  if (scrape_runner) {
    // A last scrape is not taken; what was scraped is persisted so that a restart keeps it.
    if (auto st = scrape_runner->Stop(); !st.ok()) {
      log.Error("tsdb: persisting at stop failed", {{"error", st.message()}});
    }
  }
  log.Info("stopped");
  return 0;
}

int Simulate(const Flags& flags) {
  core::SystemClock clock;
  simulator::SimServerOptions so;
  if (!flags.config.empty()) {
    auto cfg = LoadConfig(flags.config);
    if (!cfg.ok()) return Fail("invalid configuration:\n" + cfg.status().message());
    so.sim = cfg->simulator;
  }
  so.http.host = "127.0.0.1";
  so.http.port = 8081;
  if (!flags.listen.empty()) {
    if (auto st = ParseListen(flags.listen, so.http.host, so.http.port); !st.ok()) {
      return Fail(st.message());
    }
  }
  so.http.threads = flags.threads.empty() ? 0 : std::atoi(flags.threads.c_str());
  for (const auto& [k, v] : flags.sim) {
    char* end = nullptr;
    double d = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0')
      return Fail("--" + k + " must be a number, got '" + v + "'");
    if (k == "latency-ms") so.sim.latency = core::Nanos(static_cast<int64_t>(d * 1e6));
    if (k == "ttft-ms") so.sim.ttft = core::Nanos(static_cast<int64_t>(d * 1e6));
    if (k == "tokens-per-second") so.sim.tokens_per_second = d;
    if (k == "error-rate") so.sim.error_rate = d;
    if (k == "seed") so.sim.seed = static_cast<uint64_t>(d);
  }
  logging::JsonLogger log(STDERR_FILENO, core::LogLevel::kInfo, clock);
  const sigset_t stop_signals = BlockStopSignals();
  auto sim = simulator::SimServer::Create(so, clock);
  if (!sim.ok()) return Fail(sim.status().message());
  if (auto st = (*sim)->Start(); !st.ok()) return Fail(st.message());
  log.Info("simulator listening", {{"addr", so.http.host + ":" + std::to_string((*sim)->port())}});
  WriteReadyFile(flags.ready_file, (*sim)->port());
  WaitForStopSignal(stop_signals);
  (*sim)->Stop();
  return 0;
}

// `llmscope tsdb import`: parses the whole file first (an error imports nothing), then
// appends and persists.
int TsdbImport(int argc, char** argv) {
  std::string config_path, dir, file;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--config" || a == "--dir") && i + 1 < argc) {
      (a == "--config" ? config_path : dir) = argv[++i];
    } else if (!a.empty() && a[0] != '-' && file.empty()) {
      file = a;
    } else {
      return Fail("usage: llmscope tsdb import [--config FILE] [--dir DIR] FILE");
    }
  }
  if (file.empty()) return Fail("usage: llmscope tsdb import [--config FILE] [--dir DIR] FILE");
  auto cfg = LoadConfig(config_path);
  if (!cfg.ok()) return Fail("invalid configuration:\n" + cfg.status().message());
  auto text = ReadFile(file);
  if (!text.ok()) return Fail(text.status().message());
  auto samples = tsdb::ParseOpenMetricsSamples(*text);
  if (!samples.ok()) return Fail(file + ": " + samples.status().message());
  core::SystemClock clock;
  logging::JsonLogger log(STDERR_FILENO, core::LogLevel::kWarn, clock);
  tsdb::DbOptions o = cfg->tsdb.db;
  o.dir = dir.empty() ? cfg->tsdb.dir : dir;
  auto db = tsdb::Db::Open(o, clock, log);
  if (!db.ok()) return Fail("tsdb: " + db.status().message());
  const size_t n = samples->size();
  auto stats = tsdb::ImportSamples(**db, std::move(*samples));
  if (!stats.ok()) return Fail("tsdb: " + stats.status().message());
  const auto& a = stats->append;
  std::printf(
      "%s: %zu samples of %llu series: %llu stored; refused: %llu out of order, %llu duplicate, "
      "%llu before the retention, %llu over the series limit, %llu invalid\n",
      o.dir.c_str(), n, static_cast<unsigned long long>(stats->series),
      static_cast<unsigned long long>(a.appended), static_cast<unsigned long long>(a.out_of_order),
      static_cast<unsigned long long>(a.duplicate), static_cast<unsigned long long>(a.too_old),
      static_cast<unsigned long long>(a.series_limit_rejected),
      static_cast<unsigned long long>(a.invalid));
  return a.appended == n ? 0 : 1;
}

}  // namespace

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "version" || cmd == "--version") {
    std::printf("llmscope %s\n", LLMSCOPE_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "config") {
    if (argc >= 3 && std::string(argv[2]) == "default") {
      std::fwrite(DefaultConfigYaml().data(), 1, DefaultConfigYaml().size(), stdout);
      return 0;
    }
    if (argc != 4 || std::string(argv[2]) != "check")
      return Fail("usage: llmscope config check FILE");
    auto cfg = LoadConfig(argv[3]);
    if (!cfg.ok()) {
      std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
      return 1;
    }
    if (auto prices = LoadPrices(*cfg); !prices.ok()) {
      std::fprintf(stderr, "%s\n", prices.status().message().c_str());
      return 1;
    }
    // The files the configuration names are checked too: rules and the alerting config.
    auto rule_files = RuleFilesFor(cfg->rules);
    if (!rule_files.ok()) {
      std::fprintf(stderr, "rules:\n%s\n", rule_files.status().message().c_str());
      return 1;
    }
    if (!cfg->alerting_config_file.empty()) {
      if (auto a = LoadAlertingConfig(cfg->alerting_config_file); !a.ok()) {
        std::fprintf(stderr, "alerting: %s\n", a.status().message().c_str());
        return 1;
      }
    }
    size_t rules = 0;
    for (const auto& f : *rule_files) {
      for (const auto& g : f.groups) rules += g.rules.size();
    }
    std::printf("%s: ok (%zu upstreams, %zu routes, %zu rules%s)\n", argv[3], cfg->upstreams.size(),
                cfg->routes.size(), rules,
                cfg->alerting_config_file.empty() ? "" : ", alerting config");
    return 0;
  }
  if (cmd == "rules") {
    std::vector<std::string> args(argv + 2, argv + argc);
    auto out = alerts::RulesCommand(args);
    std::fputs(out.output.c_str(), out.exit_code == 0 ? stdout : stderr);
    return out.exit_code;
  }
  if (cmd == "tsdb") {
    if (argc >= 3 && std::string(argv[2]) == "import") return TsdbImport(argc, argv);
    return Fail("usage: llmscope tsdb import [--config FILE] [--dir DIR] FILE");
  }
  Flags flags;
  std::string err;
  if (cmd == "serve" || cmd == "simulate") {
    if (!ParseFlags(argc, argv, 2, flags, err)) return Fail(err + "\n" + kUsage);
    return cmd == "serve" ? Serve(flags) : Simulate(flags);
  }
  return Fail("unknown command '" + cmd + "'\n" + kUsage);
}

}  // namespace llmscope::server
