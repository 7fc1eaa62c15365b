#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "gateway/gateway.h"
#include "gateway/router.h"
#include "http/server.h"
#include "otlp/exporter.h"
#include "otlp/sampler.h"
#include "pipeline/pipeline.h"
#include "simulator/sim.h"
#include "stats/llm_metrics.h"
#include "storage/store.h"
#include "tsdb/db.h"

namespace llmscope::server {

// Where calls and spans are kept (docs/CONFIG.md, section storage).
struct StorageConfig {
  enum class Backend { kSqlite, kClickHouse, kOff };
  Backend backend = Backend::kSqlite;
  // Base directory for the SQLite file and the spill queue; created when missing.
  std::string dir = "llmscope-data";
  std::string sqlite_path;  // default <dir>/llmscope.db
  // WAL checkpoints on a thread of their own instead of inside the writer's commits
  // (storage_sqlite::SqliteOptions::background_checkpoint): worth it with idle cores.
  bool sqlite_background_checkpoint = false;
  std::string clickhouse_url = "http://127.0.0.1:8123";
  std::string clickhouse_database = "llmscope";
  std::string clickhouse_user = "default";
  std::string clickhouse_password;  // read from the variable named by password_env
  core::Nanos clickhouse_timeout = std::chrono::seconds(10);
  storage::RetentionOptions retention;
  core::Nanos retention_interval = std::chrono::hours(1);  // how often retention runs
  bool spill = true;                                       // spill to <dir>/spill when down
  uint64_t spill_max_bytes = 1ull << 30;
  int query_threads = 2;
  core::Nanos query_timeout = std::chrono::seconds(10);
  core::Nanos query_max_timeout = std::chrono::seconds(60);
};

// llmscope's own metrics history: the self-scrape into the embedded time-series store that
// PromQL, rules and the Prometheus-compatible API read (docs/CONFIG.md, section tsdb).
struct TsdbConfig {
  bool enabled = true;
  std::string dir;  // default <storage.dir>/tsdb
  std::chrono::milliseconds scrape_interval = std::chrono::seconds(15);
  std::chrono::milliseconds persist_interval = std::chrono::minutes(30);
  tsdb::DbOptions db;  // retention, downsampling window and series limit; dir is set at start
};

// Alerting and recording rules evaluated in process over the metrics history
// (docs/CONFIG.md, section rules).
struct RulesConfig {
  bool builtin = true;             // the built-in LLM rule pack (`llmscope rules export`)
  std::vector<std::string> files;  // Prometheus rule files or PrometheusRule manifests
  // Interval of groups whose file sets none (Prometheus' global evaluation_interval).
  std::chrono::milliseconds evaluation_interval = std::chrono::seconds(15);
  // When set, replaces the interval of every built-in group.
  std::optional<std::chrono::milliseconds> builtin_interval;
  // Per built-in alert name: a new `for`, or switched off.
  struct Override {
    std::optional<std::chrono::milliseconds> for_duration;
    bool disabled = false;
  };
  std::map<std::string, Override> builtin_overrides;
  std::string state_file;  // default <storage.dir>/alerts.state
  std::map<std::string, std::string> external_labels;
  std::string external_url;
};

// The OTLP/HTTP receiver (docs/CONFIG.md, section otlp): /v1/traces, /v1/metrics, /v1/logs
// on the main listener and, when `listen` is set, on a listener of its own (e.g. :4318).
struct OtlpConfig {
  bool enabled = true;
  std::string listen_host;  // empty: no extra listener
  uint16_t listen_port = 0;
  std::string grpc_listen_host;  // empty: no OTLP/gRPC listener
  uint16_t grpc_listen_port = 0;
  std::optional<bool> capture_content;  // unset: gateway.capture_content
  int threads = 1;                      // decode threads
  size_t max_queued = 64;               // requests waiting for them; more get 503
  size_t max_queued_bytes = 64u << 20;  // bodies waiting or in decoding; more get 503
  size_t max_body_bytes = 16u << 20;    // decompressed
  size_t max_spans_per_request = 10'000;
  size_t max_attributes = 128;
  // Sending on (otlp.export): kept traces of received spans and gateway calls go to another
  // OTLP/HTTP receiver. Off while exporter.endpoint is empty.
  otlp::ExporterOptions exporter;
  otlp::SamplerOptions sampling;
};

// Redaction of captured prompts and completions (gateway and OTLP) before they are logged
// or stored (docs/CONFIG.md, section redaction). Applies only when content is captured.
struct RedactionConfig {
  bool enabled = true;
  bool builtin = true;  // emails, API keys, bearer tokens, card numbers, US SSNs
  std::vector<std::pair<std::string, std::string>> patterns;  // {name, ECMAScript regex}
};

// The whole configuration, typed and validated once at start-up. docs/CONFIG.md documents
// every key; examples/llmscope.yaml is the default that `make run` uses.
struct Config {
  http::ServerOptions http;
  gateway::GatewayOptions gateway;
  std::vector<gateway::Upstream> upstreams;  // simulator upstreams get their origin at start
  std::vector<gateway::Route> routes;
  pipeline::PipelineOptions pipeline;
  stats::StatsOptions stats;
  simulator::SimOptions simulator;
  std::string calls_log = "stdout";  // "stdout", "stderr", "off" or a file path
  core::LogLevel log_level = core::LogLevel::kInfo;
  std::vector<std::string> pricing_files;  // price overrides layered over the defaults
  std::string pricing_inline_yaml;         // `pricing.models` given inline in this file
  StorageConfig storage;
  TsdbConfig tsdb;
  RulesConfig rules;
  OtlpConfig otlp;
  RedactionConfig redaction;
  // An Alertmanager-style file (route, receivers, inhibit_rules, alertmanagers); empty: no
  // notifications, alerts are only listed by /api/v1/alerts.
  std::string alerting_config_file;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;

// Parses and validates a YAML config. Fails listing every problem, one per line, each with
// "source:line: key: problem". API keys are read through `env` (never stored in the file).
core::Result<Config> ParseConfig(std::string_view yaml, std::string_view source,
                                 const EnvLookup& env);

// The configuration compiled into the binary (examples/llmscope.yaml).
std::string_view DefaultConfigYaml();

// "host:port" -> host and port. Errors name the value.
core::Status ParseListen(std::string_view s, std::string& host, uint16_t& port);

}  // namespace llmscope::server
