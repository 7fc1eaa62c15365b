#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/params.h"
#include "core/clock.h"
#include "http/offload.h"
#include "http/server.h"
#include "metrics/registry.h"
#include "promql/engine.h"
#include "promql/queryable.h"
#include "promql/value.h"

namespace llmscope::api {

// An answer of the Prometheus-compatible API: HTTP status and JSON body.
struct PromReply {
  int status = 200;
  std::string body;
};

// The `data` of a query answer in Prometheus' HTTP API shape:
// {"resultType":"vector","result":[{"metric":{...},"value":[<unix seconds>,"<value>"]}]}
// (matrix: "values": [[t,"v"],...]; scalar and string: "result": [t,"v"]). Times are Unix
// seconds with millisecond precision; values are formatted as Prometheus does
// (strconv.FormatFloat 'f', -1: "0.1", "1000000", "NaN", "+Inf").
std::string RenderPromData(const promql::Value& value);

// The query endpoints as pure functions of their parameters, so they are testable without a
// server. Parameters and errors follow Prometheus' HTTP API: times are RFC 3339 or Unix
// seconds, durations "5m" or seconds; a bad parameter is 400 with errorType "bad_data" and
// "invalid parameter \"<name>\": ..."; an evaluation error 422 "execution"; a limit 422
// "execution" naming the limit; a storage failure 503 "unavailable".
// Thread-safety: const; the engine and queryable must allow concurrent queries.
class PromQueries {
 public:
  // Both borrowed.
  PromQueries(const promql::Engine& engine, const promql::Queryable& storage)
      : engine_(engine), storage_(storage) {}

  // /api/v1/query: query, time (default now), timeout (accepted; see docs/API.md).
  PromReply Query(const Params& p, int64_t now_ms) const;
  // /api/v1/query_range: query, start, end, step (all required), timeout.
  PromReply QueryRange(const Params& p) const;
  // /api/v1/series: match[] (one or more, required), start, end.
  PromReply Series(const Params& p) const;
  // /api/v1/labels: match[] (optional), start, end.
  PromReply LabelNames(const Params& p) const;
  // /api/v1/label/<name>/values: match[] (optional), start, end.
  PromReply LabelValues(std::string_view name, const Params& p) const;

 private:
  const promql::Engine& engine_;
  const promql::Queryable& storage_;
};

// Where the rules and alerts endpoints get their answers: each returns the whole JSON body
// of /api/v1/rules or /api/v1/alerts. Unset: an empty list.
struct PromRuleSources {
  std::function<std::string()> rules;
  std::function<std::string()> alerts;
};

struct PromApiOptions {
  // Threads that evaluate queries (never the event loops). REQUIRES: >= 1.
  int threads = 2;
  // Queries waiting beyond the running ones; more get 503 at once. REQUIRES: >= 1.
  size_t max_queued = 64;
  // Reported by /api/v1/status/buildinfo (Grafana reads it to pick its query features).
  std::string version;
};

// Thread-safety: Handle may run on any number of event-loop threads at once; queries run
// on the API's own pool.
//
// The Prometheus HTTP API over llmscope's own time-series store, so that Grafana (a
// Prometheus data source) and PromQL tools can point at llmscope:
//   GET|POST /api/v1/query, /api/v1/query_range, /api/v1/series, /api/v1/labels
//   GET|POST /api/v1/label/<name>/values
//   GET      /api/v1/rules, /api/v1/alerts, /api/v1/status/buildinfo, /api/v1/metadata
// POST takes its parameters form-encoded in the body as well as in the query string.
class PromApi {
 public:
  // `storage` is borrowed and may be null (the store is switched off): query endpoints then
  // answer 503 saying so. `registry` gets llmscope_promql_requests_total{endpoint,code} and
  // llmscope_promql_request_duration_seconds{endpoint}.
  PromApi(PromApiOptions options, const promql::Engine& engine, const promql::Queryable* storage,
          PromRuleSources rules, const core::Clock& clock, metrics::Registry& registry);
  ~PromApi();
  PromApi(const PromApi&) = delete;
  PromApi& operator=(const PromApi&) = delete;

  // As QueryApi::Shutdown: stops taking queries and waits for running ones. Idempotent.
  void Shutdown();

  bool Handles(std::string_view path) const;
  http::Task<void> Handle(http::Request& req, http::ResponseWriter& w);

 private:
  struct Metrics;
  http::Task<void> Reply(http::ResponseWriter& w, std::string_view endpoint, core::MonoTime started,
                         const PromReply& reply);

  const PromApiOptions options_;
  const promql::Engine& engine_;
  const promql::Queryable* const storage_;
  const PromRuleSources rules_;
  const core::Clock& clock_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<http::WorkPool> pool_;  // closed by Shutdown, destroyed last
};

}  // namespace llmscope::api
