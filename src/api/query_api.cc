#include "api/query_api.h"

#include <string>
#include <utility>

#include "api/render.h"
#include "core/call_json.h"

namespace llmscope::api {
namespace {

constexpr std::string_view kPrefix = "/api/v1/";

const http::HeaderList& JsonHeaders() {
  static const auto* h =
      new http::HeaderList{{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  return *h;
}

// The endpoint label and the rest of the path: "calls" + "", "call" + "<id>", ...
struct Route {
  std::string_view endpoint;  // metric label; "" when the path is not ours
  std::string_view rest;      // the id after "calls/" or "traces/"
};

Route Classify(std::string_view path) {
  if (path.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view p = path.substr(kPrefix.size());
  if (p == "calls") return {"calls", {}};
  if (p.substr(0, 6) == "calls/" && p.size() > 6) return {"call", p.substr(6)};
  if (p == "aggregates") return {"aggregates", {}};
  if (p == "top") return {"top", {}};
  if (p == "traces") return {"traces", {}};
  if (p.substr(0, 7) == "traces/" && p.size() > 7) return {"trace", p.substr(7)};
  if (p == "export/calls") return {"export", {}};
  if (p == "storage") return {"storage", {}};
  return {};
}

}  // namespace

struct QueryApi::Metrics {
  metrics::CounterFamily* requests = nullptr;
  metrics::HistogramFamily* duration = nullptr;
};

QueryApi::QueryApi(QueryApiOptions options, storage::Store* store, const core::Clock& clock,
                   metrics::Registry& registry)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      metrics_(std::make_unique<Metrics>()),
      pool_(std::make_unique<http::WorkPool>(std::max(1, options_.threads),
                                             std::max<size_t>(1, options_.max_queued))) {
  if (auto f = registry.AddCounter("llmscope_api_requests",
                                   "Query API requests by endpoint and HTTP status code.",
                                   {"endpoint", "code"});
      f.ok()) {
    metrics_->requests = *f;
  }
  if (auto f = registry.AddHistogram(
          "llmscope_api_request_duration_seconds",
          "Time to answer a query API request (to the last byte for exports).", {"endpoint"},
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
      f.ok()) {
    metrics_->duration = *f;
  }
}

QueryApi::~QueryApi() { Shutdown(); }

void QueryApi::Shutdown() { pool_->Close(); }

bool QueryApi::Handles(std::string_view path) const { return !Classify(path).endpoint.empty(); }

http::Task<core::Status> QueryApi::Offload(std::function<void()> fn) {
  bool ran = co_await http::RunOnPool(*pool_, std::move(fn));
  if (!ran) {
    co_return core::Unavailable("too many queries in flight (more than " +
                                std::to_string(options_.max_queued) + " waiting); retry shortly");
  }
  co_return core::Status::Ok();
}

http::Task<void> QueryApi::Reply(http::ResponseWriter& w, std::string_view endpoint,
                                 core::MonoTime started, int status, const std::string& body) {
  co_await w.Send(status, JsonHeaders(), body);
  if (metrics_->requests) {
    metrics_->requests->WithLabels({endpoint, std::to_string(status)}).Inc();
  }
  if (metrics_->duration) {
    metrics_->duration->WithLabels({endpoint})
        .Observe(std::chrono::duration<double>(clock_.Now() - started).count());
  }
}

http::Task<void> QueryApi::Handle(http::Request& req, http::ResponseWriter& w) {
  const core::MonoTime started = clock_.Now();
  const Route route = Classify(req.path());
  if (route.endpoint.empty()) {
    co_await Reply(w, "unknown", started, 404,
                   RenderError(core::NotFound("no such query endpoint")));
    co_return;
  }
  if (req.method() != "GET" && req.method() != "HEAD") {
    co_await Reply(w, route.endpoint, started, 405,
                   RenderError(core::InvalidArgument(std::string(req.method()) +
                                                     ": the query API takes GET only")));
    co_return;
  }
  if (store_ == nullptr) {
    co_await Reply(w, route.endpoint, started, 503,
                   RenderError(core::Unavailable(
                       "storage is off (storage.backend: off in the configuration)")));
    co_return;
  }
  std::string_view target = req.target();
  size_t qmark = target.find('?');
  auto params = Params::Parse(qmark == std::string_view::npos ? std::string_view()
                                                              : target.substr(qmark + 1));
  if (!params.ok()) {
    co_await Reply(w, route.endpoint, started, 400, RenderError(params.status()));
    co_return;
  }
  const int64_t now = clock_.UnixNanos();
  const QueryLimits& limits = options_.limits;
  std::string body;
  core::Status status;

  // Each branch parses, runs the store call on the pool, and renders there too (rendering
  // a large page is work the event loop should not do either).
  if (route.endpoint == "export") {
    co_await Export(*params, w, started);
    co_return;
  } else if (route.endpoint == "calls") {
    auto q = ParseCallQuery(*params, now, limits);
    status = q.status();
    if (status.ok()) {
      auto ran = co_await Offload([&] {
        auto page = store_->ListCalls(*q);
        status = page.status();
        if (page.ok()) body = RenderCallPage(*page);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "call") {
    auto id = PercentDecode(route.rest);
    if (!id || !params->all().empty()) {
      status = core::InvalidArgument(!id ? "request_id: malformed percent escape in the path"
                                         : params->all().front().first +
                                               ": unknown parameter; this endpoint takes none");
    } else {
      auto ran = co_await Offload([&] {
        auto call = store_->GetCall(*id);
        status = call.status();
        if (call.ok()) body = RenderCall(*call);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "aggregates") {
    auto q = ParseAggregateQuery(*params, now, limits);
    status = q.status();
    if (status.ok()) {
      auto ran = co_await Offload([&] {
        auto r = store_->Aggregate(*q);
        status = r.status();
        if (r.ok()) body = RenderAggregate(*q, *r);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "top") {
    auto q = ParseTopQuery(*params, now, limits);
    status = q.status();
    if (status.ok()) {
      auto ran = co_await Offload([&] {
        auto r = store_->Top(*q);
        status = r.status();
        if (r.ok()) body = RenderTop(*q, *r);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "traces") {
    auto q = ParseTraceQuery(*params, now, limits);
    status = q.status();
    if (status.ok()) {
      auto ran = co_await Offload([&] {
        auto r = store_->ListTraces(*q);
        status = r.status();
        if (r.ok()) body = RenderTracePage(*r);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "trace") {
    auto id = core::ParseTraceIdHex(route.rest);
    if (!id) {
      status = core::InvalidArgument("trace_id: must be 32 hex digits in the path");
    } else if (!params->all().empty()) {
      status = core::InvalidArgument(params->all().front().first +
                                     ": unknown parameter; this endpoint takes none");
    } else {
      auto ran = co_await Offload([&] {
        auto r = store_->GetTrace(*id);
        status = r.status();
        if (r.ok()) body = RenderTrace(*id, *r);
      });
      if (!ran.ok()) status = ran;
    }
  } else if (route.endpoint == "storage") {
    auto ran = co_await Offload([&] {
      auto r = store_->Stats();
      status = r.status();
      if (r.ok()) body = RenderStats(store_->name(), *r);
    });
    if (!ran.ok()) status = ran;
  }

  if (!status.ok()) {
    co_await Reply(w, route.endpoint, started, HttpStatusFor(status), RenderError(status));
  } else {
    co_await Reply(w, route.endpoint, started, 200, body);
  }
}

http::Task<void> QueryApi::Export(const Params& params, http::ResponseWriter& w,
                                  core::MonoTime started) {
  auto req = ParseExportRequest(params, clock_.UnixNanos(), options_.limits);
  if (!req.ok()) {
    co_await Reply(w, "export", started, 400, RenderError(req.status()));
    co_return;
  }
  // Pages oldest first by keyset: memory is one page whatever the range, and rows written
  // while the export runs are included only if they sort after the last page read.
  storage::CallQuery q;
  q.filter = req->filter;
  q.sort = storage::CallSort::kStartTime;
  q.descending = false;
  q.limit = std::min(options_.export_page_rows, storage::kMaxPageSize);
  q.timeout = req->page_timeout;
  const bool csv = req->format == ExportFormat::kCsv;
  int64_t remaining = req->max_rows;
  bool started_stream = false;
  core::Status status;
  while (remaining > 0) {
    q.limit = static_cast<size_t>(std::min<int64_t>(remaining, static_cast<int64_t>(q.limit)));
    std::string chunk;
    std::string next;
    size_t rows = 0;
    auto ran = co_await Offload([&] {
      auto page = store_->ListCalls(q);
      status = page.status();
      if (!page.ok()) return;
      rows = page->calls.size();
      for (const auto& call : page->calls) {
        if (csv) {
          AppendCallCsv(chunk, call);
        } else {
          core::AppendCallJson(chunk, call, false);
          chunk.push_back('\n');
        }
      }
      next = std::move(page->next_cursor);
    });
    if (!ran.ok()) status = ran;
    if (!status.ok()) break;
    if (!started_stream) {
      const http::HeaderList headers{
          {"Content-Type", csv ? "text/csv; charset=utf-8" : "application/x-ndjson"},
          {"Content-Disposition",
           csv ? "attachment; filename=\"calls.csv\"" : "attachment; filename=\"calls.jsonl\""},
          {"Cache-Control", "no-store"}};
      if (!co_await w.StartStream(200, headers)) co_return;
      started_stream = true;
      if (csv) {
        std::string header;
        AppendCsvHeader(header);
        if (!co_await w.WriteChunk(header)) co_return;
      }
    }
    if (!chunk.empty() && !co_await w.WriteChunk(chunk)) co_return;  // client gone
    remaining -= static_cast<int64_t>(rows);
    if (next.empty()) break;
    q.cursor = std::move(next);
  }
  if (!status.ok()) {
    if (!started_stream) {
      co_await Reply(w, "export", started, HttpStatusFor(status), RenderError(status));
    } else {
      // The status line is gone: end the body abruptly so that the client sees a truncated
      // transfer (no final chunk), never a complete-looking partial export.
      w.Abort();
      if (metrics_->requests) metrics_->requests->WithLabels({"export", "aborted"}).Inc();
    }
    co_return;
  }
  if (!started_stream) {
    const http::HeaderList headers{
        {"Content-Type", csv ? "text/csv; charset=utf-8" : "application/x-ndjson"},
        {"Cache-Control", "no-store"}};
    std::string header;
    if (csv) AppendCsvHeader(header);
    co_await w.Send(200, headers, header);
  } else {
    co_await w.FinishStream();
  }
  if (metrics_->requests) metrics_->requests->WithLabels({"export", "200"}).Inc();
  if (metrics_->duration) {
    metrics_->duration->WithLabels({"export"})
        .Observe(std::chrono::duration<double>(clock_.Now() - started).count());
  }
}

}  // namespace llmscope::api
