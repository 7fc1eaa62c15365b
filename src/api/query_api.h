#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "api/params.h"
#include "core/clock.h"
#include "http/offload.h"
#include "http/server.h"
#include "metrics/registry.h"
#include "storage/store.h"

namespace llmscope::api {

// Settings of the query API, fixed at construction.
struct QueryApiOptions {
  // Threads that run store queries (queries block on I/O; event loops never do).
  // REQUIRES: >= 1.
  int threads = 2;
  // Queries waiting for a thread beyond the running ones; more get 503 at once instead of
  // piling up. REQUIRES: >= 1.
  size_t max_queued = 64;
  QueryLimits limits;
  // Rows per store query while streaming an export (memory per export is one page).
  size_t export_page_rows = 1000;
};

// Thread-safety: Handle may run on any number of event-loop threads at once; the store is
// called only from the query pool.
//
// The JSON query API over the event store, under /api/v1/:
//   GET /api/v1/calls                 list with filters, sort, cursor paging
//   GET /api/v1/calls/{request_id}    one call with its content when kept
//   GET /api/v1/aggregates            bucketed, grouped counts, error rate, percentiles,
//                                     tokens and cost
//   GET /api/v1/top                   top users (models, tags...) by cost or tokens
//   GET /api/v1/traces                traces in a time range
//   GET /api/v1/traces/{trace_id}     one trace as a tree of spans with its LLM calls
//   GET /api/v1/export/calls          JSON lines or CSV, streamed page by page
//   GET /api/v1/storage               row counts and bytes on disk
// Parameters are documented in docs/API.md and params.h. Bad parameters get 400 naming the
// parameter; a query over its limits gets 422, over its timeout 503, both saying so.
class QueryApi {
 public:
  // `store` is borrowed and may be null (storage switched off): every endpoint then answers
  // 503 saying so. `registry` gets llmscope_api_requests_total{endpoint,code} and
  // llmscope_api_request_duration_seconds{endpoint}.
  QueryApi(QueryApiOptions options, storage::Store* store, const core::Clock& clock,
           metrics::Registry& registry);
  ~QueryApi();
  QueryApi(const QueryApi&) = delete;
  QueryApi& operator=(const QueryApi&) = delete;

  // Stops taking queries (later ones get 503) and waits for the running ones to finish and
  // hand their results to their event loops. Call it while the event loops still run (from
  // http::Server::OnWorkerStop): after it, no pool thread touches a loop, so the loops can
  // go. Idempotent; safe from several threads at once.
  void Shutdown();

  // Whether this API serves `path` (any method: a wrong method gets 405 from Handle).
  bool Handles(std::string_view path) const;
  http::Task<void> Handle(http::Request& req, http::ResponseWriter& w);

 private:
  struct Metrics;
  // Runs `fn` on the query pool; UNAVAILABLE when the pool is full.
  http::Task<core::Status> Offload(std::function<void()> fn);
  http::Task<void> Reply(http::ResponseWriter& w, std::string_view endpoint, core::MonoTime started,
                         int status, const std::string& body);
  http::Task<void> Export(const Params& params, http::ResponseWriter& w, core::MonoTime started);

  const QueryApiOptions options_;
  storage::Store* const store_;
  const core::Clock& clock_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<http::WorkPool> pool_;  // closed by Shutdown, destroyed last
};

}  // namespace llmscope::api
