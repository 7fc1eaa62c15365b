#include "api/params.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>

namespace llmscope::api {
namespace {

using storage::kNanosPerSecond;

core::Status Bad(std::string_view name, std::string problem) {
  return core::InvalidArgument(std::string(name) + ": " + problem);
}

std::string Quoted(std::string_view v) {
  constexpr size_t kMax = 64;  // a hostile value is not echoed whole
  std::string out = "'";
  out.append(v.substr(0, kMax));
  if (v.size() > kMax) out.append("...");
  out.push_back('\'');
  return out;
}

template <typename T>
bool ParseWhole(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Parses "123" or "123.456789" (up to nanosecond precision) as nanoseconds of `unit_ns`
// units, exactly (no floating-point rounding of the integer part). Negative allowed.
bool ParseDecimalScaled(std::string_view s, int64_t unit_ns, int64_t& out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (whole.empty() && frac.empty()) return false;
  int64_t w = 0;
  if (!whole.empty() && !ParseWhole(whole, w)) return false;
  if (dot != std::string_view::npos && frac.empty() && whole.empty()) return false;
  for (char c : frac) {
    if (c < '0' || c > '9') return false;
  }
  if (w > INT64_MAX / unit_ns) return false;
  int64_t total = w * unit_ns;
  // Fraction of a unit: digits beyond nanosecond precision are truncated.
  int64_t scale = unit_ns;
  for (char c : frac) {
    scale /= 10;
    if (scale == 0) break;
    total += (c - '0') * scale;
  }
  out = neg ? -total : total;
  return true;
}

int64_t DaysFromCivil(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

// RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); 't'/'z'/space accepted too.
std::optional<int64_t> ParseRfc3339(std::string_view s) {
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, se;
  if (!digits(0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
      !digits(8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(11, 2, h) ||
      s[13] != ':' || !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, se)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return std::nullopt;
  using namespace std::chrono;
  if (!year_month_day{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}}
           .ok()) {
    return std::nullopt;
  }
  size_t pos = 19;
  int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t scale = 100'000'000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac_ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  int64_t secs = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                 h * 3600 + mi * 60 + se - offset_s;
  return secs * kNanosPerSecond + frac_ns;
}

core::Result<size_t> ParseLimit(const Params& p, size_t def, size_t max) {
  auto v = p.Get("limit");
  if (!v) return def;
  int64_t n = 0;
  if (!ParseWhole(*v, n) || n < 1 || static_cast<uint64_t>(n) > max) {
    return Bad("limit", "must be a whole number between 1 and " + std::to_string(max) + ", got " +
                            Quoted(*v));
  }
  return static_cast<size_t>(n);
}

core::Result<core::Nanos> ParseTimeout(const Params& p, const QueryLimits& limits) {
  auto v = p.Get("timeout");
  if (!v) return limits.default_timeout;
  auto d = ParseDuration(*v, "timeout");
  if (!d.ok()) return d.status();
  if (*d <= 0) return Bad("timeout", "must be positive");
  return core::Nanos(std::min<int64_t>(*d, limits.max_timeout.count()));
}

// group_by / dimension values: none|model|provider|user|endpoint|tag:<key>.
core::Status ParseGroup(std::string_view name, std::string_view v, storage::GroupBy& group,
                        std::string& tag_key) {
  if (v.substr(0, 4) == "tag:") {
    tag_key = std::string(v.substr(4));
    if (tag_key.empty()) return Bad(name, "tag: needs a key, as in tag:feature");
    group = storage::GroupBy::kTag;
    return core::Status::Ok();
  }
  auto g = storage::ParseGroupByName(v);
  if (!g || *g == storage::GroupBy::kTag) {
    return Bad(name,
               "must be one of none, model, provider, user, endpoint, tag:<key>; got " + Quoted(v));
  }
  group = *g;
  return core::Status::Ok();
}

const std::vector<std::string_view> kFilterParams = {
    "from",  "to",       "model",        "provider", "user",        "session",  "tag", "status",
    "error", "endpoint", "usage_source", "trace_id", "min_latency", "min_cost", "q"};

std::vector<std::string_view> With(std::vector<std::string_view> extra) {
  std::vector<std::string_view> all = kFilterParams;
  all.insert(all.end(), extra.begin(), extra.end());
  return all;
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi << 4 | lo));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

core::Result<Params> Params::Parse(std::string_view query,
                                   const std::vector<std::string_view>& repeatable) {
  Params p;
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view part = query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    start = amp == std::string_view::npos ? query.size() + 1 : amp + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1));
    if (!name || !value) {
      return core::InvalidArgument("query string: malformed percent escape in " + Quoted(part));
    }
    if (name->empty()) return core::InvalidArgument("query string: a parameter has no name");
    if (p.Get(*name) &&
        std::find(repeatable.begin(), repeatable.end(), *name) == repeatable.end()) {
      return Bad(*name, "given more than once");
    }
    p.all_.emplace_back(std::move(*name), std::move(*value));
  }
  return p;
}

std::optional<std::string_view> Params::Get(std::string_view name) const {
  for (const auto& [k, v] : all_) {
    if (k == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> Params::GetAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : all_) {
    if (k == name) out.emplace_back(v);
  }
  return out;
}

core::Status Params::CheckKnown(const std::vector<std::string_view>& known) const {
  for (const auto& [k, v] : all_) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (auto n : known) {
        if (!list.empty()) list += ", ";
        list += n;
      }
      return Bad(k, "unknown parameter; this endpoint takes " + list);
    }
  }
  return core::Status::Ok();
}

core::Result<int64_t> ParseTime(std::string_view value, std::string_view name) {
  if (auto t = ParseRfc3339(value)) return *t;
  int64_t ns = 0;
  if (ParseDecimalScaled(value, kNanosPerSecond, ns)) return ns;
  return Bad(name, "must be an RFC 3339 time (2026-11-23T10:00:00Z) or Unix seconds, got " +
                       Quoted(value));
}

core::Result<int64_t> ParseDuration(std::string_view value, std::string_view name) {
  auto bad = [&] {
    return Bad(name, "must be a duration such as 250ms, 30s, 5m, 1h30m, 2d or seconds, got " +
                         Quoted(value));
  };
  int64_t ns = 0;
  if (ParseDecimalScaled(value, kNanosPerSecond, ns)) {
    if (ns < 0) return bad();
    return ns;
  }
  // Prometheus units, largest first, each at most once: y w d h m s ms.
  struct Unit {
    std::string_view suffix;
    int64_t ns;
  };
  static constexpr Unit kUnits[] = {{"y", 365 * 86400 * kNanosPerSecond},
                                    {"w", 7 * 86400 * kNanosPerSecond},
                                    {"d", 86400 * kNanosPerSecond},
                                    {"h", 3600 * kNanosPerSecond},
                                    {"ms", 1'000'000},
                                    {"m", 60 * kNanosPerSecond},
                                    {"s", kNanosPerSecond}};
  std::string_view s = value;
  if (s.empty()) return bad();
  int64_t total = 0;
  int last_rank = -1;
  auto rank = [](std::string_view u) {
    static constexpr std::string_view kOrder[] = {"y", "w", "d", "h", "m", "s", "ms"};
    for (int i = 0; i < 7; ++i) {
      if (kOrder[i] == u) return i;
    }
    return -1;
  };
  while (!s.empty()) {
    size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
    if (n == 0) return bad();
    int64_t count = 0;
    if (!ParseWhole(s.substr(0, n), count)) return bad();
    s.remove_prefix(n);
    const Unit* unit = nullptr;
    for (const auto& u : kUnits) {
      if (s.substr(0, u.suffix.size()) == u.suffix) {
        unit = &u;
        break;
      }
    }
    if (!unit) return bad();
    int r = rank(unit->suffix);
    if (r <= last_rank) return bad();
    last_rank = r;
    if (count > (INT64_MAX - total) / unit->ns) return bad();
    total += count * unit->ns;
    s.remove_prefix(unit->suffix.size());
  }
  return total;
}

const std::vector<std::string_view>& CallListParams() {
  static const auto* v =
      new std::vector<std::string_view>(With({"sort", "order", "limit", "cursor", "timeout"}));
  return *v;
}
const std::vector<std::string_view>& AggregateParams() {
  static const auto* v = new std::vector<std::string_view>(With({"bucket", "group_by", "timeout"}));
  return *v;
}
const std::vector<std::string_view>& TopParams() {
  static const auto* v =
      new std::vector<std::string_view>(With({"by", "dimension", "limit", "timeout"}));
  return *v;
}
const std::vector<std::string_view>& TraceListParams() {
  static const auto* v = new std::vector<std::string_view>(
      {"from", "to", "service", "errors_only", "limit", "cursor", "timeout"});
  return *v;
}
const std::vector<std::string_view>& ExportParams() {
  static const auto* v = new std::vector<std::string_view>(With({"format", "limit", "timeout"}));
  return *v;
}

core::Result<storage::CallFilter> ParseFilter(const Params& p, int64_t now_unix_nanos,
                                              std::optional<core::Nanos> default_range) {
  storage::CallFilter f;
  auto from = p.Get("from");
  auto to = p.Get("to");
  if (from) {
    auto t = ParseTime(*from, "from");
    if (!t.ok()) return t.status();
    f.from_unix_nanos = *t;
  }
  if (to) {
    auto t = ParseTime(*to, "to");
    if (!t.ok()) return t.status();
    f.to_unix_nanos = *t;
  }
  if (default_range) {
    // A missing end is "now"; a missing start is one default range before the end.
    if (!to) f.to_unix_nanos = now_unix_nanos;
    if (!from) f.from_unix_nanos = f.to_unix_nanos - default_range->count();
  }
  if (f.from_unix_nanos >= f.to_unix_nanos) return Bad("from", "must be before to");
  auto text = [&](const char* name, std::optional<std::string>& field) {
    if (auto v = p.Get(name)) field = std::string(*v);
  };
  text("model", f.model);
  text("provider", f.provider);
  text("user", f.user);
  text("session", f.session);
  if (auto v = p.Get("tag")) {
    size_t colon = v->find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Bad("tag", "must be key:value, got " + Quoted(*v));
    }
    f.tag = std::make_pair(std::string(v->substr(0, colon)), std::string(v->substr(colon + 1)));
  }
  if (auto v = p.Get("status")) {
    int s = 0;
    if (!ParseWhole(*v, s) || s < 0 || s > 999) {
      return Bad("status", "must be an HTTP status code, got " + Quoted(*v));
    }
    f.http_status = s;
  }
  if (auto v = p.Get("error")) {
    f.error = core::ParseErrorClassName(*v);
    if (!f.error) {
      return Bad("error",
                 "must be one of none, invalid_request, auth, rate_limit, timeout, "
                 "upstream_unreachable, server_error, content_filter, cancelled; got " +
                     Quoted(*v));
    }
  }
  if (auto v = p.Get("endpoint")) {
    f.endpoint = core::ParseEndpointName(*v);
    if (!f.endpoint) {
      return Bad("endpoint",
                 "must be one of chat_completions, completions, embeddings, responses, "
                 "messages, models; got " +
                     Quoted(*v));
    }
  }
  if (auto v = p.Get("usage_source")) {
    f.usage_source = core::ParseUsageSourceName(*v);
    if (!f.usage_source) {
      return Bad("usage_source", "must be provider, estimated or missing; got " + Quoted(*v));
    }
  }
  if (auto v = p.Get("trace_id")) {
    f.trace_id = core::ParseTraceIdHex(*v);
    if (!f.trace_id) return Bad("trace_id", "must be 32 hex digits, got " + Quoted(*v));
  }
  if (auto v = p.Get("min_latency")) {
    auto d = ParseDuration(*v, "min_latency");
    if (!d.ok()) return d.status();
    f.min_duration_nanos = *d;
  }
  if (auto v = p.Get("min_cost")) {
    double c = 0;
    if (!ParseWhole(*v, c) || !std::isfinite(c) || c < 0) {
      return Bad("min_cost", "must be a non-negative number of US dollars, got " + Quoted(*v));
    }
    f.min_cost_usd = c;
  }
  if (auto v = p.Get("q")) f.request_id_contains = std::string(*v);
  return f;
}

core::Result<storage::CallQuery> ParseCallQuery(const Params& p, int64_t now_unix_nanos,
                                                const QueryLimits& limits) {
  if (auto s = p.CheckKnown(CallListParams()); !s.ok()) return s;
  storage::CallQuery q;
  auto f = ParseFilter(p, now_unix_nanos, std::nullopt);
  if (!f.ok()) return f.status();
  q.filter = std::move(*f);
  if (auto v = p.Get("sort")) {
    auto s = storage::ParseCallSortName(*v);
    if (!s) {
      return Bad("sort",
                 "must be one of start_time, duration, cost, total_tokens; got " + Quoted(*v));
    }
    q.sort = *s;
  }
  if (auto v = p.Get("order")) {
    if (*v != "asc" && *v != "desc") return Bad("order", "must be asc or desc, got " + Quoted(*v));
    q.descending = *v == "desc";
  }
  auto limit = ParseLimit(p, 50, storage::kMaxPageSize);
  if (!limit.ok()) return limit.status();
  q.limit = *limit;
  if (auto v = p.Get("cursor")) q.cursor = std::string(*v);
  auto timeout = ParseTimeout(p, limits);
  if (!timeout.ok()) return timeout.status();
  q.timeout = *timeout;
  if (auto s = storage::Validate(q); !s.ok()) return s;
  return q;
}

core::Result<storage::AggregateQuery> ParseAggregateQuery(const Params& p, int64_t now_unix_nanos,
                                                          const QueryLimits& limits) {
  if (auto s = p.CheckKnown(AggregateParams()); !s.ok()) return s;
  storage::AggregateQuery q;
  auto f = ParseFilter(p, now_unix_nanos, std::chrono::hours(24));
  if (!f.ok()) return f.status();
  q.filter = std::move(*f);
  if (auto v = p.Get("bucket")) {
    auto b = storage::ParseTimeBucketName(*v);
    if (!b) return Bad("bucket", "must be one of none, minute, hour, day; got " + Quoted(*v));
    q.bucket = *b;
  }
  if (auto v = p.Get("group_by")) {
    if (auto s = ParseGroup("group_by", *v, q.group_by, q.group_tag_key); !s.ok()) return s;
  }
  auto timeout = ParseTimeout(p, limits);
  if (!timeout.ok()) return timeout.status();
  q.timeout = *timeout;
  if (auto s = storage::Validate(q); !s.ok()) return s;
  return q;
}

core::Result<storage::TopQuery> ParseTopQuery(const Params& p, int64_t now_unix_nanos,
                                              const QueryLimits& limits) {
  if (auto s = p.CheckKnown(TopParams()); !s.ok()) return s;
  storage::TopQuery q;
  auto f = ParseFilter(p, now_unix_nanos, std::chrono::hours(24));
  if (!f.ok()) return f.status();
  q.filter = std::move(*f);
  if (auto v = p.Get("by")) {
    auto m = storage::ParseTopMetricName(*v);
    if (!m) return Bad("by", "must be cost or tokens, got " + Quoted(*v));
    q.by = *m;
  }
  if (auto v = p.Get("dimension")) {
    if (auto s = ParseGroup("dimension", *v, q.dimension, q.group_tag_key); !s.ok()) return s;
    if (q.dimension == storage::GroupBy::kNone) return Bad("dimension", "must not be none");
  }
  auto limit = ParseLimit(p, 10, storage::kMaxPageSize);
  if (!limit.ok()) return limit.status();
  q.limit = *limit;
  auto timeout = ParseTimeout(p, limits);
  if (!timeout.ok()) return timeout.status();
  q.timeout = *timeout;
  if (auto s = storage::Validate(q); !s.ok()) return s;
  return q;
}

core::Result<storage::TraceQuery> ParseTraceQuery(const Params& p, int64_t now_unix_nanos,
                                                  const QueryLimits& limits) {
  if (auto s = p.CheckKnown(TraceListParams()); !s.ok()) return s;
  storage::TraceQuery q;
  if (auto v = p.Get("from")) {
    auto t = ParseTime(*v, "from");
    if (!t.ok()) return t.status();
    q.from_unix_nanos = *t;
  }
  if (auto v = p.Get("to")) {
    auto t = ParseTime(*v, "to");
    if (!t.ok()) return t.status();
    q.to_unix_nanos = *t;
  }
  if (auto v = p.Get("service")) q.service = std::string(*v);
  if (auto v = p.Get("errors_only")) {
    if (*v != "true" && *v != "false") {
      return Bad("errors_only", "must be true or false, got " + Quoted(*v));
    }
    q.errors_only = *v == "true";
  }
  auto limit = ParseLimit(p, 50, storage::kMaxPageSize);
  if (!limit.ok()) return limit.status();
  q.limit = *limit;
  if (auto v = p.Get("cursor")) q.cursor = std::string(*v);
  auto timeout = ParseTimeout(p, limits);
  if (!timeout.ok()) return timeout.status();
  q.timeout = *timeout;
  if (auto s = storage::Validate(q); !s.ok()) return s;
  (void)now_unix_nanos;
  return q;
}

core::Result<ExportRequest> ParseExportRequest(const Params& p, int64_t now_unix_nanos,
                                               const QueryLimits& limits) {
  if (auto s = p.CheckKnown(ExportParams()); !s.ok()) return s;
  ExportRequest r;
  auto f = ParseFilter(p, now_unix_nanos, std::nullopt);
  if (!f.ok()) return f.status();
  r.filter = std::move(*f);
  if (auto v = p.Get("format")) {
    if (*v == "jsonl" || *v == "ndjson") {
      r.format = ExportFormat::kJsonLines;
    } else if (*v == "csv") {
      r.format = ExportFormat::kCsv;
    } else {
      return Bad("format", "must be jsonl or csv, got " + Quoted(*v));
    }
  }
  if (auto v = p.Get("limit")) {
    int64_t n = 0;
    if (!ParseWhole(*v, n) || n < 1 || n > kMaxExportRows) {
      return Bad("limit", "must be a whole number between 1 and " + std::to_string(kMaxExportRows) +
                              ", got " + Quoted(*v));
    }
    r.max_rows = n;
  }
  auto timeout = ParseTimeout(p, limits);
  if (!timeout.ok()) return timeout.status();
  r.page_timeout = *timeout;
  return r;
}

}  // namespace llmscope::api
