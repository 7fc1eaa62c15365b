#include "api/prom_api.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "core/json_string.h"
#include "promql/parser.h"

namespace llmscope::api {
namespace {

using core::AppendJsonString;

constexpr std::string_view kPrefix = "/api/v1/";
constexpr int64_t kMinTimeMs = std::numeric_limits<int64_t>::min() / 2;
constexpr int64_t kMaxTimeMs = std::numeric_limits<int64_t>::max() / 2;
const std::vector<std::string_view> kRepeatable = {"match[]"};

const http::HeaderList& JsonHeaders() {
  static const auto* h =
      new http::HeaderList{{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
  return *h;
}

PromReply Error(int status, std::string_view type, std::string_view message) {
  std::string out = "{\"status\":\"error\",\"errorType\":";
  AppendJsonString(out, type);
  out.append(",\"error\":");
  AppendJsonString(out, message);
  out.push_back('}');
  return {status, std::move(out)};
}

PromReply BadParam(std::string_view name, std::string_view problem) {
  return Error(400, "bad_data",
               "invalid parameter \"" + std::string(name) + "\": " + std::string(problem));
}

// An evaluation failure: limits and evaluation errors are the query's fault (422), anything
// else is the store's (503).
PromReply EvalError(const core::Status& s) {
  switch (s.code()) {
    case core::StatusCode::kInvalidArgument:
    case core::StatusCode::kResourceExhausted:
      return Error(422, "execution", s.message());
    case core::StatusCode::kDeadlineExceeded:
      return Error(503, "timeout", s.message());
    default:
      return Error(503, "unavailable", s.message());
  }
}

PromReply Success(std::string_view data) {
  std::string out = "{\"status\":\"success\",\"data\":";
  out.append(data);
  out.push_back('}');
  return {200, std::move(out)};
}

// Unix seconds with millisecond precision, trailing zeros of the fraction dropped.
void AppendTime(std::string& out, int64_t t_ms) {
  if (t_ms < 0) {
    out.push_back('-');
    t_ms = -t_ms;
  }
  out.append(std::to_string(t_ms / 1000));
  int64_t frac = t_ms % 1000;
  if (frac == 0) return;
  char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                    static_cast<char>('0' + frac % 10)};
  int n = 3;
  while (digits[n - 1] == '0') --n;
  out.push_back('.');
  out.append(digits, static_cast<size_t>(n));
}

// Go's strconv.FormatFloat(v, 'f', -1, 64), quoted, as Prometheus' API writes sample values.
void AppendValue(std::string& out, double v) {
  out.push_back('"');
  if (std::isnan(v)) {
    out.append("NaN");
  } else if (std::isinf(v)) {
    out.append(v > 0 ? "+Inf" : "-Inf");
  } else {
    char buf[400];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.append(buf, r.ptr);
  }
  out.push_back('"');
}

void AppendPoint(std::string& out, int64_t t_ms, double v) {
  out.push_back('[');
  AppendTime(out, t_ms);
  out.push_back(',');
  AppendValue(out, v);
  out.push_back(']');
}

void AppendLabels(std::string& out, const promql::Labels& labels) {
  out.push_back('{');
  bool first = true;
  for (const auto& l : labels) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, l.name);
    out.push_back(':');
    AppendJsonString(out, l.value);
  }
  out.push_back('}');
}

// A time parameter in milliseconds; `fallback` when absent (nullopt: required).
core::Result<int64_t> TimeParam(const Params& p, std::string_view name,
                                std::optional<int64_t> fallback) {
  auto v = p.Get(name);
  if (!v || v->empty()) {
    if (fallback) return *fallback;
    return core::InvalidArgument("cannot parse \"\" to a valid timestamp");
  }
  auto t = ParseTime(*v, name);
  if (!t.ok())
    return core::InvalidArgument("cannot parse \"" + std::string(*v) + "\" to a valid timestamp");
  // Nanoseconds to milliseconds, rounding toward minus infinity.
  int64_t ns = *t;
  int64_t ms = ns / 1'000'000;
  if (ns % 1'000'000 < 0) --ms;
  return ms;
}

// The selectors of every match[] parameter.
core::Result<std::vector<std::vector<promql::LabelMatcher>>> MatchParams(
    const Params& p, const promql::ParseOptions& options) {
  std::vector<std::vector<promql::LabelMatcher>> out;
  for (std::string_view m : p.GetAll("match[]")) {
    auto expr = promql::ParseExpr(m, options);
    if (!expr.ok()) return expr.status();
    if ((*expr)->kind != promql::Expr::Kind::kVectorSelector) {
      return core::InvalidArgument("\"" + std::string(m) + "\" is not a series selector");
    }
    out.push_back((*expr)->matchers);
  }
  return out;
}

// Every series matching any of the selectors (all series when there are none) in
// [start, end], deduplicated, sorted by labels.
core::Result<std::vector<promql::Labels>> MatchingSeries(
    const promql::Queryable& storage, std::vector<std::vector<promql::LabelMatcher>> selectors,
    int64_t start, int64_t end) {
  if (selectors.empty()) {
    auto any = promql::LabelMatcher::Make(promql::MatchType::kRegexMatch,
                                          std::string(promql::kMetricName), ".+");
    if (!any.ok()) return any.status();
    selectors.push_back({*any});
  }
  std::set<promql::Labels> seen;
  for (const auto& matchers : selectors) {
    auto series = storage.SelectSeries(matchers, start, end);
    if (!series.ok()) return series.status();
    for (auto& s : *series) seen.insert(std::move(s));
  }
  return std::vector<promql::Labels>(seen.begin(), seen.end());
}

struct Range {
  int64_t start = kMinTimeMs;
  int64_t end = kMaxTimeMs;
};

std::optional<PromReply> ParseRange(const Params& p, Range& r) {
  auto start = TimeParam(p, "start", kMinTimeMs);
  if (!start.ok()) return BadParam("start", start.status().message());
  auto end = TimeParam(p, "end", kMaxTimeMs);
  if (!end.ok()) return BadParam("end", end.status().message());
  if (*end < *start) return BadParam("end", "end timestamp must not be before start time");
  r.start = *start;
  r.end = *end;
  return std::nullopt;
}

std::string StringList(const std::set<std::string>& items) {
  std::string out = "[";
  bool first = true;
  for (const auto& s : items) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, s);
  }
  out.push_back(']');
  return out;
}

// The endpoint label and, for label/<name>/values, the label name.
struct Route {
  std::string_view endpoint;
  std::string_view label;
};

Route Classify(std::string_view path) {
  if (path.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view p = path.substr(kPrefix.size());
  for (std::string_view e : {"query", "query_range", "series", "labels", "rules", "alerts",
                             "status/buildinfo", "metadata"}) {
    if (p == e) return {e, {}};
  }
  constexpr std::string_view kLabel = "label/", kValues = "/values";
  if (p.size() > kLabel.size() + kValues.size() && p.substr(0, kLabel.size()) == kLabel &&
      p.substr(p.size() - kValues.size()) == kValues) {
    return {"label_values", p.substr(kLabel.size(), p.size() - kLabel.size() - kValues.size())};
  }
  return {};
}

}  // namespace

std::string RenderPromData(const promql::Value& value) {
  std::string out = "{\"resultType\":\"";
  out.append(promql::ValueTypeName(value));
  out.append("\",\"result\":");
  if (const auto* s = std::get_if<promql::Scalar>(&value)) {
    AppendPoint(out, s->t, s->v);
  } else if (const auto* str = std::get_if<promql::String>(&value)) {
    out.push_back('[');
    AppendTime(out, str->t);
    out.push_back(',');
    AppendJsonString(out, str->v);
    out.push_back(']');
  } else if (const auto* vec = std::get_if<promql::Vector>(&value)) {
    out.push_back('[');
    for (size_t i = 0; i < vec->size(); ++i) {
      if (i) out.push_back(',');
      out.append("{\"metric\":");
      AppendLabels(out, (*vec)[i].labels);
      out.append(",\"value\":");
      AppendPoint(out, (*vec)[i].t, (*vec)[i].v);
      out.push_back('}');
    }
    out.push_back(']');
  } else {
    const auto& m = std::get<promql::Matrix>(value);
    out.push_back('[');
    for (size_t i = 0; i < m.size(); ++i) {
      if (i) out.push_back(',');
      out.append("{\"metric\":");
      AppendLabels(out, m[i].labels);
      out.append(",\"values\":[");
      for (size_t j = 0; j < m[i].points.size(); ++j) {
        if (j) out.push_back(',');
        AppendPoint(out, m[i].points[j].t, m[i].points[j].v);
      }
      out.append("]}");
    }
    out.push_back(']');
  }
  out.push_back('}');
  return out;
}

PromReply PromQueries::Query(const Params& p, int64_t now_ms) const {
  auto t = TimeParam(p, "time", now_ms);
  if (!t.ok()) return BadParam("time", t.status().message());
  auto expr = promql::ParseExpr(p.Get("query").value_or(""), engine_.options().parse);
  if (!expr.ok()) return BadParam("query", expr.status().message());
  auto v = engine_.EvalInstant(storage_, **expr, *t);
  if (!v.ok()) return EvalError(v.status());
  return Success(RenderPromData(*v));
}

PromReply PromQueries::QueryRange(const Params& p) const {
  auto start = TimeParam(p, "start", std::nullopt);
  if (!start.ok()) return BadParam("start", start.status().message());
  auto end = TimeParam(p, "end", std::nullopt);
  if (!end.ok()) return BadParam("end", end.status().message());
  if (*end < *start) return BadParam("end", "end timestamp must not be before start time");
  auto step_text = p.Get("step").value_or("");
  auto step_ns = ParseDuration(step_text, "step");
  if (!step_ns.ok()) {
    return BadParam("step", "cannot parse \"" + std::string(step_text) + "\" to a valid duration");
  }
  const int64_t step = *step_ns / 1'000'000;
  if (step <= 0) {
    return BadParam("step",
                    "zero or negative query resolution step widths are not accepted. Try a "
                    "positive integer");
  }
  const int64_t max_steps = engine_.options().max_steps;
  if ((*end - *start) / step >= max_steps) {
    return Error(400, "bad_data",
                 "exceeded maximum resolution of " + std::to_string(max_steps) +
                     " points per timeseries. Try decreasing the query resolution (?step=XX)");
  }
  auto expr = promql::ParseExpr(p.Get("query").value_or(""), engine_.options().parse);
  if (!expr.ok()) return BadParam("query", expr.status().message());
  auto v = engine_.EvalRange(storage_, **expr, *start, *end, step);
  if (!v.ok()) return EvalError(v.status());
  return Success(RenderPromData(*v));
}

PromReply PromQueries::Series(const Params& p) const {
  if (p.GetAll("match[]").empty()) return Error(400, "bad_data", "no match[] parameter provided");
  Range r;
  if (auto bad = ParseRange(p, r)) return *bad;
  auto selectors = MatchParams(p, engine_.options().parse);
  if (!selectors.ok()) return BadParam("match[]", selectors.status().message());
  auto series = MatchingSeries(storage_, std::move(*selectors), r.start, r.end);
  if (!series.ok()) return EvalError(series.status());
  std::string data = "[";
  for (size_t i = 0; i < series->size(); ++i) {
    if (i) data.push_back(',');
    AppendLabels(data, (*series)[i]);
  }
  data.push_back(']');
  return Success(data);
}

PromReply PromQueries::LabelNames(const Params& p) const {
  Range r;
  if (auto bad = ParseRange(p, r)) return *bad;
  auto selectors = MatchParams(p, engine_.options().parse);
  if (!selectors.ok()) return BadParam("match[]", selectors.status().message());
  auto series = MatchingSeries(storage_, std::move(*selectors), r.start, r.end);
  if (!series.ok()) return EvalError(series.status());
  std::set<std::string> names;
  for (const auto& s : *series) {
    for (const auto& l : s) names.insert(l.name);
  }
  return Success(StringList(names));
}

PromReply PromQueries::LabelValues(std::string_view name, const Params& p) const {
  auto decoded = PercentDecode(name);
  if (!decoded || !promql::IsValidLabelName(*decoded)) {
    return Error(400, "bad_data", "invalid label name: \"" + std::string(name) + "\"");
  }
  Range r;
  if (auto bad = ParseRange(p, r)) return *bad;
  auto selectors = MatchParams(p, engine_.options().parse);
  if (!selectors.ok()) return BadParam("match[]", selectors.status().message());
  auto series = MatchingSeries(storage_, std::move(*selectors), r.start, r.end);
  if (!series.ok()) return EvalError(series.status());
  std::set<std::string> values;
  for (const auto& s : *series) {
    auto v = s.Get(*decoded);
    if (!v.empty()) values.emplace(v);
  }
  return Success(StringList(values));
}

struct PromApi::Metrics {
  metrics::CounterFamily* requests = nullptr;
  metrics::HistogramFamily* duration = nullptr;
};

PromApi::PromApi(PromApiOptions options, const promql::Engine& engine,
                 const promql::Queryable* storage, PromRuleSources rules, const core::Clock& clock,
                 metrics::Registry& registry)
    : options_(std::move(options)),
      engine_(engine),
      storage_(storage),
      rules_(std::move(rules)),
      clock_(clock),
      metrics_(std::make_unique<Metrics>()),
      pool_(std::make_unique<http::WorkPool>(std::max(1, options_.threads),
                                             std::max<size_t>(1, options_.max_queued))) {
  if (auto f = registry.AddCounter(
          "llmscope_promql_requests",
          "Prometheus-compatible API requests by endpoint and HTTP status code.",
          {"endpoint", "code"});
      f.ok()) {
    metrics_->requests = *f;
  }
  if (auto f = registry.AddHistogram(
          "llmscope_promql_request_duration_seconds",
          "Time to answer a Prometheus-compatible API request.", {"endpoint"},
          {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
      f.ok()) {
    metrics_->duration = *f;
  }
}

PromApi::~PromApi() { Shutdown(); }

void PromApi::Shutdown() { pool_->Close(); }

bool PromApi::Handles(std::string_view path) const { return !Classify(path).endpoint.empty(); }

http::Task<void> PromApi::Reply(http::ResponseWriter& w, std::string_view endpoint,
                                core::MonoTime started, const PromReply& reply) {
  co_await w.Send(reply.status, JsonHeaders(), reply.body);
  if (metrics_->requests) {
    metrics_->requests->WithLabels({endpoint, std::to_string(reply.status)}).Inc();
  }
  if (metrics_->duration) {
    metrics_->duration->WithLabels({endpoint})
        .Observe(std::chrono::duration<double>(clock_.Now() - started).count());
  }
}

http::Task<void> PromApi::Handle(http::Request& req, http::ResponseWriter& w) {
  const core::MonoTime started = clock_.Now();
  const Route route = Classify(req.path());
  if (route.endpoint.empty()) {
    co_await Reply(w, "unknown", started, Error(404, "not_found", "no such endpoint"));
    co_return;
  }
  const bool read_only = route.endpoint == "rules" || route.endpoint == "alerts" ||
                         route.endpoint == "status/buildinfo" || route.endpoint == "metadata";
  const auto method = req.method();
  if (method != "GET" && method != "HEAD" && (read_only || method != "POST")) {
    co_await Reply(w, route.endpoint, started,
                   Error(405, "bad_data",
                         std::string(method) + ": this endpoint takes GET" +
                             (read_only ? "" : " or POST (form-encoded)")));
    co_return;
  }
  if (route.endpoint == "rules" || route.endpoint == "alerts") {
    const auto& source = route.endpoint == "rules" ? rules_.rules : rules_.alerts;
    PromReply reply;
    if (source) {
      bool ran = co_await http::RunOnPool(*pool_, [&] { reply.body = source(); });
      if (!ran) reply = Error(503, "unavailable", "too many queries in flight; retry shortly");
    } else {
      reply = Success(route.endpoint == "rules" ? "{\"groups\":[]}" : "{\"alerts\":[]}");
    }
    co_await Reply(w, route.endpoint, started, reply);
    co_return;
  }
  if (route.endpoint == "status/buildinfo") {
    std::string data = "{\"application\":\"llmscope\",\"version\":";
    AppendJsonString(data, options_.version);
    data.append(
        ",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
        "\"goVersion\":\"\"}");
    co_await Reply(w, route.endpoint, started, Success(data));
    co_return;
  }
  if (route.endpoint == "metadata") {
    co_await Reply(w, route.endpoint, started, Success("{}"));
    co_return;
  }
  if (storage_ == nullptr) {
    co_await Reply(w, route.endpoint, started,
                   Error(503, "unavailable", "the time-series store is off (tsdb.enabled: false)"));
    co_return;
  }

  // Parameters from the query string and, for a form POST, the body.
  std::string_view target = req.target();
  size_t qmark = target.find('?');
  std::string query(qmark == std::string_view::npos ? std::string_view()
                                                    : target.substr(qmark + 1));
  if (method == "POST") {
    auto ct = req.header("content-type").value_or("");
    if (ct.substr(0, 33) != "application/x-www-form-urlencoded" && !req.body().empty()) {
      co_await Reply(w, route.endpoint, started,
                     Error(400, "bad_data",
                           "a POST body must be application/x-www-form-urlencoded, got \"" +
                               std::string(ct) + "\""));
      co_return;
    }
    if (!req.body().empty()) {
      if (!query.empty()) query.push_back('&');
      query.append(req.body());
    }
  }
  auto params = Params::Parse(query, kRepeatable);
  if (!params.ok()) {
    co_await Reply(w, route.endpoint, started, Error(400, "bad_data", params.status().message()));
    co_return;
  }

  const int64_t now_ms = clock_.UnixNanos() / 1'000'000;
  const PromQueries queries(engine_, *storage_);
  PromReply reply;
  bool ran = co_await http::RunOnPool(*pool_, [&] {
    if (route.endpoint == "query") {
      reply = queries.Query(*params, now_ms);
    } else if (route.endpoint == "query_range") {
      reply = queries.QueryRange(*params);
    } else if (route.endpoint == "series") {
      reply = queries.Series(*params);
    } else if (route.endpoint == "labels") {
      reply = queries.LabelNames(*params);
    } else {
      reply = queries.LabelValues(route.label, *params);
    }
  });
  if (!ran) {
    reply = Error(503, "unavailable",
                  "too many queries in flight (more than " + std::to_string(options_.max_queued) +
                      " waiting); retry shortly");
  }
  co_await Reply(w, route.endpoint, started, reply);
}

}  // namespace llmscope::api
