#include "server/config.h"

#include <gtest/gtest.h>

namespace llmscope::server {
namespace {

std::optional<std::string> Env(const std::string& name) {
  if (name == "OPENAI_API_KEY") return "sk-test";
  return std::nullopt;
}

TEST(ConfigTest, DefaultConfigParses) {
  auto c = ParseConfig(DefaultConfigYaml(), "default", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->http.host, "127.0.0.1");
  EXPECT_EQ(c->http.port, 8080);
  ASSERT_GE(c->upstreams.size(), 2u);
  EXPECT_EQ(c->upstreams[0].kind, gateway::ProviderKind::kSimulator);
  EXPECT_EQ(c->upstreams[1].api_key, "sk-test") << "keys come from the environment";
  auto router = gateway::Router::Create(c->upstreams, c->routes);
  ASSERT_TRUE(router.ok());
  EXPECT_EQ(router->Resolve("sim/gpt-4o-mini")->upstream->name, "sim");
  EXPECT_EQ(router->Resolve("gpt-4o")->upstream->name, "openai");
  EXPECT_EQ(router->Resolve("claude-sonnet-4-5")->upstream->name, "anthropic");
  EXPECT_EQ(router->Resolve("local/llama3")->upstream_model, "llama3");
}

TEST(ConfigTest, ListsEveryProblemWithItsLine) {
  const char* yaml =
      "listen: nowhere\n"
      "threads: -1\n"
      "colour: blue\n"
      "upstreams:\n"
      "  - name: a\n"
      "    kind: openia\n"
      "    base_url: ftp://x\n"
      "  - kind: openai\n"
      "routes:\n"
      "  - prefix: sim/\n"
      "    glob: '*'\n"
      "    upstream: a\n";
  auto c = ParseConfig(yaml, "bad.yaml", Env);
  ASSERT_FALSE(c.ok());
  const std::string m = c.status().message();
  EXPECT_NE(m.find("bad.yaml:1: listen: listen address 'nowhere' must be host:port"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("bad.yaml:2: threads: must not be negative"), std::string::npos) << m;
  EXPECT_NE(m.find("bad.yaml:3: colour: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown provider kind 'openia'"), std::string::npos) << m;
  EXPECT_NE(m.find("upstreams[1].name: is required"), std::string::npos) << m;
  EXPECT_NE(m.find("needs exactly one of model, prefix or glob"), std::string::npos) << m;
}

TEST(ConfigTest, RouteToUnknownUpstreamIsRejected) {
  auto c = ParseConfig(
      "upstreams: [{name: sim, kind: simulator}]\nroutes: [{prefix: 'x/', upstream: nope}]\n",
      "f.yaml", Env);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("unknown upstream 'nope'"), std::string::npos);
}

TEST(ConfigTest, RejectsBrokenYamlAndWrongTypes) {
  auto broken = ParseConfig("listen: [\n", "b.yaml", Env);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("not valid YAML"), std::string::npos);
  auto typed = ParseConfig(
      "gateway: {capture_content: maybe}\nupstreams: [{name: s, kind: simulator}]\n"
      "routes: [{prefix: 's/', upstream: s}]\n",
      "t.yaml", Env);
  ASSERT_FALSE(typed.ok());
  EXPECT_NE(typed.status().message().find("gateway.capture_content: must be a boolean"),
            std::string::npos)
      << typed.status().message();
}

TEST(ConfigTest, ListenParsing) {
  std::string host;
  uint16_t port = 0;
  ASSERT_TRUE(ParseListen("localhost:0", host, port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseListen("[::1]:9000", host, port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_FALSE(ParseListen("127.0.0.1:70000", host, port).ok());
}

}  // namespace
}  // namespace llmscope::server

namespace llmscope::server {
namespace {

constexpr char kMinimalRoutes[] =
    "upstreams: [{name: sim, kind: simulator}]\n"
    "routes: [{prefix: sim/, upstream: sim}]\n";

TEST(ConfigTest, StorageDefaultsToSqliteUnderItsDir) {
  auto c = ParseConfig(kMinimalRoutes, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->storage.backend, StorageConfig::Backend::kSqlite);
  EXPECT_EQ(c->storage.sqlite_path, "llmscope-data/llmscope.db");
  EXPECT_EQ(c->storage.retention.calls_days, 90);
  EXPECT_EQ(c->storage.retention.content_days, 7);
}

TEST(ConfigTest, SqliteBackgroundCheckpointIsABoolean) {
  auto on = ParseConfig(std::string(kMinimalRoutes) +
                            "storage:\n  sqlite: {path: /tmp/x.db, background_checkpoint: true}\n",
                        "t", Env);
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_TRUE(on->storage.sqlite_background_checkpoint);
  EXPECT_EQ(on->storage.sqlite_path, "/tmp/x.db");
  auto bad = ParseConfig(
      std::string(kMinimalRoutes) + "storage:\n  sqlite: {background_checkpoint: sometimes}\n", "t",
      Env);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("storage.sqlite.background_checkpoint"), std::string::npos)
      << bad.status().message();
}

TEST(ConfigTest, StorageSectionParsesAndNamesEachProblem) {
  std::string yaml = kMinimalRoutes;
  yaml +=
      "storage:\n"
      "  backend: clickhouse\n"
      "  dir: /var/lib/llmscope\n"
      "  clickhouse: {url: 'http://127.0.0.1:9123', database: calls_db,\n"
      "               password_env: OPENAI_API_KEY}\n"
      "  retention: {calls: 30d, content: 0, spans: 14d}\n"
      "  spill: {max_bytes: 1000}\n";
  auto c = ParseConfig(yaml, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->storage.backend, StorageConfig::Backend::kClickHouse);
  EXPECT_EQ(c->storage.sqlite_path, "/var/lib/llmscope/llmscope.db");
  EXPECT_FALSE(c->storage.sqlite_background_checkpoint);
  EXPECT_EQ(c->storage.clickhouse_url, "http://127.0.0.1:9123");
  EXPECT_EQ(c->storage.clickhouse_database, "calls_db");
  EXPECT_EQ(c->storage.clickhouse_password, "sk-test");
  EXPECT_EQ(c->storage.retention.calls_days, 30);
  EXPECT_EQ(c->storage.retention.content_days, 0);
  EXPECT_EQ(c->storage.retention.spans_days, 14);
  EXPECT_EQ(c->storage.spill_max_bytes, 1000u);

  std::string bad = kMinimalRoutes;
  bad +=
      "storage:\n"
      "  backend: postgres\n"
      "  retention: {calls: 3 months}\n"
      "  clickhouse: {database: 'x; DROP', url: 'ftp://h'}\n"
      "  colour: red\n";
  auto b = ParseConfig(bad, "t", Env);
  ASSERT_FALSE(b.ok());
  const std::string m = b.status().message();
  EXPECT_NE(m.find("t:4: storage.backend: must be sqlite, clickhouse or off"), std::string::npos)
      << m;
  EXPECT_NE(m.find("storage.retention.calls: must be a whole number of days"), std::string::npos)
      << m;
  EXPECT_NE(m.find("storage.clickhouse.database"), std::string::npos) << m;
  EXPECT_NE(m.find("storage.clickhouse.url"), std::string::npos) << m;
  EXPECT_NE(m.find("storage.colour: unknown key"), std::string::npos) << m;
}

TEST(ConfigTest, TsdbSectionParsesDurationsAndNamesEachProblem) {
  auto d = ParseConfig(kMinimalRoutes, "t", Env);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->tsdb.enabled);
  EXPECT_EQ(d->tsdb.dir, "llmscope-data/tsdb");
  EXPECT_EQ(d->tsdb.scrape_interval, std::chrono::seconds(15));

  std::string yaml = kMinimalRoutes;
  yaml +=
      "storage: {dir: /data}\n"
      "tsdb: {scrape_interval: 5s, persist_interval: 10m, raw_retention: 1d,\n"
      "       downsampled_retention: 40d, downsample_window: 1m, max_series: 500}\n";
  auto c = ParseConfig(yaml, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->tsdb.dir, "/data/tsdb");
  EXPECT_EQ(c->tsdb.scrape_interval, std::chrono::seconds(5));
  EXPECT_EQ(c->tsdb.persist_interval, std::chrono::minutes(10));
  EXPECT_EQ(c->tsdb.db.raw_retention, std::chrono::hours(24));
  EXPECT_EQ(c->tsdb.db.downsampled_retention, std::chrono::hours(24 * 40));
  EXPECT_EQ(c->tsdb.db.downsample_window, std::chrono::minutes(1));
  EXPECT_EQ(c->tsdb.db.max_series, 500u);

  std::string bad = kMinimalRoutes;
  bad +=
      "tsdb:\n"
      "  scrape_interval: often\n"
      "  persist_interval: 3d\n"
      "  max_series: 0\n"
      "  retention: 1d\n";
  auto b = ParseConfig(bad, "t", Env);
  ASSERT_FALSE(b.ok());
  const std::string m = b.status().message();
  EXPECT_NE(m.find("t:4: tsdb.scrape_interval: must be a duration"), std::string::npos) << m;
  EXPECT_NE(m.find("tsdb.persist_interval: must be at most half of tsdb.raw_retention"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("tsdb.max_series: must be positive"), std::string::npos) << m;
  EXPECT_NE(m.find("tsdb.retention: unknown key"), std::string::npos) << m;
}

TEST(ConfigTest, OtlpExportSectionParsesAndNamesEachProblem) {
  auto d = ParseConfig(kMinimalRoutes, "t", Env);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->otlp.exporter.endpoint.empty()) << "off by default";
  EXPECT_EQ(d->otlp.sampling.ratio, 1.0);
  EXPECT_EQ(d->otlp.sampling.decision_wait, std::chrono::seconds(5));

  std::string yaml = kMinimalRoutes;
  yaml +=
      "otlp:\n"
      "  export:\n"
      "    endpoint: http://collector:4318\n"
      "    headers: {Authorization: Bearer abc, X-Tenant: t1}\n"
      "    gzip: false\n"
      "    max_queue_spans: 1000\n"
      "    sampling: {ratio: 0.25, keep_errors: false, slow_ms: 2500, expensive_usd: 1.5,\n"
      "               decision_wait: 30s, max_traces: 10}\n";
  auto c = ParseConfig(yaml, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  const auto& x = c->otlp.exporter;
  EXPECT_EQ(x.endpoint, "http://collector:4318");
  ASSERT_EQ(x.headers.size(), 2u);
  EXPECT_EQ(x.headers[0], (std::pair<std::string, std::string>{"Authorization", "Bearer abc"}));
  EXPECT_FALSE(x.gzip);
  EXPECT_EQ(x.max_queue_spans, 1000u);
  const auto& s = c->otlp.sampling;
  EXPECT_EQ(s.ratio, 0.25);
  EXPECT_FALSE(s.keep_errors);
  EXPECT_EQ(s.slow, std::chrono::milliseconds(2500));
  EXPECT_EQ(s.expensive_usd, 1.5);
  EXPECT_EQ(s.decision_wait, std::chrono::seconds(30));
  EXPECT_EQ(s.max_traces, 10u);

  std::string bad = kMinimalRoutes;
  bad +=
      "otlp:\n"
      "  export:\n"
      "    endpoint: ftp://x\n"
      "    headers: [a]\n"
      "    max_queue_spans: 0\n"
      "    sampling: {ratio: 1.5, decision_wait: soon, max_traces: 0, rate: 1}\n";
  auto b = ParseConfig(bad, "t", Env);
  ASSERT_FALSE(b.ok());
  const std::string m = b.status().message();
  for (const char* want : {"otlp.export.endpoint:", "otlp.export.headers: must be a map",
                           "otlp.export.max_queue_spans: must be positive",
                           "otlp.export.sampling.ratio: must be between 0 and 1",
                           "otlp.export.sampling.decision_wait: must be a duration",
                           "otlp.export.sampling.max_traces: must be positive",
                           "otlp.export.sampling.rate: unknown key"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << "\n" << m;
  }
}

}  // namespace
TEST(ConfigTest, RulesAndAlertingSectionsParseAndNameEachProblem) {
  auto d = ParseConfig(kMinimalRoutes, "t", Env);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_TRUE(d->rules.builtin);
  EXPECT_TRUE(d->rules.files.empty());
  EXPECT_EQ(d->rules.evaluation_interval, std::chrono::seconds(15));
  EXPECT_FALSE(d->rules.builtin_interval.has_value());
  EXPECT_EQ(d->rules.state_file, "llmscope-data/alerts.state");
  EXPECT_TRUE(d->alerting_config_file.empty());

  std::string yaml = kMinimalRoutes;
  yaml +=
      "storage: {dir: /data}\n"
      "rules:\n"
      "  files: [a.yaml, /etc/b.yaml]\n"
      "  evaluation_interval: 30s\n"
      "  builtin_interval: 1m\n"
      "  builtin_overrides:\n"
      "    LLMHighErrorRate: {for: 10m}\n"
      "    LLMCostPerHourOverBudget: {disabled: true}\n"
      "  external_labels: {cluster: eu1}\n"
      "  external_url: https://llmscope.example\n"
      "alerting: {config_file: /etc/llmscope/alerting.yaml}\n";
  auto c = ParseConfig(yaml, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->rules.files, (std::vector<std::string>{"a.yaml", "/etc/b.yaml"}));
  EXPECT_EQ(c->rules.evaluation_interval, std::chrono::seconds(30));
  EXPECT_EQ(c->rules.builtin_interval, std::chrono::minutes(1));
  ASSERT_EQ(c->rules.builtin_overrides.size(), 2u);
  EXPECT_EQ(c->rules.builtin_overrides.at("LLMHighErrorRate").for_duration,
            std::chrono::minutes(10));
  EXPECT_FALSE(c->rules.builtin_overrides.at("LLMHighErrorRate").disabled);
  EXPECT_TRUE(c->rules.builtin_overrides.at("LLMCostPerHourOverBudget").disabled);
  EXPECT_EQ(c->rules.state_file, "/data/alerts.state");
  EXPECT_EQ(c->rules.external_labels.at("cluster"), "eu1");
  EXPECT_EQ(c->rules.external_url, "https://llmscope.example");
  EXPECT_EQ(c->alerting_config_file, "/etc/llmscope/alerting.yaml");

  std::string bad = kMinimalRoutes;
  bad +=
      "rules:\n"
      "  files: a.yaml\n"
      "  evaluation_interval: soon\n"
      "  builtin_overrides:\n"
      "    X: {for: 1m, silence: true}\n"
      "  external_labels: [a]\n"
      "  frequency: 1s\n"
      "alerting: {config: x}\n";
  auto b = ParseConfig(bad, "t", Env);
  ASSERT_FALSE(b.ok());
  const std::string m = b.status().message();
  EXPECT_NE(m.find("rules.files: must be a list of file paths"), std::string::npos) << m;
  EXPECT_NE(m.find("rules.evaluation_interval: must be a duration"), std::string::npos) << m;
  EXPECT_NE(m.find("rules.builtin_overrides.X.silence: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("rules.external_labels: must be a map"), std::string::npos) << m;
  EXPECT_NE(m.find("rules.frequency: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("alerting.config: unknown key"), std::string::npos) << m;
}

TEST(ConfigTest, RedactionSectionParsesAndNamesBadPatterns) {
  auto d = ParseConfig(kMinimalRoutes, "t", Env);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->redaction.enabled);
  EXPECT_TRUE(d->redaction.builtin);

  std::string yaml = kMinimalRoutes;
  yaml +=
      "redaction:\n"
      "  builtin: false\n"
      "  patterns: [{name: ticket, regex: 'TICKET-[0-9]+'}]\n";
  auto c = ParseConfig(yaml, "t", Env);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_FALSE(c->redaction.builtin);
  ASSERT_EQ(c->redaction.patterns.size(), 1u);
  EXPECT_EQ(c->redaction.patterns[0].first, "ticket");

  std::string bad = kMinimalRoutes;
  bad +=
      "redaction:\n"
      "  patterns:\n"
      "    - {name: broken, regex: '(unclosed'}\n"
      "    - {name: Bad Name, regex: x}\n"
      "  mode: strict\n";
  auto b = ParseConfig(bad, "t", Env);
  ASSERT_FALSE(b.ok());
  const std::string m = b.status().message();
  EXPECT_NE(m.find("redaction.patterns[0]: redaction pattern broken"), std::string::npos) << m;
  EXPECT_NE(m.find("redaction.patterns[1]: redaction pattern name 'Bad Name'"), std::string::npos)
      << m;
  EXPECT_NE(m.find("redaction.mode: unknown key"), std::string::npos) << m;
}

}  // namespace llmscope::server

namespace llmscope::server {
namespace {

TEST(ConfigTest, OtlpGrpcListenIsOffByDefaultAndParsed) {
  constexpr char kRoutes[] =
      "upstreams: [{name: sim, kind: simulator}]\n"
      "routes: [{prefix: sim/, upstream: sim}]\n";
  auto off = ParseConfig(kRoutes, "t", Env);
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_TRUE(off->otlp.grpc_listen_host.empty());

  auto on = ParseConfig(std::string(kRoutes) + "otlp: {grpc_listen: '127.0.0.1:0'}\n", "t", Env);
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_EQ(on->otlp.grpc_listen_host, "127.0.0.1");
  EXPECT_EQ(on->otlp.grpc_listen_port, 0);

  auto bad = ParseConfig(std::string(kRoutes) + "otlp: {grpc_listen: 'nowhere'}\n", "b.yaml", Env);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("otlp.grpc_listen"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace llmscope::server
