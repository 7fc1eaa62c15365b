#include "server/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <set>

#include "http/client.h"
#include "promql/parser.h"
#include "redact/redactor.h"

namespace llmscope::server {

namespace {

// Collects every problem instead of stopping at the first, so one run of `llmscope serve`
// or `llmscope config check` shows the user all that is wrong.
class Problems {
 public:
  explicit Problems(std::string_view source) : source_(source) {}
  void Add(const YAML::Node& at, std::string_view key, std::string_view problem) {
    out_ += source_;
    if (at.IsDefined() && at.Mark().line >= 0) out_ += ":" + std::to_string(at.Mark().line + 1);
    out_ += ": ";
    out_ += key;
    out_ += ": ";
    out_ += problem;
    out_ += "\n";
  }
  bool empty() const { return out_.empty(); }
  std::string str() const { return out_.substr(0, out_.size() - 1); }

 private:
  std::string source_;
  std::string out_;
};

std::string Join(std::string_view where, std::string_view key) {
  return where.empty() ? std::string(key) : std::string(where) + "." + std::string(key);
}

void CheckKeys(const YAML::Node& map, std::string_view where, std::set<std::string> allowed,
               Problems& p) {
  if (!map.IsMap()) return;
  for (const auto& kv : map) {
    auto k = kv.first.as<std::string>("");
    if (!allowed.count(k)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      p.Add(kv.first, Join(where, k), "unknown key (expected one of: " + list + ")");
    }
  }
}

template <typename T>
void Get(const YAML::Node& map, const char* key, std::string_view where, T& out, Problems& p) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return;
  try {
    out = n.as<T>();
  } catch (const YAML::Exception&) {
    std::string_view type = std::is_same_v<T, bool>          ? "a boolean"
                            : std::is_same_v<T, std::string> ? "a string"
                            : std::is_floating_point_v<T>    ? "a number"
                                                             : "a whole number";
    p.Add(n, Join(where, key), "must be " + std::string(type));
  }
}

template <typename T>
void GetPositive(const YAML::Node& map, const char* key, std::string_view where, T& out,
                 Problems& p, bool allow_zero = false) {
  T v = out;
  Get(map, key, where, v, p);
  if (map[key].IsDefined() && (v < 0 || (!allow_zero && v == 0))) {
    p.Add(map[key], Join(where, key), allow_zero ? "must not be negative" : "must be positive");
    return;
  }
  out = v;
}

void GetMillis(const YAML::Node& map, const char* key, std::string_view where, core::Nanos& out,
               Problems& p, bool allow_zero = true) {
  double ms = static_cast<double>(out.count()) / 1e6;
  GetPositive(map, key, where, ms, p, allow_zero);
  out = core::Nanos(static_cast<int64_t>(ms * 1e6));
}

// A whole number of days: "90d" or 90. 0 keeps forever.
void GetDays(const YAML::Node& map, const char* key, std::string_view where, int& out,
             Problems& p) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return;
  std::string text = n.as<std::string>("");
  if (!text.empty() && text.back() == 'd') text.pop_back();
  int v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < 0 || v > 36500) {
    p.Add(n, Join(where, key), "must be a whole number of days such as 90d (0d keeps forever)");
    return;
  }
  out = v;
}

// A Prometheus duration ("15s", "2d", "1h30m") in milliseconds, at least `min`.
void GetDuration(const YAML::Node& map, const char* key, std::string_view where,
                 std::chrono::milliseconds& out, std::chrono::milliseconds min, Problems& p) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return;
  auto ms = promql::ParseDuration(n.as<std::string>(""));
  if (!ms.ok() || std::chrono::milliseconds(*ms) < min) {
    p.Add(n, Join(where, key),
          "must be a duration such as 15s, 30m, 2d or 1h30m, at least " +
              promql::FormatDuration(min.count()));
    return;
  }
  out = std::chrono::milliseconds(*ms);
}

// otlp.export: where and how kept traces are sent on.
void ParseOtlpExport(const YAML::Node& e, OtlpConfig& c, Problems& p) {
  constexpr std::string_view where = "otlp.export";
  if (!e.IsMap()) {
    p.Add(e, where, "must be a map");
    return;
  }
  CheckKeys(e, where, {"endpoint", "headers", "gzip", "max_queue_spans", "sampling"}, p);
  otlp::ExporterOptions& x = c.exporter;
  Get(e, "endpoint", where, x.endpoint, p);
  if (!x.endpoint.empty()) {
    if (auto o = http::Origin::Parse(x.endpoint); !o.ok()) {
      p.Add(e["endpoint"], "otlp.export.endpoint", o.status().message());
    }
  }
  if (auto h = e["headers"]; h.IsDefined() && !h.IsNull()) {
    if (!h.IsMap()) {
      p.Add(h, "otlp.export.headers", "must be a map of header names to values");
    } else {
      for (const auto& kv : h) {
        x.headers.emplace_back(kv.first.as<std::string>(""), kv.second.as<std::string>(""));
      }
    }
  }
  Get(e, "gzip", where, x.gzip, p);
  GetPositive(e, "max_queue_spans", where, x.max_queue_spans, p);
  const YAML::Node s = e["sampling"];
  if (!s.IsDefined() || s.IsNull()) return;
  constexpr std::string_view sw = "otlp.export.sampling";
  if (!s.IsMap()) {
    p.Add(s, sw, "must be a map");
    return;
  }
  CheckKeys(s, sw,
            {"ratio", "keep_errors", "slow_ms", "expensive_usd", "decision_wait", "max_traces"}, p);
  otlp::SamplerOptions& o = c.sampling;
  Get(s, "ratio", sw, o.ratio, p);
  if (!(o.ratio >= 0 && o.ratio <= 1)) {
    p.Add(s["ratio"], "otlp.export.sampling.ratio", "must be between 0 and 1");
  }
  Get(s, "keep_errors", sw, o.keep_errors, p);
  GetMillis(s, "slow_ms", sw, o.slow, p);
  GetPositive(s, "expensive_usd", sw, o.expensive_usd, p, true);
  std::chrono::milliseconds wait =
      std::chrono::duration_cast<std::chrono::milliseconds>(o.decision_wait);
  GetDuration(s, "decision_wait", sw, wait, std::chrono::milliseconds(10), p);
  o.decision_wait = wait;
  GetPositive(s, "max_traces", sw, o.max_traces, p);
}

void ParseTsdb(const YAML::Node& s, TsdbConfig& c, Problems& p) {
  CheckKeys(s, "tsdb",
            {"enabled", "dir", "scrape_interval", "persist_interval", "raw_retention",
             "downsampled_retention", "downsample_window", "max_series"},
            p);
  Get(s, "enabled", "tsdb", c.enabled, p);
  Get(s, "dir", "tsdb", c.dir, p);
  using std::chrono::milliseconds;
  GetDuration(s, "scrape_interval", "tsdb", c.scrape_interval, milliseconds(10), p);
  GetDuration(s, "persist_interval", "tsdb", c.persist_interval, milliseconds(10), p);
  GetDuration(s, "raw_retention", "tsdb", c.db.raw_retention, milliseconds(1000), p);
  GetDuration(s, "downsampled_retention", "tsdb", c.db.downsampled_retention, milliseconds(1000),
              p);
  GetDuration(s, "downsample_window", "tsdb", c.db.downsample_window, milliseconds(1000), p);
  GetPositive(s, "max_series", "tsdb", c.db.max_series, p);
  if (c.persist_interval < c.scrape_interval) {
    p.Add(s["persist_interval"], "tsdb.persist_interval",
          "must not be shorter than tsdb.scrape_interval");
  }
  if (c.persist_interval > c.db.raw_retention / 2) {
    p.Add(s["persist_interval"], "tsdb.persist_interval",
          "must be at most half of tsdb.raw_retention (samples older than that leave memory)");
  }
  if (auto st = tsdb::ValidateDbOptions(c.db); !st.ok()) p.Add(s, "tsdb", st.message());
}

// A string -> string map (labels).
void GetStringMap(const YAML::Node& map, const char* key, std::string_view where,
                  std::map<std::string, std::string>& out, Problems& p) {
  const YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return;
  if (!n.IsMap()) {
    p.Add(n, Join(where, key), "must be a map of names to strings");
    return;
  }
  for (const auto& kv : n) {
    auto k = kv.first.as<std::string>("");
    if (!kv.second.IsScalar()) {
      p.Add(kv.second, Join(Join(where, key), k), "must be a string");
      continue;
    }
    out[k] = kv.second.as<std::string>("");
  }
}

void ParseRules(const YAML::Node& s, RulesConfig& c, Problems& p) {
  CheckKeys(s, "rules",
            {"builtin", "files", "evaluation_interval", "builtin_interval", "builtin_overrides",
             "state_file", "external_labels", "external_url"},
            p);
  Get(s, "builtin", "rules", c.builtin, p);
  if (auto f = s["files"]; f.IsDefined() && !f.IsNull()) {
    if (!f.IsSequence()) {
      p.Add(f, "rules.files", "must be a list of file paths");
    } else {
      for (size_t i = 0; i < f.size(); ++i) {
        auto path = f[i].as<std::string>("");
        if (!f[i].IsScalar() || path.empty()) {
          p.Add(f[i], "rules.files[" + std::to_string(i) + "]", "must be a file path");
        } else {
          c.files.push_back(path);
        }
      }
    }
  }
  using std::chrono::milliseconds;
  GetDuration(s, "evaluation_interval", "rules", c.evaluation_interval, milliseconds(100), p);
  if (s["builtin_interval"].IsDefined()) {
    milliseconds v(0);
    GetDuration(s, "builtin_interval", "rules", v, milliseconds(100), p);
    if (v.count() > 0) c.builtin_interval = v;
  }
  if (auto o = s["builtin_overrides"]; o.IsDefined() && !o.IsNull()) {
    if (!o.IsMap()) {
      p.Add(o, "rules.builtin_overrides", "must be a map of alert names to {for, disabled}");
    } else {
      for (const auto& kv : o) {
        const std::string name = kv.first.as<std::string>("");
        const std::string where = "rules.builtin_overrides." + name;
        if (!kv.second.IsMap()) {
          p.Add(kv.second, where, "must be a map with `for` and/or `disabled`");
          continue;
        }
        CheckKeys(kv.second, where, {"for", "disabled"}, p);
        RulesConfig::Override ov;
        Get(kv.second, "disabled", where, ov.disabled, p);
        if (kv.second["for"].IsDefined()) {
          milliseconds v(-1);
          GetDuration(kv.second, "for", where, v, milliseconds(0), p);
          if (v.count() >= 0) ov.for_duration = v;
        }
        c.builtin_overrides[name] = ov;
      }
    }
  }
  Get(s, "state_file", "rules", c.state_file, p);
  GetStringMap(s, "external_labels", "rules", c.external_labels, p);
  Get(s, "external_url", "rules", c.external_url, p);
}

void ParseStorage(const YAML::Node& s, StorageConfig& c, const EnvLookup& env, Problems& p) {
  CheckKeys(s, "storage", {"backend", "dir", "sqlite", "clickhouse", "retention", "spill", "query"},
            p);
  std::string backend = "sqlite";
  Get(s, "backend", "storage", backend, p);
  if (backend == "sqlite") {
    c.backend = StorageConfig::Backend::kSqlite;
  } else if (backend == "clickhouse") {
    c.backend = StorageConfig::Backend::kClickHouse;
  } else if (backend == "off") {
    c.backend = StorageConfig::Backend::kOff;
  } else {
    p.Add(s["backend"], "storage.backend", "must be sqlite, clickhouse or off");
  }
  Get(s, "dir", "storage", c.dir, p);
  if (c.dir.empty()) p.Add(s["dir"], "storage.dir", "must not be empty");
  if (auto q = s["sqlite"]; q.IsDefined()) {
    CheckKeys(q, "storage.sqlite", {"path", "background_checkpoint"}, p);
    Get(q, "path", "storage.sqlite", c.sqlite_path, p);
    Get(q, "background_checkpoint", "storage.sqlite", c.sqlite_background_checkpoint, p);
  }
  if (auto q = s["clickhouse"]; q.IsDefined()) {
    CheckKeys(q, "storage.clickhouse", {"url", "database", "user", "password_env", "timeout_ms"},
              p);
    Get(q, "url", "storage.clickhouse", c.clickhouse_url, p);
    if (auto o = http::Origin::Parse(c.clickhouse_url); !o.ok()) {
      p.Add(q["url"], "storage.clickhouse.url", o.status().message());
    }
    Get(q, "database", "storage.clickhouse", c.clickhouse_database, p);
    bool name_ok = !c.clickhouse_database.empty();
    for (char ch : c.clickhouse_database) {
      name_ok = name_ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
    }
    if (!name_ok) {
      p.Add(q["database"], "storage.clickhouse.database",
            "must be letters, digits and underscores");
    }
    Get(q, "user", "storage.clickhouse", c.clickhouse_user, p);
    std::string password_env;
    Get(q, "password_env", "storage.clickhouse", password_env, p);
    if (!password_env.empty()) c.clickhouse_password = env(password_env).value_or("");
    GetMillis(q, "timeout_ms", "storage.clickhouse", c.clickhouse_timeout, p, false);
  }
  if (auto r = s["retention"]; r.IsDefined()) {
    CheckKeys(r, "storage.retention", {"calls", "content", "spans", "interval_ms"}, p);
    GetDays(r, "calls", "storage.retention", c.retention.calls_days, p);
    GetDays(r, "content", "storage.retention", c.retention.content_days, p);
    GetDays(r, "spans", "storage.retention", c.retention.spans_days, p);
    GetMillis(r, "interval_ms", "storage.retention", c.retention_interval, p, false);
  }
  if (auto q = s["spill"]; q.IsDefined()) {
    CheckKeys(q, "storage.spill", {"enabled", "max_bytes"}, p);
    Get(q, "enabled", "storage.spill", c.spill, p);
    GetPositive(q, "max_bytes", "storage.spill", c.spill_max_bytes, p);
  }
  if (auto q = s["query"]; q.IsDefined()) {
    CheckKeys(q, "storage.query", {"threads", "timeout_ms", "max_timeout_ms"}, p);
    GetPositive(q, "threads", "storage.query", c.query_threads, p);
    GetMillis(q, "timeout_ms", "storage.query", c.query_timeout, p, false);
    GetMillis(q, "max_timeout_ms", "storage.query", c.query_max_timeout, p, false);
  }
}

}  // namespace

core::Status ParseListen(std::string_view s, std::string& host, uint16_t& port) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return core::InvalidArgument("listen address '" + std::string(s) +
                                 "' must be host:port, e.g. 127.0.0.1:8080");
  }
  std::string_view h = s.substr(0, colon), ps = s.substr(colon + 1);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned v = 0;
  auto [end, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), v);
  if (ec != std::errc() || end != ps.data() + ps.size() || v > 65535) {
    return core::InvalidArgument("listen address '" + std::string(s) + "' has a bad port");
  }
  host = std::string(h == "localhost" ? "127.0.0.1" : h);
  port = static_cast<uint16_t>(v);
  return core::Status::Ok();
}

core::Result<Config> ParseConfig(std::string_view yaml, std::string_view source,
                                 const EnvLookup& env) {
  Config c;
  Problems p(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    return core::InvalidArgument(std::string(source) + ":" + std::to_string(e.mark.line + 1) +
                                 ": not valid YAML: " + e.msg);
  }
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return core::InvalidArgument(std::string(source) + ": must be a YAML map");
  CheckKeys(root, "",
            {"listen", "threads", "max_body_bytes", "gateway", "logs", "pipeline", "metrics",
             "pricing", "simulator", "upstreams", "routes", "storage", "tsdb", "rules", "alerting",
             "otlp", "redaction"},
            p);

  std::string listen = "127.0.0.1:8080";
  Get(root, "listen", "", listen, p);
  if (auto st = ParseListen(listen, c.http.host, c.http.port); !st.ok()) {
    p.Add(root["listen"], "listen", st.message());
  }
  GetPositive(root, "threads", "", c.http.threads, p, /*allow_zero=*/true);
  GetPositive(root, "max_body_bytes", "", c.http.max_body_bytes, p);

  if (auto g = root["gateway"]; g.IsDefined()) {
    CheckKeys(g, "gateway", {"capture_content", "max_captured_bytes", "overhead_header"}, p);
    Get(g, "capture_content", "gateway", c.gateway.capture_content, p);
    GetPositive(g, "max_captured_bytes", "gateway", c.gateway.max_captured_bytes, p);
    Get(g, "overhead_header", "gateway", c.gateway.overhead_header, p);
  }
  if (auto l = root["logs"]; l.IsDefined()) {
    CheckKeys(l, "logs", {"calls", "level"}, p);
    Get(l, "calls", "logs", c.calls_log, p);
    std::string level = "info";
    Get(l, "level", "logs", level, p);
    bool ok = true;
    if (level == "debug")
      c.log_level = core::LogLevel::kDebug;
    else if (level == "info")
      c.log_level = core::LogLevel::kInfo;
    else if (level == "warn")
      c.log_level = core::LogLevel::kWarn;
    else if (level == "error")
      c.log_level = core::LogLevel::kError;
    else
      ok = false;
    if (!ok) p.Add(l["level"], "logs.level", "must be debug, info, warn or error");
  }
  if (auto q = root["pipeline"]; q.IsDefined()) {
    CheckKeys(q, "pipeline", {"queue_capacity", "max_batch", "max_batch_delay_ms"}, p);
    GetPositive(q, "queue_capacity", "pipeline", c.pipeline.queue_capacity, p);
    GetPositive(q, "max_batch", "pipeline", c.pipeline.max_batch, p);
    GetMillis(q, "max_batch_delay_ms", "pipeline", c.pipeline.max_batch_delay, p, false);
  }
  if (auto m = root["metrics"]; m.IsDefined()) {
    CheckKeys(m, "metrics", {"series_cap"}, p);
    GetPositive(m, "series_cap", "metrics", c.stats.series_cap, p);
  }
  if (auto pr = root["pricing"]; pr.IsDefined()) {
    CheckKeys(pr, "pricing", {"files", "models"}, p);
    if (auto f = pr["files"]; f.IsDefined()) {
      if (!f.IsSequence()) {
        p.Add(f, "pricing.files", "must be a list of paths");
      } else {
        for (const auto& e : f) c.pricing_files.push_back(e.as<std::string>(""));
      }
    }
    if (auto m = pr["models"]; m.IsDefined()) {
      YAML::Emitter e;
      YAML::Node wrap(YAML::NodeType::Map);
      wrap["models"] = m;
      e << wrap;
      c.pricing_inline_yaml = e.c_str();
    }
  }
  if (auto s = root["simulator"]; s.IsDefined()) {
    CheckKeys(s, "simulator",
              {"latency_ms", "ttft_ms", "tokens_per_second", "min_output_tokens",
               "max_output_tokens", "error_rate", "seed", "embedding_dims"},
              p);
    GetMillis(s, "latency_ms", "simulator", c.simulator.latency, p);
    GetMillis(s, "ttft_ms", "simulator", c.simulator.ttft, p);
    GetPositive(s, "tokens_per_second", "simulator", c.simulator.tokens_per_second, p);
    GetPositive(s, "min_output_tokens", "simulator", c.simulator.min_output_tokens, p, true);
    GetPositive(s, "max_output_tokens", "simulator", c.simulator.max_output_tokens, p, true);
    Get(s, "error_rate", "simulator", c.simulator.error_rate, p);
    Get(s, "seed", "simulator", c.simulator.seed, p);
    GetPositive(s, "embedding_dims", "simulator", c.simulator.embedding_dims, p);
    if (auto st = simulator::ValidateOptions(c.simulator); !st.ok()) {
      p.Add(s, "simulator", st.message());
    }
  }

  if (auto s = root["storage"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "storage", "must be a map");
    } else {
      ParseStorage(s, c.storage, env, p);
    }
  }
  if (c.storage.sqlite_path.empty()) c.storage.sqlite_path = c.storage.dir + "/llmscope.db";
  if (auto s = root["tsdb"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "tsdb", "must be a map");
    } else {
      ParseTsdb(s, c.tsdb, p);
    }
  }
  if (c.tsdb.dir.empty()) c.tsdb.dir = c.storage.dir + "/tsdb";
  if (auto s = root["rules"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "rules", "must be a map");
    } else {
      ParseRules(s, c.rules, p);
    }
  }
  if (c.rules.state_file.empty()) c.rules.state_file = c.storage.dir + "/alerts.state";
  if (auto s = root["otlp"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "otlp", "must be a map");
    } else {
      CheckKeys(s, "otlp",
                {"enabled", "listen", "grpc_listen", "capture_content", "threads", "max_queued",
                 "max_queued_bytes", "max_body_bytes", "max_spans_per_request", "max_attributes",
                 "export"},
                p);
      Get(s, "enabled", "otlp", c.otlp.enabled, p);
      std::string otlp_listen;
      Get(s, "listen", "otlp", otlp_listen, p);
      if (!otlp_listen.empty()) {
        if (auto st = ParseListen(otlp_listen, c.otlp.listen_host, c.otlp.listen_port); !st.ok()) {
          p.Add(s["listen"], "otlp.listen", st.message());
        }
      }
      std::string grpc_listen;
      Get(s, "grpc_listen", "otlp", grpc_listen, p);
      if (!grpc_listen.empty()) {
        if (auto st = ParseListen(grpc_listen, c.otlp.grpc_listen_host, c.otlp.grpc_listen_port);
            !st.ok()) {
          p.Add(s["grpc_listen"], "otlp.grpc_listen", st.message());
        }
      }
      if (s["capture_content"].IsDefined()) {
        bool v = false;
        Get(s, "capture_content", "otlp", v, p);
        c.otlp.capture_content = v;
      }
      GetPositive(s, "threads", "otlp", c.otlp.threads, p);
      GetPositive(s, "max_queued", "otlp", c.otlp.max_queued, p);
      GetPositive(s, "max_queued_bytes", "otlp", c.otlp.max_queued_bytes, p);
      GetPositive(s, "max_body_bytes", "otlp", c.otlp.max_body_bytes, p);
      GetPositive(s, "max_spans_per_request", "otlp", c.otlp.max_spans_per_request, p);
      GetPositive(s, "max_attributes", "otlp", c.otlp.max_attributes, p);
      if (auto e = s["export"]; e.IsDefined()) ParseOtlpExport(e, c.otlp, p);
    }
  }
  if (auto s = root["redaction"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "redaction", "must be a map");
    } else {
      CheckKeys(s, "redaction", {"enabled", "builtin", "patterns"}, p);
      Get(s, "enabled", "redaction", c.redaction.enabled, p);
      Get(s, "builtin", "redaction", c.redaction.builtin, p);
      const YAML::Node pats = s["patterns"];
      if (pats.IsDefined() && !pats.IsNull() && !pats.IsSequence()) {
        p.Add(pats, "redaction.patterns", "must be a list of {name, regex}");
      } else if (pats.IsDefined()) {
        for (size_t i = 0; i < pats.size(); ++i) {
          const std::string where = "redaction.patterns[" + std::to_string(i) + "]";
          if (!pats[i].IsMap()) {
            p.Add(pats[i], where, "must be a map with name and regex");
            continue;
          }
          CheckKeys(pats[i], where, {"name", "regex"}, p);
          std::string name, regex;
          Get(pats[i], "name", where, name, p);
          Get(pats[i], "regex", where, regex, p);
          auto check = redact::Redactor::Create({.builtin = false, .patterns = {{name, regex}}});
          if (!check.ok()) {
            p.Add(pats[i], where, check.status().message());
          } else {
            c.redaction.patterns.emplace_back(name, regex);
          }
        }
      }
    }
  }
  if (auto s = root["alerting"]; s.IsDefined()) {
    if (!s.IsMap()) {
      p.Add(s, "alerting", "must be a map");
    } else {
      CheckKeys(s, "alerting", {"config_file"}, p);
      Get(s, "config_file", "alerting", c.alerting_config_file, p);
    }
  }

  const YAML::Node ups = root["upstreams"];
  if (ups.IsDefined() && !ups.IsSequence()) p.Add(ups, "upstreams", "must be a list");
  if (ups.IsSequence()) {
    for (size_t i = 0; i < ups.size(); ++i) {
      const YAML::Node u = ups[i];
      std::string where = "upstreams[" + std::to_string(i) + "]";
      if (!u.IsMap()) {
        p.Add(u, where, "must be a map");
        continue;
      }
      CheckKeys(
          u, where,
          {"name", "kind", "base_url", "api_key_env", "connect_timeout_ms", "first_byte_timeout_ms",
           "idle_timeout_ms", "max_idle_connections", "headers", "ca_file", "verify_tls"},
          p);
      gateway::Upstream up;
      Get(u, "name", where, up.name, p);
      if (up.name.empty()) p.Add(u, where + ".name", "is required");
      std::string kind;
      Get(u, "kind", where, kind, p);
      if (auto k = gateway::ParseProviderKind(kind); k.ok()) {
        up.kind = *k;
      } else {
        p.Add(u["kind"].IsDefined() ? u["kind"] : u, where + ".kind", k.status().message());
      }
      std::string base_url;
      Get(u, "base_url", where, base_url, p);
      if (up.kind == gateway::ProviderKind::kSimulator) {
        if (!base_url.empty()) {
          p.Add(u["base_url"], where + ".base_url",
                "a simulator upstream runs inside llmscope and takes no base_url");
        }
      } else if (base_url.empty()) {
        p.Add(u, where + ".base_url", "is required for kind " + kind);
      } else if (auto o = http::Origin::Parse(base_url); o.ok()) {
        up.origin = *o;
      } else {
        p.Add(u["base_url"], where + ".base_url", o.status().message());
      }
      Get(u, "api_key_env", where, up.api_key_env, p);
      if (!up.api_key_env.empty()) up.api_key = env(up.api_key_env).value_or("");
      GetMillis(u, "connect_timeout_ms", where, up.client.connect_timeout, p, false);
      GetMillis(u, "first_byte_timeout_ms", where, up.client.first_byte_timeout, p, false);
      GetMillis(u, "idle_timeout_ms", where, up.client.idle_timeout, p, false);
      GetPositive(u, "max_idle_connections", where, up.client.max_idle_per_origin, p, true);
      Get(u, "ca_file", where, up.client.ca_file, p);
      Get(u, "verify_tls", where, up.client.verify_tls, p);
      if (auto h = u["headers"]; h.IsDefined()) {
        if (!h.IsMap()) {
          p.Add(h, where + ".headers", "must be a map of header name to value");
        } else {
          for (const auto& kv : h) {
            up.extra_headers.emplace_back(kv.first.as<std::string>(""),
                                          kv.second.as<std::string>(""));
          }
        }
      }
      c.upstreams.push_back(std::move(up));
    }
  }

  const YAML::Node routes = root["routes"];
  if (routes.IsDefined() && !routes.IsSequence()) p.Add(routes, "routes", "must be a list");
  if (routes.IsSequence()) {
    for (size_t i = 0; i < routes.size(); ++i) {
      const YAML::Node r = routes[i];
      std::string where = "routes[" + std::to_string(i) + "]";
      if (!r.IsMap()) {
        p.Add(r, where, "must be a map");
        continue;
      }
      CheckKeys(r, where, {"model", "prefix", "glob", "upstream", "strip_prefix"}, p);
      gateway::Route route;
      int kinds = 0;
      if (r["model"].IsDefined()) {
        route.match = gateway::MatchKind::kExact;
        Get(r, "model", where, route.pattern, p);
        ++kinds;
      }
      if (r["prefix"].IsDefined()) {
        route.match = gateway::MatchKind::kPrefix;
        Get(r, "prefix", where, route.pattern, p);
        ++kinds;
      }
      if (r["glob"].IsDefined()) {
        route.match = gateway::MatchKind::kGlob;
        Get(r, "glob", where, route.pattern, p);
        ++kinds;
      }
      if (kinds != 1) p.Add(r, where, "needs exactly one of model, prefix or glob");
      Get(r, "upstream", where, route.upstream, p);
      Get(r, "strip_prefix", where, route.strip_prefix, p);
      if (route.upstream.empty()) p.Add(r, where + ".upstream", "is required");
      c.routes.push_back(std::move(route));
    }
  }
  if (c.routes.empty() && p.empty()) {
    p.Add(root, "routes", "at least one route is needed, e.g. {prefix: \"sim/\", upstream: sim}");
  }
  if (p.empty()) {
    // Cross-checks that need the whole file: every route names an upstream that exists.
    auto router = gateway::Router::Create(c.upstreams, c.routes);
    if (!router.ok()) p.Add(root, "routes", router.status().message());
  }
  if (!p.empty()) return core::InvalidArgument(p.str());
  return c;
}

}  // namespace llmscope::server
