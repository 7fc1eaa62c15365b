#include "storage/store_contract.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <iomanip>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

// Every expectation here is computed in plain C++ from the data the test wrote, by the
// definitions in store.h (Matches, GroupValue, ExpectedAggregate, ...), so a backend is
// checked against the definition, not against another backend. The data comes from a
// seeded std::mt19937_64, whose output sequence the standard fixes: every run and every
// standard library sees the same calls. Costs are multiples of 1/1024 so that their sums
// are exact in any order of addition and can be compared with ==.
namespace llmscope::storage {

void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

namespace {

std::string OptText(const std::optional<int64_t>& v) {
  return v ? std::to_string(*v) : std::string("none");
}

}  // namespace

void PrintTo(const AggregateRow& r, std::ostream* os) {
  *os << "{bucket=" << r.bucket_start_unix_nanos << " group=\"" << r.group
      << "\" requests=" << r.requests << " errors=" << r.errors
      << " latency=" << OptText(r.latency_p50_nanos) << "/" << OptText(r.latency_p95_nanos) << "/"
      << OptText(r.latency_p99_nanos) << " ttft=" << OptText(r.ttft_p50_nanos) << "/"
      << OptText(r.ttft_p95_nanos) << " tokens=" << r.tokens.input << "/" << r.tokens.output << "/"
      << r.tokens.cache_read << "/" << r.tokens.cache_write << "/" << r.tokens.reasoning
      << " cost=" << std::setprecision(17) << r.cost_usd << " unpriced=" << r.unpriced << "}";
}

void PrintTo(const TopRow& r, std::ostream* os) {
  *os << "{group=\"" << r.group << "\" requests=" << r.requests << " input=" << r.input_tokens
      << " output=" << r.output_tokens << " cost=" << std::setprecision(17) << r.cost_usd << "}";
}

void PrintTo(const TraceSummary& t, std::ostream* os) {
  *os << "{trace=" << core::ToHex(t.trace_id) << " start=" << t.start_unix_nanos
      << " end=" << t.end_unix_nanos << " root=\"" << t.root_name << "\" service=\"" << t.service
      << "\" spans=" << t.span_count << " calls=" << t.call_count << " error=" << t.has_error
      << " cost=" << std::setprecision(17) << t.cost_usd << "}";
}

void StoreContract::SetUp() {
  ASSERT_TRUE(GetParam().make) << "store factory '" << GetParam().name << "' has no function";
  store_ = GetParam().make();
  ASSERT_NE(store_, nullptr) << "store factory '" << GetParam().name << "' made no store";
}

void StoreContract::TearDown() { store_.reset(); }

namespace {

using core::LlmCall;
using core::Span;

constexpr int64_t kMilli = 1'000'000;
constexpr int64_t kSecond = kNanosPerSecond;
constexpr int64_t kHour = 3600 * kSecond;
constexpr int64_t kDay = kNanosPerDay;
// 2024-03-01T00:00:00Z: a UTC midnight, so day buckets and retention cutoffs line up with it.
constexpr int64_t kBase = int64_t{1'709'251'200} * kSecond;
// The generated calls start in [kBase, kBase + kDataDays days).
constexpr int kDataDays = 3;
constexpr int kCallCount = 400;

core::Status StatusOf(const core::Status& s) { return s; }
template <typename T>
core::Status StatusOf(const core::Result<T>& r) {
  return r.status();
}

#define CONTRACT_ASSERT_OK(expr)                                                      \
  do {                                                                                \
    const core::Status contract_status = StatusOf(expr);                              \
    ASSERT_TRUE(contract_status.ok()) << #expr << ": " << contract_status.ToString(); \
  } while (false)

// Deterministic test data. std::mt19937_64's sequence is fixed by the standard (the
// distributions are not), so values are drawn with plain modulo.
class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}
  int64_t Below(int64_t n) { return static_cast<int64_t>(engine_() % static_cast<uint64_t>(n)); }
  bool Percent(int p) { return Below(100) < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Below(static_cast<int64_t>(v.size())))];
  }
  template <size_t N>
  std::array<uint8_t, N> Id() {
    std::array<uint8_t, N> id{};
    for (auto& b : id) b = static_cast<uint8_t>(Below(256));
    id[N - 1] |= 1;  // never all zero: the zero id means "none"
    return id;
  }

 private:
  std::mt19937_64 engine_;
};

// One generated call starting at `start`. Chosen to exercise the definitions: few distinct
// durations, token counts and costs (ties on every sort key), unfinished and unpriced calls,
// a model whose calls never end (percentiles of nothing), tags with an empty value and a
// repeated key, calls with and without a trace, with and without content.
LlmCall MakeCall(Rng& rng, int index, int64_t start, const std::vector<core::TraceId>& traces) {
  static const std::vector<std::string> kModels = {"gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet",
                                                   "never-ends", ""};
  static const std::vector<std::string> kProviders = {"openai", "anthropic", "sim"};
  static const std::vector<std::string> kUsers = {"alice", "bob", "carol", "dave", "", ""};
  static const std::vector<std::string> kSessions = {"", "s-1", "s-2"};
  static const std::vector<std::string> kFinish = {"stop", "length", "tool_calls"};
  static const std::vector<std::string> kTeams = {"search", "ads", ""};
  static const std::vector<std::string> kEnvs = {"prod", "dev"};
  static const int kStatusOfError[] = {200, 400, 401, 429, 504, 0, 500, 400, 499};

  LlmCall c;
  char id[48];
  // A random prefix, so request-id order differs from start order and from write order.
  std::snprintf(id, sizeof id, "%06" PRIx64 "-%d", static_cast<uint64_t>(rng.Below(1 << 24)),
                index);
  c.request_id = id;
  if (rng.Percent(12)) {
    c.request_id.insert(3, "xyz");
  } else if (rng.Percent(5)) {
    c.request_id.insert(3, "XYZ");  // request_id_contains is case-sensitive
  }
  c.start_unix_nanos = start;
  c.requested_model = rng.Pick(kModels);
  const bool never_ends = c.requested_model == "never-ends";
  int64_t r = rng.Below(10);
  if (r < 5) {
    c.response_model = c.requested_model;
  } else if (r < 8) {
    c.response_model = c.requested_model + "-2024-08-06";
  } else if (r < 9) {
    c.response_model = "gpt-4o-mini";  // matches a model filter through the response model
  }
  c.provider = rng.Pick(kProviders);
  c.provider_kind = c.provider == "sim" ? "simulator" : c.provider;
  c.endpoint = static_cast<core::Endpoint>(rng.Below(6));
  c.stream = rng.Percent(50);
  if (rng.Percent(75)) {
    c.http_status = 200;
  } else {
    c.error = static_cast<core::ErrorClass>(1 + rng.Below(8));
    c.http_status = kStatusOfError[static_cast<int>(c.error)];
    c.error_message = "failed: " + std::string(core::ErrorClassName(c.error));
    c.client_cancelled = c.error == core::ErrorClass::kCancelled;
  }
  if (!never_ends && rng.Percent(90)) {
    c.end_nanos = (1 + rng.Below(40)) * 50 * kMilli;
    if (rng.Percent(70)) c.first_content_nanos = rng.Below(c.end_nanos / kMilli + 1) * kMilli;
    c.first_byte_nanos = c.first_content_nanos >= 0 ? c.first_content_nanos / 2 : -1;
  }
  c.overhead_nanos = rng.Below(1000) * 1000;
  if (rng.Percent(50)) c.max_tokens = rng.Below(4097);
  if (rng.Percent(50)) c.temperature = 0.25 * static_cast<double>(rng.Below(8));
  if (rng.Percent(30)) c.top_p = 0.5 + 0.125 * static_cast<double>(rng.Below(4));
  for (int64_t k = rng.Below(3); k > 0; --k) c.finish_reasons.push_back(rng.Pick(kFinish));
  c.usage.input = 100 * rng.Below(10);
  c.usage.output = 50 * rng.Below(6);
  c.usage.cache_read = rng.Below(c.usage.input + 1);
  c.usage.cache_write = 10 * rng.Below(3);
  c.usage.reasoning = rng.Below(c.usage.output + 1);
  c.usage_source = static_cast<core::UsageSource>(rng.Below(3));
  if (never_ends || rng.Percent(10)) {
    c.unpriced = true;
  } else if (rng.Percent(5)) {
    // Neither priced nor flagged (no price catalog): counts in no cost sum, not as unpriced.
  } else {
    c.cost_usd = static_cast<double>(rng.Below(64)) / 1024.0;
  }
  c.user = rng.Pick(kUsers);
  c.session = rng.Pick(kSessions);
  bool env_first = rng.Percent(50);
  if (env_first && rng.Percent(40)) c.tags.emplace_back("env", rng.Pick(kEnvs));
  if (rng.Percent(60)) {
    c.tags.emplace_back("team", rng.Pick(kTeams));
    if (rng.Percent(8)) c.tags.emplace_back("team", "second");  // grouping uses the first
  }
  if (!env_first && rng.Percent(40)) c.tags.emplace_back("env", rng.Pick(kEnvs));
  if (rng.Percent(20)) c.tags.emplace_back("feature", "chat");
  if (!traces.empty() && rng.Percent(60)) {
    c.trace_id = rng.Pick(traces);
    c.span_id = rng.Id<8>();
    if (rng.Percent(50)) c.parent_span_id = rng.Id<8>();
  }
  int64_t content = rng.Below(10);
  if (content <= 3)
    c.request_body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi " + c.request_id + "\"}]}";
  if (content <= 2 || content == 4) c.response_text = "Hello, " + c.request_id + "!\n";
  return c;
}

// `n` calls starting in [from, from + width); about one in ten shares the start of an
// earlier call (ties on the start time).
std::vector<LlmCall> MakeCalls(uint64_t seed, int n, int64_t from, int64_t width,
                               const std::vector<core::TraceId>& traces) {
  Rng rng(seed);
  std::vector<LlmCall> calls;
  calls.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int64_t start = from + rng.Below(width);
    if (i > 0 && rng.Percent(10)) start = calls[static_cast<size_t>(rng.Below(i))].start_unix_nanos;
    calls.push_back(MakeCall(rng, i, start, traces));
  }
  return calls;
}

std::vector<LlmCall> StandardCalls() {
  return MakeCalls(42, kCallCount, kBase, kDataDays * kDay, {});
}

// A span with an attribute of every kind, an event and a link, in trace `trace`.
Span MakeSpan(Rng& rng, const core::TraceId& trace, int64_t start) {
  static const std::vector<std::string> kServices = {"api", "worker", "db"};
  Span s;
  s.trace_id = trace;
  s.span_id = rng.Id<8>();
  if (rng.Percent(70)) s.parent_span_id = rng.Id<8>();
  s.name = "op-" + std::to_string(rng.Below(5));
  s.kind = static_cast<core::SpanKind>(rng.Below(6));
  s.service = rng.Pick(kServices);
  s.scope = "llmscope.contract";
  s.start_unix_nanos = start;
  s.end_unix_nanos = start + rng.Below(10) * 100 * kMilli;
  if (rng.Percent(10)) {
    s.status = core::SpanStatus::kError;
    s.status_message = "boom";
  } else {
    s.status = rng.Percent(50) ? core::SpanStatus::kOk : core::SpanStatus::kUnset;
  }
  s.resource_attributes = {{"service.name", s.service}, {"host.name", std::string("h1")}};
  s.attributes = {{"http.status_code", int64_t{200 + rng.Below(3)}},
                  {"retry", rng.Percent(50)},
                  {"ratio", 0.5},
                  {"route", std::string("/v1/chat")}};
  if (rng.Percent(30)) {
    s.events.push_back({start + kMilli, "gen_ai.choice", {{"index", int64_t{0}}}});
  }
  if (rng.Percent(20)) {
    core::SpanLink link;
    link.trace_id = rng.Id<16>();
    link.span_id = rng.Id<8>();
    s.links.push_back(link);
  }
  return s;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// ----- The definitions of store.h, in plain C++ ----------------------------------------

bool Matches(const LlmCall& c, const CallFilter& f) {
  if (c.start_unix_nanos < f.from_unix_nanos || c.start_unix_nanos >= f.to_unix_nanos) {
    return false;
  }
  if (f.model && c.requested_model != *f.model && c.response_model != *f.model) return false;
  if (f.provider && c.provider != *f.provider) return false;
  if (f.user && c.user != *f.user) return false;
  if (f.session && c.session != *f.session) return false;
  if (f.tag && std::find(c.tags.begin(), c.tags.end(), *f.tag) == c.tags.end()) return false;
  if (f.http_status && c.http_status != *f.http_status) return false;
  if (f.error && c.error != *f.error) return false;
  if (f.endpoint && c.endpoint != *f.endpoint) return false;
  if (f.usage_source && c.usage_source != *f.usage_source) return false;
  if (f.trace_id && c.trace_id != *f.trace_id) return false;
  if (f.min_duration_nanos && !(c.end_nanos >= 0 && c.end_nanos >= *f.min_duration_nanos)) {
    return false;
  }
  if (f.min_cost_usd && !(c.cost_usd && *c.cost_usd >= *f.min_cost_usd)) return false;
  if (!f.request_id_contains.empty() &&
      c.request_id.find(f.request_id_contains) == std::string::npos) {
    return false;
  }
  return true;
}

// Whether `a` comes before `b` in a list ordered by (sort value, request_id).
bool ListedBefore(const LlmCall& a, const LlmCall& b, CallSort sort, bool descending) {
  auto va = SortValue(a, sort);
  auto vb = SortValue(b, sort);
  if (va != vb) return descending ? vb < va : va < vb;
  return descending ? b.request_id < a.request_id : a.request_id < b.request_id;
}

std::vector<std::string> ExpectedIds(const std::vector<LlmCall>& calls, const CallFilter& filter,
                                     CallSort sort, bool descending) {
  std::vector<const LlmCall*> matching;
  for (const auto& c : calls) {
    if (Matches(c, filter)) matching.push_back(&c);
  }
  std::sort(matching.begin(), matching.end(), [&](const LlmCall* a, const LlmCall* b) {
    return ListedBefore(*a, *b, sort, descending);
  });
  std::vector<std::string> ids;
  for (const auto* c : matching) ids.push_back(c->request_id);
  return ids;
}

std::string GroupValue(const LlmCall& c, GroupBy g, const std::string& tag_key) {
  switch (g) {
    case GroupBy::kNone:
      return "";
    case GroupBy::kModel:
      return c.requested_model;
    case GroupBy::kProvider:
      return c.provider;
    case GroupBy::kUser:
      return c.user;
    case GroupBy::kTag:
      for (const auto& [k, v] : c.tags) {
        if (k == tag_key) return v;  // the first value of a repeated key
      }
      return "";
    case GroupBy::kEndpoint:
      return std::string(core::EndpointName(c.endpoint));
  }
  return "";
}

std::vector<AggregateRow> ExpectedAggregate(const std::vector<LlmCall>& calls,
                                            const AggregateQuery& q) {
  struct Acc {
    AggregateRow row;
    std::vector<int64_t> latency;
    std::vector<int64_t> ttft;
  };
  std::map<std::pair<int64_t, std::string>, Acc> groups;
  const int64_t width = BucketWidthNanos(q.bucket);
  for (const auto& c : calls) {
    if (!Matches(c, q.filter)) continue;
    int64_t bucket = width > 0 ? FloorDiv(c.start_unix_nanos, width) * width : 0;
    std::string group = GroupValue(c, q.group_by, q.group_tag_key);
    Acc& a = groups[{bucket, group}];
    a.row.bucket_start_unix_nanos = bucket;
    a.row.group = group;
    a.row.requests++;
    if (c.error != core::ErrorClass::kNone) a.row.errors++;
    if (c.end_nanos >= 0) a.latency.push_back(c.end_nanos);
    if (c.first_content_nanos >= 0) a.ttft.push_back(c.first_content_nanos);
    a.row.tokens.input += c.usage.input;
    a.row.tokens.output += c.usage.output;
    a.row.tokens.cache_read += c.usage.cache_read;
    a.row.tokens.cache_write += c.usage.cache_write;
    a.row.tokens.reasoning += c.usage.reasoning;
    if (c.cost_usd) a.row.cost_usd += *c.cost_usd;
    if (c.unpriced) a.row.unpriced++;
  }
  std::vector<AggregateRow> rows;
  for (auto& [key, a] : groups) {
    if (!a.latency.empty()) {
      a.row.latency_p50_nanos = ExactQuantile(a.latency, 0.50);
      a.row.latency_p95_nanos = ExactQuantile(a.latency, 0.95);
      a.row.latency_p99_nanos = ExactQuantile(a.latency, 0.99);
    }
    if (!a.ttft.empty()) {
      a.row.ttft_p50_nanos = ExactQuantile(a.ttft, 0.50);
      a.row.ttft_p95_nanos = ExactQuantile(a.ttft, 0.95);
    }
    rows.push_back(a.row);
  }
  return rows;  // std::map order: (bucket, group) ascending
}

std::vector<TopRow> ExpectedTop(const std::vector<LlmCall>& calls, const TopQuery& q) {
  std::map<std::string, TopRow> groups;
  for (const auto& c : calls) {
    if (!Matches(c, q.filter)) continue;
    std::string group = GroupValue(c, q.dimension, q.group_tag_key);
    if (group.empty()) continue;
    TopRow& row = groups[group];
    row.group = group;
    row.requests++;
    row.input_tokens += c.usage.input;
    row.output_tokens += c.usage.output;
    if (c.cost_usd) row.cost_usd += *c.cost_usd;
  }
  std::vector<TopRow> rows;
  for (auto& [g, row] : groups) rows.push_back(row);
  auto metric = [&](const TopRow& r) {
    return q.by == TopMetric::kCost ? r.cost_usd
                                    : static_cast<double>(r.input_tokens + r.output_tokens);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const TopRow& a, const TopRow& b) {
    return metric(a) > metric(b);  // stable: ties keep the map's group-ascending order
  });
  if (rows.size() > q.limit) rows.resize(q.limit);
  return rows;
}

std::vector<TraceSummary> ExpectedTraces(const std::vector<LlmCall>& calls,
                                         const std::vector<Span>& spans, const TraceQuery& q) {
  struct Acc {
    TraceSummary s;
    bool any = false;
    bool has_root = false;
    int64_t root_start = 0;
    core::SpanId root_id{};
    std::set<std::string> services;
    void Extend(int64_t start, int64_t end) {
      s.start_unix_nanos = any ? std::min(s.start_unix_nanos, start) : start;
      s.end_unix_nanos = any ? std::max(s.end_unix_nanos, end) : end;
      any = true;
    }
  };
  std::map<core::TraceId, Acc> traces;
  auto in_range = [&](int64_t t) { return t >= q.from_unix_nanos && t < q.to_unix_nanos; };
  for (const auto& sp : spans) {
    if (!in_range(sp.start_unix_nanos)) continue;
    Acc& a = traces[sp.trace_id];
    a.s.trace_id = sp.trace_id;
    a.Extend(sp.start_unix_nanos, sp.end_unix_nanos);
    a.s.span_count++;
    if (sp.status == core::SpanStatus::kError) a.s.has_error = true;
    a.services.insert(sp.service);
    if (!a.has_root ||
        std::pair(sp.start_unix_nanos, sp.span_id) < std::pair(a.root_start, a.root_id)) {
      a.has_root = true;
      a.root_start = sp.start_unix_nanos;
      a.root_id = sp.span_id;
      a.s.root_name = sp.name;
      a.s.service = sp.service;
    }
  }
  for (const auto& c : calls) {
    if (!in_range(c.start_unix_nanos) || !core::IsValid(c.trace_id)) continue;
    Acc& a = traces[c.trace_id];
    a.s.trace_id = c.trace_id;
    a.Extend(c.start_unix_nanos, c.start_unix_nanos + std::max<int64_t>(c.end_nanos, 0));
    a.s.call_count++;
    if (c.error != core::ErrorClass::kNone) a.s.has_error = true;
    if (c.cost_usd) a.s.cost_usd += *c.cost_usd;
  }
  std::vector<TraceSummary> out;
  for (const auto& [id, a] : traces) {
    if (q.service && !a.services.contains(*q.service)) continue;
    if (q.errors_only && !a.s.has_error) continue;
    out.push_back(a.s);
  }
  std::sort(out.begin(), out.end(), [](const TraceSummary& a, const TraceSummary& b) {
    return std::pair(a.start_unix_nanos, a.trace_id) > std::pair(b.start_unix_nanos, b.trace_id);
  });
  return out;
}

// A call as a list page shows it: without content.
LlmCall WithoutContent(LlmCall c) {
  c.request_body.clear();
  c.response_text.clear();
  return c;
}

// Field-by-field comparison, so a failure names the field.
void ExpectSameCall(const LlmCall& got, const LlmCall& want) {
  SCOPED_TRACE("request_id " + want.request_id);
  EXPECT_EQ(got.request_id, want.request_id);
  EXPECT_EQ(core::ToHex(got.trace_id), core::ToHex(want.trace_id));
  EXPECT_EQ(core::ToHex(got.span_id), core::ToHex(want.span_id));
  EXPECT_EQ(core::ToHex(got.parent_span_id), core::ToHex(want.parent_span_id));
  EXPECT_EQ(got.start_unix_nanos, want.start_unix_nanos);
  EXPECT_EQ(got.first_byte_nanos, want.first_byte_nanos);
  EXPECT_EQ(got.first_content_nanos, want.first_content_nanos);
  EXPECT_EQ(got.end_nanos, want.end_nanos);
  EXPECT_EQ(got.overhead_nanos, want.overhead_nanos);
  EXPECT_EQ(got.endpoint, want.endpoint);
  EXPECT_EQ(got.stream, want.stream);
  EXPECT_EQ(got.requested_model, want.requested_model);
  EXPECT_EQ(got.response_model, want.response_model);
  EXPECT_EQ(got.provider, want.provider);
  EXPECT_EQ(got.provider_kind, want.provider_kind);
  EXPECT_EQ(got.http_status, want.http_status);
  EXPECT_EQ(got.error, want.error);
  EXPECT_EQ(got.error_message, want.error_message);
  EXPECT_EQ(got.client_cancelled, want.client_cancelled);
  EXPECT_EQ(got.max_tokens, want.max_tokens);
  EXPECT_EQ(got.temperature, want.temperature);
  EXPECT_EQ(got.top_p, want.top_p);
  EXPECT_EQ(got.finish_reasons, want.finish_reasons);
  EXPECT_EQ(got.usage.input, want.usage.input);
  EXPECT_EQ(got.usage.output, want.usage.output);
  EXPECT_EQ(got.usage.cache_read, want.usage.cache_read);
  EXPECT_EQ(got.usage.cache_write, want.usage.cache_write);
  EXPECT_EQ(got.usage.reasoning, want.usage.reasoning);
  EXPECT_EQ(got.usage_source, want.usage_source);
  EXPECT_EQ(got.cost_usd, want.cost_usd);
  EXPECT_EQ(got.unpriced, want.unpriced);
  EXPECT_EQ(got.user, want.user);
  EXPECT_EQ(got.session, want.session);
  EXPECT_EQ(got.tags, want.tags);
  EXPECT_EQ(got.request_body, want.request_body);
  EXPECT_EQ(got.response_text, want.response_text);
  EXPECT_TRUE(got == want);  // catches a field added to LlmCall but not to this list
}

void ExpectSameSpan(const Span& got, const Span& want) {
  SCOPED_TRACE("span " + core::ToHex(want.trace_id) + "/" + core::ToHex(want.span_id));
  EXPECT_EQ(core::ToHex(got.trace_id), core::ToHex(want.trace_id));
  EXPECT_EQ(core::ToHex(got.span_id), core::ToHex(want.span_id));
  EXPECT_EQ(core::ToHex(got.parent_span_id), core::ToHex(want.parent_span_id));
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.service, want.service);
  EXPECT_EQ(got.scope, want.scope);
  EXPECT_EQ(got.start_unix_nanos, want.start_unix_nanos);
  EXPECT_EQ(got.end_unix_nanos, want.end_unix_nanos);
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.status_message, want.status_message);
  EXPECT_EQ(AttributesToJson(got.resource_attributes), AttributesToJson(want.resource_attributes));
  EXPECT_EQ(AttributesToJson(got.attributes), AttributesToJson(want.attributes));
  EXPECT_EQ(EventsToJson(got.events), EventsToJson(want.events));
  EXPECT_EQ(LinksToJson(got.links), LinksToJson(want.links));
  EXPECT_TRUE(got == want);  // also the attribute value kinds, which JSON text may blur
}

// ----- Store helpers ---------------------------------------------------------------------

core::Status WriteInBatches(Store& store, const std::vector<LlmCall>& calls, size_t batch) {
  for (size_t i = 0; i < calls.size(); i += batch) {
    size_t n = std::min(batch, calls.size() - i);
    if (auto s = store.WriteCalls(std::span<const LlmCall>(calls.data() + i, n)); !s.ok()) {
      return s;
    }
  }
  return core::Status::Ok();
}

// Every page of `q` concatenated, checking the paging promises on the way: no page over the
// limit, every page but the last full, the last page's cursor empty and no empty page after
// a full one.
core::Result<std::vector<LlmCall>> ListAll(Store& store, CallQuery q) {
  std::vector<LlmCall> out;
  for (int page_no = 0;; ++page_no) {
    if (page_no > 100'000) return core::Internal("ListAll: the cursor never ran out");
    auto page = store.ListCalls(q);
    if (!page.ok()) return page.status();
    const std::string where = "page " + std::to_string(page_no) + ": ";
    if (page->calls.size() > q.limit) return core::Internal(where + "more rows than the limit");
    const bool last = page->next_cursor.empty();
    if (!last && page->calls.size() != q.limit) {
      return core::Internal(where + "a page with a next cursor is not full");
    }
    if (last && page->calls.empty() && page_no > 0) {
      return core::Internal(where + "empty last page: the previous page should have ended");
    }
    for (auto& c : page->calls) out.push_back(std::move(c));
    if (last) return out;
    q.cursor = page->next_cursor;
  }
}

std::vector<std::string> Ids(const std::vector<LlmCall>& calls) {
  std::vector<std::string> ids;
  for (const auto& c : calls) ids.push_back(c.request_id);
  return ids;
}

core::Result<std::vector<TraceSummary>> ListAllTraces(Store& store, TraceQuery q) {
  std::vector<TraceSummary> out;
  for (int page_no = 0;; ++page_no) {
    if (page_no > 100'000) return core::Internal("ListAllTraces: the cursor never ran out");
    auto page = store.ListTraces(q);
    if (!page.ok()) return page.status();
    const std::string where = "trace page " + std::to_string(page_no) + ": ";
    if (page->traces.size() > q.limit) return core::Internal(where + "more rows than the limit");
    const bool last = page->next_cursor.empty();
    if (!last && page->traces.size() != q.limit) {
      return core::Internal(where + "a page with a next cursor is not full");
    }
    if (last && page->traces.empty() && page_no > 0) {
      return core::Internal(where + "empty last page: the previous page should have ended");
    }
    for (auto& t : page->traces) out.push_back(std::move(t));
    if (last) return out;
    q.cursor = page->next_cursor;
  }
}

// Every call, newest first, in pages of the largest size.
CallQuery EveryCall() {
  CallQuery q;
  q.limit = kMaxPageSize;
  return q;
}

int64_t CountIf(const std::vector<LlmCall>& calls, auto pred) {
  return static_cast<int64_t>(std::count_if(calls.begin(), calls.end(), pred));
}

bool HasContent(const LlmCall& c) { return !c.request_body.empty() || !c.response_text.empty(); }

CallFilter DataRange() {
  CallFilter f;
  f.from_unix_nanos = kBase;
  f.to_unix_nanos = kBase + kDataDays * kDay;
  return f;
}

core::TraceId TraceIdOf(uint8_t first, uint8_t last = 1) {
  core::TraceId id{};
  id[0] = first;
  id[15] = last;
  return id;
}

core::SpanId SpanIdOf(uint8_t first, uint8_t last = 1) {
  core::SpanId id{};
  id[0] = first;
  id[7] = last;
  return id;
}

}  // namespace

// ----- Basics ----------------------------------------------------------------------------

TEST_P(StoreContract, StartsEmptyAndAnswers) {
  EXPECT_FALSE(store().name().empty());
  CONTRACT_ASSERT_OK(store().Ping());
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 0);
  EXPECT_EQ(stats->content, 0);
  EXPECT_EQ(stats->spans, 0);
  auto page = store().ListCalls(CallQuery{});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->calls.empty());
  EXPECT_TRUE(page->next_cursor.empty());
  auto agg = store().Aggregate(AggregateQuery{});
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  EXPECT_TRUE(agg->rows.empty());  // only non-empty buckets: none at all
  auto top = store().Top(TopQuery{});
  ASSERT_TRUE(top.ok()) << top.status().ToString();
  EXPECT_TRUE(top->rows.empty());
  auto traces = store().ListTraces(TraceQuery{});
  ASSERT_TRUE(traces.ok()) << traces.status().ToString();
  EXPECT_TRUE(traces->traces.empty());
  EXPECT_TRUE(traces->next_cursor.empty());
  EXPECT_EQ(store().GetCall("absent").status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(store().GetTrace(TraceIdOf(1)).status().code(), core::StatusCode::kNotFound);
  // Writing nothing is fine.
  CONTRACT_ASSERT_OK(store().WriteCalls({}));
  CONTRACT_ASSERT_OK(store().WriteSpans({}));
}

TEST_P(StoreContract, CallRoundTripsEveryFieldAndListsWithoutContent) {
  LlmCall full;
  full.request_id = "chatcmpl-r\xC3\xA9q-\xE2\x9C\x93-1";  // UTF-8 survives
  full.trace_id = TraceIdOf(0xab, 0xcd);
  full.span_id = SpanIdOf(0x12, 0x34);
  full.parent_span_id = SpanIdOf(0x56, 0x78);
  full.start_unix_nanos = kBase + 123'456'789;
  full.first_byte_nanos = 11'000'001;
  full.first_content_nanos = 12'000'002;
  full.end_nanos = 987'654'321;
  full.overhead_nanos = 4'321;
  full.endpoint = core::Endpoint::kMessages;
  full.stream = true;
  full.requested_model = "claude-3-5-sonnet";
  full.response_model = "claude-3-5-sonnet-20241022";
  full.provider = "anthropic-eu";
  full.provider_kind = "anthropic";
  full.http_status = 529;
  full.error = core::ErrorClass::kRateLimit;
  full.error_message = "overloaded: \"retry\"\nlater \\ soon";
  full.client_cancelled = true;
  full.max_tokens = 0;
  full.temperature = 0.7;
  full.top_p = 1.0;
  full.finish_reasons = {"stop", "length", "stop", "", "ctl\x1d\x1e\x1f"};
  full.usage = {1234, 567, 89, 10, 11};
  full.usage_source = core::UsageSource::kEstimated;
  full.cost_usd = 0.1 + 0.2;  // not a short decimal: must come back bit for bit
  full.unpriced = false;
  full.user = "\xF0\x9F\x98\x80 user";
  full.session = "sess-1";
  // Control bytes, a quote, an empty key: tags are stored byte for byte.
  full.tags = {{"team", "search"},
               {"empty", ""},
               {"team", "again"},
               {"\xC3\xBC", "v\"q"},
               {"ctl\x1d\x1e\x1f", "v\x1f\x1e\x1d="},
               {"", "no key"}};
  full.request_body = "{\"messages\":[{\"role\":\"user\",\"content\":\"h\xC3\xA9llo\\n\"}]}";
  full.response_text = "line one\nline two \xE2\x9C\x93";

  LlmCall minimal;  // every optional absent, every list empty, no trace, no content
  minimal.request_id = "minimal";
  minimal.start_unix_nanos = kBase;

  LlmCall body_only = minimal;
  body_only.request_id = "body-only";
  body_only.start_unix_nanos = kBase + 1;
  body_only.request_body = "{}";
  body_only.cost_usd = 0.0;  // priced at zero: distinct from unpriced

  LlmCall response_only = minimal;
  response_only.request_id = "response-only";
  response_only.start_unix_nanos = kBase + 2;
  response_only.response_text = "ok";
  response_only.unpriced = true;

  std::vector<LlmCall> calls = {full, minimal, body_only, response_only};
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));

  for (const auto& want : calls) {
    auto got = store().GetCall(want.request_id);
    ASSERT_TRUE(got.ok()) << want.request_id << ": " << got.status().ToString();
    ExpectSameCall(*got, want);
  }
  EXPECT_EQ(store().GetCall("minima").status().code(), core::StatusCode::kNotFound);
  EXPECT_EQ(store().GetCall("").status().code(), core::StatusCode::kNotFound);

  CallQuery q;
  q.limit = 10;
  auto page = store().ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->calls.size(), 4u);
  EXPECT_TRUE(page->next_cursor.empty());
  // Newest first: full (kBase + 123456789), response_only, body_only, minimal.
  ExpectSameCall(page->calls[0], WithoutContent(full));
  ExpectSameCall(page->calls[1], WithoutContent(response_only));
  ExpectSameCall(page->calls[2], WithoutContent(body_only));
  ExpectSameCall(page->calls[3], minimal);

  // Tag filters and grouping see those bytes exactly too.
  for (const auto& tag : full.tags) {
    CallQuery by_tag;
    by_tag.filter.tag = tag;
    if (tag.first.empty()) continue;  // an empty key is refused as a filter
    auto tagged = store().ListCalls(by_tag);
    ASSERT_TRUE(tagged.ok()) << tagged.status().ToString();
    EXPECT_EQ(Ids(tagged->calls), std::vector<std::string>{full.request_id}) << tag.first;
  }
  CallQuery near_miss;
  near_miss.filter.tag = {"ctl\x1d\x1e", "\x1f"};
  auto none = store().ListCalls(near_miss);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->calls.empty());
  AggregateQuery by_ctl;
  by_ctl.group_by = GroupBy::kTag;
  by_ctl.group_tag_key = "ctl\x1d\x1e\x1f";
  auto ctl_rows = store().Aggregate(by_ctl);
  ASSERT_TRUE(ctl_rows.ok()) << ctl_rows.status().ToString();
  ASSERT_EQ(ctl_rows->rows.size(), 2u);
  EXPECT_EQ(ctl_rows->rows[0].group, "");
  EXPECT_EQ(ctl_rows->rows[0].requests, 3);
  EXPECT_EQ(ctl_rows->rows[1].group, "v\x1f\x1e\x1d=");

  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, 4);
  EXPECT_EQ(stats->content, 3);  // content rows only for calls that carry some
  EXPECT_GT(stats->bytes_on_disk, 0);
}

TEST_P(StoreContract, RewritingACallReplacesItEverywhere) {
  std::vector<LlmCall> calls = StandardCalls();
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 50));
  // A replayed batch (the same calls again) and a batch holding one id twice.
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 1000));
  LlmCall first = calls[7];
  LlmCall second = calls[7];
  first.user = "overwritten-in-batch";
  CONTRACT_ASSERT_OK(store().WriteCalls(std::vector<LlmCall>{first, second}));

  // One call changed in every indexed respect but its key, its content dropped.
  auto victim = std::find_if(calls.begin(), calls.end(), [](const LlmCall& c) {
    return HasContent(c) && !c.tags.empty() && c.cost_usd.has_value();
  });
  ASSERT_NE(victim, calls.end());
  LlmCall changed = *victim;
  changed.requested_model = "rewritten-model";
  changed.response_model = "";
  changed.user = "rewritten-user";
  changed.tags = {{"team", "rewritten"}};
  changed.cost_usd = 1.0;
  changed.usage.input = 12345;
  changed.request_body.clear();
  changed.response_text.clear();
  CONTRACT_ASSERT_OK(store().WriteCalls(std::vector<LlmCall>{changed}));
  const std::string old_team = [&] {
    for (const auto& [k, v] : victim->tags) {
      if (k == "team") return v;
    }
    return std::string("none");
  }();
  *victim = changed;

  auto got = store().GetCall(changed.request_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameCall(*got, changed);  // content gone with the rewrite

  auto all = ListAll(store(), EveryCall());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), ExpectedIds(calls, {}, CallSort::kStartTime, true));

  // Indexes follow the rewrite: the old tag value no longer finds it, the new one does.
  CallQuery by_tag;
  by_tag.limit = kMaxPageSize;
  by_tag.filter.tag = {"team", old_team};
  auto old_tag = ListAll(store(), by_tag);
  ASSERT_TRUE(old_tag.ok()) << old_tag.status().ToString();
  EXPECT_EQ(Ids(*old_tag), ExpectedIds(calls, by_tag.filter, CallSort::kStartTime, true));
  by_tag.filter.tag = {"team", "rewritten"};
  auto new_tag = ListAll(store(), by_tag);
  ASSERT_TRUE(new_tag.ok()) << new_tag.status().ToString();
  EXPECT_EQ(Ids(*new_tag), std::vector<std::string>{changed.request_id});

  AggregateQuery agg;
  agg.filter = DataRange();
  agg.group_by = GroupBy::kModel;
  agg.bucket = TimeBucket::kDay;
  auto rows = store().Aggregate(agg);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(rows->rows, ExpectedAggregate(calls, agg));

  TopQuery top;
  top.dimension = GroupBy::kUser;
  top.limit = 100;
  auto top_rows = store().Top(top);
  ASSERT_TRUE(top_rows.ok()) << top_rows.status().ToString();
  EXPECT_EQ(top_rows->rows, ExpectedTop(calls, top));

  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, kCallCount);
  EXPECT_EQ(stats->content, CountIf(calls, HasContent));

  // Content comes back with a rewrite that carries it.
  changed.response_text = "back";
  CONTRACT_ASSERT_OK(store().WriteCalls(std::vector<LlmCall>{changed}));
  got = store().GetCall(changed.request_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->response_text, "back");

  // The key is (request_id, start): the same id at another start is a second call, and
  // GetCall finds the later-starting one.
  LlmCall earlier = changed;
  earlier.start_unix_nanos = changed.start_unix_nanos - kHour;
  earlier.user = "the-earlier-twin";
  LlmCall later = changed;
  later.start_unix_nanos = changed.start_unix_nanos + kHour;
  later.user = "the-later-twin";
  CONTRACT_ASSERT_OK(store().WriteCalls(std::vector<LlmCall>{later, earlier}));
  got = store().GetCall(changed.request_id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectSameCall(*got, later);
  stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, kCallCount + 2);
}

// ----- Filters, sorting, paging ---------------------------------------------------------

TEST_P(StoreContract, EveryFilterFieldSelectsExactlyTheMatchingCalls) {
  const std::vector<core::TraceId> traces = {TraceIdOf(1), TraceIdOf(2), TraceIdOf(3)};
  std::vector<LlmCall> calls = MakeCalls(7, kCallCount, kBase, kDataDays * kDay, traces);
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 100));
  std::map<std::string, const LlmCall*> by_id;
  for (const auto& c : calls) by_id[c.request_id] = &c;

  std::vector<std::pair<std::string, CallFilter>> filters;
  auto add = [&](std::string name, auto set) {
    CallFilter f;
    set(f);
    filters.emplace_back(std::move(name), std::move(f));
  };
  add("none", [](CallFilter&) {});
  add("from", [](CallFilter& f) { f.from_unix_nanos = kBase + kDay + 3 * kHour; });
  add("to", [](CallFilter& f) { f.to_unix_nanos = kBase + kDay; });
  add("from_to_at_a_start", [&](CallFilter& f) {
    // Both ends at a call's start: from is inclusive, to exclusive.
    f.from_unix_nanos = std::min(calls[5].start_unix_nanos, calls[9].start_unix_nanos);
    f.to_unix_nanos = std::max(calls[5].start_unix_nanos, calls[9].start_unix_nanos);
    if (f.from_unix_nanos == f.to_unix_nanos) f.to_unix_nanos += kHour;
  });
  for (std::string m : {"gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet-2024-08-06", "", "nope"}) {
    add("model=" + m, [m](CallFilter& f) { f.model = m; });
  }
  for (std::string p : {"openai", "sim"}) add("provider", [p](CallFilter& f) { f.provider = p; });
  for (std::string u : {"alice", ""}) add("user=" + u, [u](CallFilter& f) { f.user = u; });
  add("session", [](CallFilter& f) { f.session = "s-1"; });
  add("tag", [](CallFilter& f) { f.tag = {"team", "search"}; });
  add("tag_empty_value", [](CallFilter& f) { f.tag = {"team", ""}; });
  add("tag_repeated_key", [](CallFilter& f) { f.tag = {"team", "second"}; });
  add("tag_absent", [](CallFilter& f) { f.tag = {"nope", "x"}; });
  add("http_status", [](CallFilter& f) { f.http_status = 400; });
  add("error_none", [](CallFilter& f) { f.error = core::ErrorClass::kNone; });
  add("error_rate_limit", [](CallFilter& f) { f.error = core::ErrorClass::kRateLimit; });
  add("endpoint", [](CallFilter& f) { f.endpoint = core::Endpoint::kEmbeddings; });
  add("usage_source", [](CallFilter& f) { f.usage_source = core::UsageSource::kProvider; });
  add("trace_id", [&](CallFilter& f) { f.trace_id = traces[1]; });
  add("trace_id_zero", [](CallFilter& f) { f.trace_id = core::TraceId{}; });
  add("min_duration_0", [](CallFilter& f) { f.min_duration_nanos = 0; });
  add("min_duration", [](CallFilter& f) { f.min_duration_nanos = 1000 * kMilli; });
  add("min_cost_0", [](CallFilter& f) { f.min_cost_usd = 0.0; });
  add("min_cost", [](CallFilter& f) { f.min_cost_usd = 32 / 1024.0; });
  add("request_id_contains", [](CallFilter& f) { f.request_id_contains = "xyz"; });
  add("request_id_contains_case", [](CallFilter& f) { f.request_id_contains = "XYZ"; });
  add("combined", [](CallFilter& f) {
    f.from_unix_nanos = kBase + kDay / 2;
    f.to_unix_nanos = kBase + 5 * kDay / 2;
    f.model = "gpt-4o-mini";
    f.provider = "openai";
    f.min_duration_nanos = 100 * kMilli;
  });
  add("combined_tag_user", [](CallFilter& f) {
    f.tag = {"env", "prod"};
    f.user = "bob";
    f.error = core::ErrorClass::kNone;
  });

  for (const auto& [name, filter] : filters) {
    SCOPED_TRACE("filter " + name);
    CallQuery q;
    q.filter = filter;
    q.limit = kMaxPageSize;
    auto got = ListAll(store(), q);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    std::vector<std::string> want = ExpectedIds(calls, filter, CallSort::kStartTime, true);
    EXPECT_EQ(Ids(*got), want);
    if (name == "none") {
      EXPECT_EQ(want.size(), static_cast<size_t>(kCallCount));
      for (const auto& c : *got) ExpectSameCall(c, WithoutContent(*by_id.at(c.request_id)));
    } else if (name.rfind("tag_absent", 0) != 0 && name != "model=nope") {
      EXPECT_FALSE(want.empty()) << "the data should exercise this filter";
    }
    // Aggregates and top apply the same filter.
    AggregateQuery agg;
    agg.filter = filter;
    auto rows = store().Aggregate(agg);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ(rows->rows, ExpectedAggregate(calls, agg));
    TopQuery top;
    top.filter = filter;
    top.dimension = GroupBy::kModel;
    top.by = TopMetric::kTokens;
    auto top_rows = store().Top(top);
    ASSERT_TRUE(top_rows.ok()) << top_rows.status().ToString();
    EXPECT_EQ(top_rows->rows, ExpectedTop(calls, top));
  }
}

TEST_P(StoreContract, EverySortPagesThroughTheFullOrderInBothDirections) {
  std::vector<LlmCall> calls = StandardCalls();
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 200));
  CallFilter some;
  some.provider = "openai";
  for (CallSort sort :
       {CallSort::kStartTime, CallSort::kDuration, CallSort::kCost, CallSort::kTotalTokens}) {
    // The data must tie on every sort key, so that request_id has to break ties.
    std::set<std::variant<int64_t, double>> distinct;
    for (const auto& c : calls) distinct.insert(SortValue(c, sort));
    ASSERT_LT(distinct.size(), calls.size()) << CallSortName(sort);
    for (bool descending : {true, false}) {
      for (const CallFilter& filter : {CallFilter{}, some}) {
        for (size_t limit : {size_t{7}, size_t{50}, kMaxPageSize}) {
          SCOPED_TRACE(std::string(CallSortName(sort)) + (descending ? " desc" : " asc") +
                       " limit " + std::to_string(limit) + (filter.provider ? " filtered" : ""));
          CallQuery q;
          q.filter = filter;
          q.sort = sort;
          q.descending = descending;
          q.limit = limit;
          auto got = ListAll(store(), q);
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          EXPECT_EQ(Ids(*got), ExpectedIds(calls, filter, sort, descending));
        }
      }
    }
  }
}

TEST_P(StoreContract, CostCursorComparesTheExactDouble) {
  // Doubles whose shortest decimal forms are close or equal-looking, ties, an unpriced call
  // (sorts as -1), the smallest denormal and a huge value.
  const std::vector<std::optional<double>> costs = {
      0.1 + 0.2, 0.3,  0.3,          0.30000000000000004, 1.0 / 3, 5e-324, 1e-17,    0.0,
      0.0,       1e20, std::nullopt, std::nullopt,        2.5,     0.1,    0.1 + 0.2};
  std::vector<LlmCall> calls;
  for (size_t i = 0; i < costs.size(); ++i) {
    LlmCall c;
    c.request_id = "cost-" + std::to_string(100 + (i * 7) % costs.size());
    c.start_unix_nanos = kBase + static_cast<int64_t>(i);
    c.cost_usd = costs[i];
    c.unpriced = !costs[i].has_value();
    calls.push_back(c);
  }
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));
  for (bool descending : {true, false}) {
    for (size_t limit : {size_t{1}, size_t{2}, size_t{3}}) {
      SCOPED_TRACE(std::string(descending ? "desc" : "asc") + " limit " + std::to_string(limit));
      CallQuery q;
      q.sort = CallSort::kCost;
      q.descending = descending;
      q.limit = limit;
      auto got = ListAll(store(), q);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      EXPECT_EQ(Ids(*got), ExpectedIds(calls, {}, CallSort::kCost, descending));
      for (const auto& c : *got) {
        auto it = std::find_if(calls.begin(), calls.end(),
                               [&](const LlmCall& w) { return w.request_id == c.request_id; });
        ASSERT_NE(it, calls.end());
        EXPECT_EQ(c.cost_usd, it->cost_usd) << c.request_id;  // bit for bit
      }
    }
  }
}

TEST_P(StoreContract, RefusesInvalidQueriesNamingTheParameter) {
  CONTRACT_ASSERT_OK(store().WriteCalls(StandardCalls()));
  auto expect_invalid = [](const core::Status& s, const std::string& needle) {
    EXPECT_EQ(s.code(), core::StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(needle), std::string::npos) << s.ToString();
  };
  CallQuery q;
  q.limit = 0;
  expect_invalid(store().ListCalls(q).status(), "limit");
  q.limit = kMaxPageSize + 1;
  expect_invalid(store().ListCalls(q).status(), "limit");
  q.limit = 10;
  q.filter.from_unix_nanos = q.filter.to_unix_nanos = kBase;
  expect_invalid(store().ListCalls(q).status(), "from");
  q.filter = {};
  q.filter.min_cost_usd = -1;
  expect_invalid(store().ListCalls(q).status(), "min_cost");
  q.filter = {};
  q.filter.tag = {"", "x"};
  expect_invalid(store().ListCalls(q).status(), "tag");
  q.filter = {};

  // A cursor of another sort or direction is refused, never silently applied.
  q.sort = CallSort::kCost;
  auto page = store().ListCalls(q);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_FALSE(page->next_cursor.empty());
  CallQuery other = q;
  other.cursor = page->next_cursor;
  other.sort = CallSort::kDuration;
  expect_invalid(store().ListCalls(other).status(), "cursor");
  other.sort = CallSort::kCost;
  other.descending = false;
  expect_invalid(store().ListCalls(other).status(), "cursor");
  other.descending = true;
  other.cursor = "not-a-cursor";
  expect_invalid(store().ListCalls(other).status(), "cursor");
  other.cursor = page->next_cursor;
  EXPECT_TRUE(store().ListCalls(other).ok());

  AggregateQuery agg;
  agg.group_by = GroupBy::kTag;
  expect_invalid(store().Aggregate(agg).status(), "tag");
  agg.group_by = GroupBy::kModel;
  agg.bucket = TimeBucket::kMinute;
  expect_invalid(store().Aggregate(agg).status(), "from");  // bucketed needs a bounded range
  agg.filter.from_unix_nanos = kBase;
  agg.filter.to_unix_nanos = kBase + 10 * kDay;  // 14400 minutes
  EXPECT_EQ(store().Aggregate(agg).status().code(), core::StatusCode::kResourceExhausted);

  TopQuery top;
  top.dimension = GroupBy::kNone;
  expect_invalid(store().Top(top).status(), "by");
  top.dimension = GroupBy::kTag;
  expect_invalid(store().Top(top).status(), "tag");
  top.dimension = GroupBy::kUser;
  top.limit = 0;
  expect_invalid(store().Top(top).status(), "limit");

  TraceQuery tq;
  tq.limit = 0;
  expect_invalid(store().ListTraces(tq).status(), "limit");
  tq.limit = 10;
  tq.cursor = "t1.x.y";
  expect_invalid(store().ListTraces(tq).status(), "cursor");
  tq.cursor.clear();
  tq.from_unix_nanos = 5;
  tq.to_unix_nanos = 5;
  expect_invalid(store().ListTraces(tq).status(), "from");
}

// ----- Aggregates and top ---------------------------------------------------------------

TEST_P(StoreContract, AggregateMatchesTheDefinitionForEveryBucketAndGrouping) {
  std::vector<LlmCall> calls = StandardCalls();
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 500));
  CallFilter part;  // a sub-range that cuts buckets: hours from 1d03h to 2d00h
  part.from_unix_nanos = kBase + kDay + 3 * kHour + 17 * kSecond;
  part.to_unix_nanos = kBase + 2 * kDay;
  CallFilter filtered = DataRange();
  filtered.provider = "anthropic";
  for (TimeBucket bucket :
       {TimeBucket::kNone, TimeBucket::kMinute, TimeBucket::kHour, TimeBucket::kDay}) {
    for (GroupBy group : {GroupBy::kNone, GroupBy::kModel, GroupBy::kProvider, GroupBy::kUser,
                          GroupBy::kTag, GroupBy::kEndpoint}) {
      for (const CallFilter& filter : {DataRange(), part, filtered}) {
        SCOPED_TRACE(std::string(TimeBucketName(bucket)) + " by " +
                     std::string(GroupByName(group)) + " from " +
                     std::to_string(filter.from_unix_nanos));
        AggregateQuery q;
        q.filter = filter;
        q.bucket = bucket;
        q.group_by = group;
        if (group == GroupBy::kTag) q.group_tag_key = "team";
        auto got = store().Aggregate(q);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        auto want = ExpectedAggregate(calls, q);
        ASSERT_FALSE(want.empty());
        EXPECT_EQ(got->rows, want);
      }
    }
  }
  // The data must exercise the empty percentile case: a group with no finished call.
  AggregateQuery by_model;
  by_model.group_by = GroupBy::kModel;
  auto rows = ExpectedAggregate(calls, by_model);
  EXPECT_TRUE(std::any_of(rows.begin(), rows.end(), [](const AggregateRow& r) {
    return !r.latency_p50_nanos && !r.ttft_p50_nanos && r.requests > 0;
  }));
}

TEST_P(StoreContract, AggregatePercentilesPickNearestRankFromBelow) {
  // Hand-checked values: latencies 10..50 ms in scrambled order, ttft on some calls only.
  const int64_t ms = kMilli;
  const std::vector<int64_t> latencies = {50 * ms, 10 * ms, 40 * ms, 20 * ms, 30 * ms};
  std::vector<LlmCall> calls;
  for (size_t i = 0; i < latencies.size(); ++i) {
    LlmCall c;
    c.request_id = "p-" + std::to_string(i);
    c.start_unix_nanos = kBase + static_cast<int64_t>(i);
    c.requested_model = "m";
    c.end_nanos = latencies[i];
    if (i < 2) c.first_content_nanos = (i + 1) * ms;  // ttft {1 ms, 2 ms}
    calls.push_back(c);
  }
  LlmCall unfinished;
  unfinished.request_id = "p-unfinished";
  unfinished.start_unix_nanos = kBase;
  unfinished.requested_model = "m";
  calls.push_back(unfinished);
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));
  auto got = store().Aggregate(AggregateQuery{});
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->rows.size(), 1u);
  const AggregateRow& r = got->rows[0];
  EXPECT_EQ(r.requests, 6);
  EXPECT_EQ(r.latency_p50_nanos, 30 * ms);  // v[floor(0.5 * 5)] = v[2]
  EXPECT_EQ(r.latency_p95_nanos, 50 * ms);  // v[4]
  EXPECT_EQ(r.latency_p99_nanos, 50 * ms);
  EXPECT_EQ(r.ttft_p50_nanos, 2 * ms);  // v[floor(0.5 * 2)] = v[1]
  EXPECT_EQ(r.ttft_p95_nanos, 2 * ms);
}

TEST_P(StoreContract, AggregateRefusesMoreRowsThanTheLimit) {
  std::vector<LlmCall> calls;
  for (size_t i = 0; i <= kMaxAggregateRows; ++i) {
    LlmCall c;
    c.request_id = "u-" + std::to_string(i);
    c.start_unix_nanos = kBase + static_cast<int64_t>(i);
    c.user = "user-" + std::to_string(i);
    calls.push_back(c);
  }
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));
  AggregateQuery q;
  q.group_by = GroupBy::kUser;
  auto got = store().Aggregate(q);
  EXPECT_EQ(got.status().code(), core::StatusCode::kResourceExhausted) << got.status().ToString();
  EXPECT_NE(got.status().message().find(std::to_string(kMaxAggregateRows)), std::string::npos)
      << got.status().ToString();
  // One group fewer fits exactly.
  q.filter.to_unix_nanos = kBase + static_cast<int64_t>(kMaxAggregateRows);
  got = store().Aggregate(q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->rows.size(), kMaxAggregateRows);
  // Top keeps its `limit` rows whatever the number of groups.
  TopQuery top;
  top.dimension = GroupBy::kUser;
  top.by = TopMetric::kTokens;
  top.limit = 3;
  auto top_rows = store().Top(top);
  ASSERT_TRUE(top_rows.ok()) << top_rows.status().ToString();
  EXPECT_EQ(top_rows->rows, ExpectedTop(calls, top));
}

TEST_P(StoreContract, TopRanksByCostAndTokensWithTiesByGroup) {
  std::vector<LlmCall> calls = StandardCalls();
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 500));
  struct Dim {
    GroupBy group;
    std::string key;
  };
  for (const Dim& dim :
       {Dim{GroupBy::kModel, ""}, Dim{GroupBy::kProvider, ""}, Dim{GroupBy::kUser, ""},
        Dim{GroupBy::kTag, "team"}, Dim{GroupBy::kTag, "env"}, Dim{GroupBy::kEndpoint, ""}}) {
    for (TopMetric by : {TopMetric::kCost, TopMetric::kTokens}) {
      for (size_t limit : {size_t{1}, size_t{2}, kMaxPageSize}) {
        for (const CallFilter& filter : {CallFilter{}, DataRange()}) {
          SCOPED_TRACE(std::string(GroupByName(dim.group)) + dim.key + " by " +
                       std::string(TopMetricName(by)) + " limit " + std::to_string(limit));
          TopQuery q;
          q.filter = filter;
          q.dimension = dim.group;
          q.group_tag_key = dim.key;
          q.by = by;
          q.limit = limit;
          auto got = store().Top(q);
          ASSERT_TRUE(got.ok()) << got.status().ToString();
          EXPECT_EQ(got->rows, ExpectedTop(calls, q));
        }
      }
    }
  }
}

TEST_P(StoreContract, TopBreaksTiesByGroupAndLeavesOutEmptyGroups) {
  // zed, amy and bob tie on cost (0.5) and on tokens (300); "" has the most of both.
  auto call = [](std::string id, std::string user, double cost, int64_t in, int64_t out) {
    LlmCall c;
    c.request_id = std::move(id);
    c.start_unix_nanos = kBase;
    c.user = std::move(user);
    c.requested_model = "m";
    c.cost_usd = cost;
    c.usage.input = in;
    c.usage.output = out;
    return c;
  };
  std::vector<LlmCall> calls = {
      call("1", "zed", 0.5, 100, 200),   call("2", "amy", 0.25, 300, 0),
      call("3", "amy", 0.25, 0, 0),      call("4", "bob", 0.5, 150, 150),
      call("5", "", 100.0, 10000, 1000), call("6", "carl", 0.125, 1, 1),
  };
  LlmCall unpriced = call("7", "carl", 0, 400, 0);
  unpriced.cost_usd.reset();
  unpriced.unpriced = true;
  calls.push_back(unpriced);
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));

  TopQuery q;
  q.dimension = GroupBy::kUser;
  q.by = TopMetric::kCost;
  q.limit = 3;
  auto got = store().Top(q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::vector<TopRow> want = {
      {"amy", 2, 300, 0, 0.5}, {"bob", 1, 150, 150, 0.5}, {"zed", 1, 100, 200, 0.5}};
  EXPECT_EQ(got->rows, want);

  q.by = TopMetric::kTokens;
  q.limit = 10;
  got = store().Top(q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  want = {{"carl", 2, 401, 1, 0.125},
          {"amy", 2, 300, 0, 0.5},
          {"bob", 1, 150, 150, 0.5},
          {"zed", 1, 100, 200, 0.5}};
  EXPECT_EQ(got->rows, want);
}

// ----- Spans and traces ------------------------------------------------------------------

TEST_P(StoreContract, SpansRoundTripAndRewriteByTraceAndSpanId) {
  Span full;
  full.trace_id = TraceIdOf(0x0a, 0x0b);
  full.span_id = SpanIdOf(0x01, 0x02);
  full.parent_span_id = SpanIdOf(0x03, 0x04);
  full.name = "chat gpt-4o";
  full.kind = core::SpanKind::kClient;
  full.service = "checkout";
  full.scope = "opentelemetry.instrumentation.openai";
  full.start_unix_nanos = kBase + 5;
  full.end_unix_nanos = kBase + 5 + 2 * kSecond;
  full.status = core::SpanStatus::kError;
  full.status_message = "upstream said \"no\"";
  full.resource_attributes = {{"service.name", std::string("checkout")},
                              {"process.pid", int64_t{4242}}};
  // One of every AttributeValue kind; composite values in the canonical (compact) JSON form.
  full.attributes = {{"s", std::string("h\xC3\xA9 \"quoted\"\n")},
                     {"b_true", true},
                     {"b_false", false},
                     {"i", int64_t{-9007199254740993}},
                     {"d", 0.1},
                     {"whole_double", 2.0},
                     {"arr", core::JsonText{"[1,\"x\",{\"k\":false}]"}},
                     {"map", core::JsonText{"{\"a\":[],\"b\":null}"}}};
  full.events = {{kBase + 6, "gen_ai.content.prompt", {{"gen_ai.prompt", std::string("hi")}}},
                 {kBase + 7, "exception", {}}};
  core::SpanLink link;
  link.trace_id = TraceIdOf(0x0c);
  link.span_id = SpanIdOf(0x0d);
  link.attributes = {{"link.kind", std::string("follows")}};
  full.links = {link, core::SpanLink{TraceIdOf(0x0e), SpanIdOf(0x0f), {}}};

  Span minimal;
  minimal.trace_id = full.trace_id;
  minimal.span_id = SpanIdOf(0x02);
  minimal.start_unix_nanos = kBase;

  Span same_span_id_other_trace = minimal;  // span ids are only unique within a trace
  same_span_id_other_trace.trace_id = TraceIdOf(0x77);
  same_span_id_other_trace.name = "other trace";

  CONTRACT_ASSERT_OK(
      store().WriteSpans(std::vector<Span>{full, minimal, same_span_id_other_trace}));
  auto trace = store().GetTrace(full.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->spans.size(), 2u);
  EXPECT_TRUE(trace->calls.empty());
  ExpectSameSpan(trace->spans[0], minimal);  // by start ascending
  ExpectSameSpan(trace->spans[1], full);
  auto other = store().GetTrace(same_span_id_other_trace.trace_id);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ASSERT_EQ(other->spans.size(), 1u);
  ExpectSameSpan(other->spans[0], same_span_id_other_trace);

  // Rewrites replace by (trace_id, span_id): a replay and a changed span.
  Span changed = full;
  changed.name = "renamed";
  changed.attributes = {{"only", int64_t{1}}};
  changed.events.clear();
  changed.status = core::SpanStatus::kOk;
  CONTRACT_ASSERT_OK(store().WriteSpans(std::vector<Span>{full, minimal}));
  CONTRACT_ASSERT_OK(store().WriteSpans(std::vector<Span>{changed}));
  trace = store().GetTrace(full.trace_id);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->spans.size(), 2u);
  ExpectSameSpan(trace->spans[1], changed);
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->spans, 3);
  EXPECT_EQ(stats->calls, 0);

  auto page = store().ListTraces(TraceQuery{});
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->traces.size(), 2u);
  // Both start at kBase: the larger trace id (0x77...) lists first.
  EXPECT_EQ(page->traces[0].trace_id, same_span_id_other_trace.trace_id);
  EXPECT_EQ(page->traces[1].trace_id, full.trace_id);
  EXPECT_FALSE(page->traces[1].has_error);  // the rewrite cleared the error status
  EXPECT_EQ(page->traces[1].span_count, 2);
  EXPECT_EQ(page->traces[1].root_name, "");  // minimal (kBase) is the earliest span
}

TEST_P(StoreContract, ListTracesSummarisesSpansAndCallsInTheRange) {
  const int64_t t = kBase + kHour;
  auto span = [](core::TraceId trace, core::SpanId id, std::string name, std::string service,
                 int64_t start, int64_t end, core::SpanStatus status) {
    Span s;
    s.trace_id = trace;
    s.span_id = id;
    s.name = std::move(name);
    s.service = std::move(service);
    s.start_unix_nanos = start;
    s.end_unix_nanos = end;
    s.status = status;
    return s;
  };
  auto call = [](std::string id, core::TraceId trace, int64_t start, int64_t end_nanos) {
    LlmCall c;
    c.request_id = std::move(id);
    c.trace_id = trace;
    c.span_id = SpanIdOf(0x99);
    c.start_unix_nanos = start;
    c.end_nanos = end_nanos;
    c.request_body = "content never shows in a trace";
    return c;
  };
  const auto a = TraceIdOf(0xa0), b = TraceIdOf(0xb0), c = TraceIdOf(0xc0), d = TraceIdOf(0xd0),
             e = TraceIdOf(0xe0), f = TraceIdOf(0xf0), g = TraceIdOf(0x10), h = TraceIdOf(0x20);
  using core::SpanStatus;
  std::vector<Span> spans = {
      // A: spans only; the second span has an error and another service.
      span(a, SpanIdOf(1), "root-a", "api", t, t + 5 * kSecond, SpanStatus::kOk),
      span(a, SpanIdOf(2), "child-a", "worker", t + kSecond, t + 9 * kSecond, SpanStatus::kError),
      // C: one span plus a call (below).
      span(c, SpanIdOf(3), "root-c", "db", t + 3 * kSecond, t + 4 * kSecond, SpanStatus::kUnset),
      // D: its span is before the range; only its call is in it.
      span(d, SpanIdOf(4), "root-d", "api", t - kHour, t - kHour + kSecond, SpanStatus::kUnset),
      // E and F start together: F (larger id) lists first.
      span(e, SpanIdOf(5), "e", "api", t + 6 * kSecond, t + 7 * kSecond, SpanStatus::kUnset),
      span(f, SpanIdOf(6), "f", "api", t + 6 * kSecond, t + 6 * kSecond, SpanStatus::kUnset),
      // G: two spans start together: the smaller span id is the root.
      span(g, SpanIdOf(0x08), "g-second", "worker", t + 7 * kSecond, t + 8 * kSecond,
           SpanStatus::kUnset),
      span(g, SpanIdOf(0x07), "g-first", "api", t + 7 * kSecond, t + 8 * kSecond,
           SpanStatus::kUnset),
      // H: after the range.
      span(h, SpanIdOf(9), "late", "api", t + 2 * kHour, t + 2 * kHour, SpanStatus::kUnset),
  };
  std::vector<LlmCall> calls = {
      call("b1", b, t + 2 * kSecond, 3 * kSecond),
      call("b2", b, t + 4 * kSecond, -1),  // unfinished: ends at its start
      call("c2", c, t + 3 * kSecond + kMilli, 10 * kSecond),
      call("d2", d, t + 5 * kSecond, kSecond),
      call("no-trace", core::TraceId{}, t + 8 * kSecond, kSecond),  // belongs to no trace
  };
  calls[0].cost_usd = 0.5;
  calls[1].error = core::ErrorClass::kRateLimit;
  calls[1].unpriced = true;
  calls[2].cost_usd = 0.25;
  CONTRACT_ASSERT_OK(store().WriteSpans(spans));
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));

  auto summary = [](core::TraceId id, int64_t start, int64_t end, std::string root,
                    std::string service, int64_t span_count, int64_t call_count, bool error,
                    double cost) {
    return TraceSummary{id,         start, end, std::move(root), std::move(service), span_count,
                        call_count, error, cost};
  };
  const TraceSummary sa = summary(a, t, t + 9 * kSecond, "root-a", "api", 2, 0, true, 0);
  const TraceSummary sb = summary(b, t + 2 * kSecond, t + 5 * kSecond, "", "", 0, 2, true, 0.5);
  const TraceSummary sc =
      summary(c, t + 3 * kSecond, t + 13 * kSecond + kMilli, "root-c", "db", 1, 1, false, 0.25);
  const TraceSummary sd = summary(d, t + 5 * kSecond, t + 6 * kSecond, "", "", 0, 1, false, 0);
  const TraceSummary se = summary(e, t + 6 * kSecond, t + 7 * kSecond, "e", "api", 1, 0, false, 0);
  const TraceSummary sf = summary(f, t + 6 * kSecond, t + 6 * kSecond, "f", "api", 1, 0, false, 0);
  const TraceSummary sg =
      summary(g, t + 7 * kSecond, t + 8 * kSecond, "g-first", "api", 2, 0, false, 0);

  TraceQuery q;
  q.from_unix_nanos = t;
  q.to_unix_nanos = t + kHour;
  for (size_t limit : {size_t{1}, size_t{2}, size_t{50}}) {
    SCOPED_TRACE("limit " + std::to_string(limit));
    q.limit = limit;
    auto got = ListAllTraces(store(), q);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, (std::vector<TraceSummary>{sg, sf, se, sd, sc, sb, sa}));
  }
  q.limit = 50;
  q.service = "worker";  // a span of the trace, not only its root
  auto got = ListAllTraces(store(), q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (std::vector<TraceSummary>{sg, sa}));
  q.service.reset();
  q.errors_only = true;
  got = ListAllTraces(store(), q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (std::vector<TraceSummary>{sb, sa}));
  q.service = "db";
  got = ListAllTraces(store(), q);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());

  // Unbounded: D now includes its early span (and is the earliest), H appears.
  TraceQuery all;
  all.limit = 3;
  got = ListAllTraces(store(), all);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 8u);
  EXPECT_EQ(got->front().trace_id, h);
  EXPECT_EQ(got->back(), summary(d, t - kHour, t + 6 * kSecond, "root-d", "api", 1, 1, false, 0));
}

TEST_P(StoreContract, ListTracesMatchesTheDefinitionOnGeneratedData) {
  Rng rng(99);
  std::vector<core::TraceId> spans_only, calls_only, mixed;
  for (int i = 0; i < 15; ++i) {
    spans_only.push_back(rng.Id<16>());
    calls_only.push_back(rng.Id<16>());
    mixed.push_back(rng.Id<16>());
  }
  std::vector<core::TraceId> call_traces = calls_only;
  call_traces.insert(call_traces.end(), mixed.begin(), mixed.end());
  std::vector<LlmCall> calls = MakeCalls(5, 300, kBase, kDataDays * kDay, call_traces);
  std::vector<core::TraceId> span_traces = spans_only;
  span_traces.insert(span_traces.end(), mixed.begin(), mixed.end());
  std::vector<Span> spans;
  for (int i = 0; i < 300; ++i) {
    int64_t start = kBase + rng.Below(kDataDays * kDay);
    if (i > 0 && rng.Percent(10)) start = spans[static_cast<size_t>(rng.Below(i))].start_unix_nanos;
    spans.push_back(MakeSpan(rng, rng.Pick(span_traces), start));
  }
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 100));
  CONTRACT_ASSERT_OK(store().WriteSpans(spans));

  std::vector<TraceQuery> queries(6);
  queries[1].from_unix_nanos = kBase + kDay;
  queries[1].to_unix_nanos = kBase + 2 * kDay;
  queries[2].service = "worker";
  queries[3].errors_only = true;
  queries[4] = queries[1];
  queries[4].service = "db";
  queries[4].errors_only = true;
  queries[5].from_unix_nanos = kBase + kDay + 7 * kHour;
  for (size_t i = 0; i < queries.size(); ++i) {
    for (size_t limit : {size_t{4}, kMaxPageSize}) {
      SCOPED_TRACE("query " + std::to_string(i) + " limit " + std::to_string(limit));
      TraceQuery q = queries[i];
      q.limit = limit;
      auto got = ListAllTraces(store(), q);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      auto want = ExpectedTraces(calls, spans, q);
      ASSERT_FALSE(want.empty());
      EXPECT_EQ(*got, want);
    }
  }
}

TEST_P(StoreContract, GetTraceOrdersSpansAndCallsAndOmitsContent) {
  const auto trace = TraceIdOf(0x42);
  std::vector<Span> spans;
  for (int i = 0; i < 5; ++i) {
    Span s;
    s.trace_id = trace;
    s.span_id = SpanIdOf(static_cast<uint8_t>(10 - i));
    s.name = "s" + std::to_string(i);
    s.start_unix_nanos = kBase + (i % 3) * kSecond;  // ties broken by span id
    spans.push_back(s);
  }
  std::vector<LlmCall> calls;
  for (int i = 0; i < 5; ++i) {
    LlmCall c;
    c.request_id = "call-" + std::to_string(9 - i);
    c.trace_id = trace;
    c.start_unix_nanos = kBase + (i % 2) * kSecond;  // ties broken by request id
    c.request_body = "secret";
    c.response_text = "secret";
    calls.push_back(c);
  }
  LlmCall elsewhere;
  elsewhere.request_id = "elsewhere";
  elsewhere.trace_id = TraceIdOf(0x43);
  calls.push_back(elsewhere);
  LlmCall untraced;
  untraced.request_id = "untraced";
  calls.push_back(untraced);
  CONTRACT_ASSERT_OK(store().WriteSpans(spans));
  CONTRACT_ASSERT_OK(store().WriteCalls(calls));

  auto got = store().GetTrace(trace);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  std::vector<std::string> span_names;
  for (const auto& s : got->spans) span_names.push_back(s.name);
  // starts: s0 0s (id 10), s1 1s (id 9), s2 2s (id 8), s3 0s (id 7), s4 1s (id 6)
  EXPECT_EQ(span_names, (std::vector<std::string>{"s3", "s0", "s4", "s1", "s2"}));
  std::vector<std::string> ids;
  for (const auto& c : got->calls) {
    ids.push_back(c.request_id);
    EXPECT_TRUE(c.request_body.empty() && c.response_text.empty()) << c.request_id;
  }
  // starts: call-9 0s, call-8 1s, call-7 0s, call-6 1s, call-5 0s
  EXPECT_EQ(ids, (std::vector<std::string>{"call-5", "call-7", "call-9", "call-6", "call-8"}));

  auto only_call = store().GetTrace(TraceIdOf(0x43));
  ASSERT_TRUE(only_call.ok()) << only_call.status().ToString();
  EXPECT_TRUE(only_call->spans.empty());
  ASSERT_EQ(only_call->calls.size(), 1u);
  EXPECT_EQ(store().GetTrace(TraceIdOf(0x44)).status().code(), core::StatusCode::kNotFound);
  // The zero id names no trace, even though untraced calls carry it.
  EXPECT_EQ(store().GetTrace(core::TraceId{}).status().code(), core::StatusCode::kNotFound);
}

// ----- Retention and stats ---------------------------------------------------------------

TEST_P(StoreContract, RetentionRemovesExactlyTheDueRowsPerTable) {
  constexpr int kDays = 10;
  const int64_t now = kBase + kDays * kDay + 3 * kHour;
  RetentionOptions options;
  options.calls_days = 5;
  options.content_days = 3;
  options.spans_days = 7;
  const int64_t calls_cut = RetentionCutoffNanos(now, options.calls_days);
  const int64_t content_cut = RetentionCutoffNanos(now, options.content_days);
  const int64_t spans_cut = RetentionCutoffNanos(now, options.spans_days);

  std::vector<LlmCall> calls = MakeCalls(11, 500, kBase, kDays * kDay, {});
  // Exactly on and just before each cutoff.
  for (int64_t cut : {calls_cut, content_cut}) {
    for (int64_t at : {cut - 1, cut}) {
      LlmCall c = calls[0];
      c.request_id = "edge-" + std::to_string(at);
      c.start_unix_nanos = at;
      c.request_body = "edge";
      calls.push_back(c);
    }
  }
  Rng rng(12);
  std::vector<Span> spans;
  for (int i = 0; i < 200; ++i) {
    spans.push_back(MakeSpan(rng, rng.Id<16>(), kBase + rng.Below(kDays * kDay)));
  }
  for (int64_t at : {spans_cut - 1, spans_cut}) spans.push_back(MakeSpan(rng, rng.Id<16>(), at));
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 250));
  CONTRACT_ASSERT_OK(store().WriteSpans(spans));

  auto due = [](int64_t start, int64_t cut) { return start < cut; };
  const int64_t calls_due =
      CountIf(calls, [&](const LlmCall& c) { return due(c.start_unix_nanos, calls_cut); });
  const int64_t content_due = CountIf(calls, [&](const LlmCall& c) {
    return HasContent(c) && due(c.start_unix_nanos, content_cut);
  });
  const int64_t spans_due =
      static_cast<int64_t>(std::count_if(spans.begin(), spans.end(), [&](const Span& s) {
        return due(s.start_unix_nanos, spans_cut);
      }));
  ASSERT_GT(calls_due, 0);
  ASSERT_GT(content_due, 0);
  ASSERT_GT(spans_due, 0);

  auto report = store().ApplyRetention(now, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->calls_removed, calls_due);
  EXPECT_EQ(report->content_removed, content_due);
  EXPECT_EQ(report->spans_removed, spans_due);

  std::vector<LlmCall> kept;
  for (const auto& c : calls) {
    if (!due(c.start_unix_nanos, calls_cut)) kept.push_back(c);
  }
  auto all = ListAll(store(), EveryCall());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), ExpectedIds(kept, {}, CallSort::kStartTime, true));
  for (const auto& c : kept) {
    auto got = store().GetCall(c.request_id);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    bool content_kept = !due(c.start_unix_nanos, content_cut);
    EXPECT_EQ(got->request_body, content_kept ? c.request_body : "") << c.request_id;
    EXPECT_EQ(got->response_text, content_kept ? c.response_text : "") << c.request_id;
  }
  for (const auto& s : spans) {
    auto got = store().GetTrace(s.trace_id);
    if (due(s.start_unix_nanos, spans_cut)) {
      EXPECT_EQ(got.status().code(), core::StatusCode::kNotFound);
    } else {
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      ASSERT_EQ(got->spans.size(), 1u);
    }
  }
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, static_cast<int64_t>(calls.size()) - calls_due);
  EXPECT_EQ(stats->content, CountIf(calls, HasContent) - content_due);
  EXPECT_EQ(stats->spans, static_cast<int64_t>(spans.size()) - spans_due);

  // Nothing more is due at the same instant.
  report = store().ApplyRetention(now, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->calls_removed, 0);
  EXPECT_EQ(report->content_removed, 0);
  EXPECT_EQ(report->spans_removed, 0);

  // 0 days keeps a table forever, however late it is.
  RetentionOptions forever{0, 0, 0};
  report = store().ApplyRetention(now + 1000 * kDay, forever);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->calls_removed, 0);
  EXPECT_EQ(report->content_removed, 0);
  EXPECT_EQ(report->spans_removed, 0);
  // One table at a time: only spans go.
  RetentionOptions spans_only{0, 0, 1};
  report = store().ApplyRetention(now + 1000 * kDay, spans_only);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->calls_removed, 0);
  EXPECT_EQ(report->content_removed, 0);
  EXPECT_EQ(report->spans_removed, static_cast<int64_t>(spans.size()) - spans_due);
  stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, static_cast<int64_t>(calls.size()) - calls_due);
  EXPECT_EQ(stats->spans, 0);
}

// ----- Timeouts and concurrency ---------------------------------------------------------

// A query that runs past its timeout ends with DEADLINE_EXCEEDED; how often a backend checks
// the clock is its own business, so a tiny timeout may still let a quick query finish. The
// deterministic promise is therefore: a 1 ns timeout yields either DEADLINE_EXCEEDED or the
// exact answer, never another error and never a partial answer. (Backends test the
// DEADLINE_EXCEEDED path itself deterministically in their own suites.)
TEST_P(StoreContract, TinyTimeoutsGiveDeadlineExceededOrTheExactAnswer) {
  std::vector<LlmCall> calls = MakeCalls(21, 2000, kBase, kDataDays * kDay, {TraceIdOf(5)});
  CONTRACT_ASSERT_OK(WriteInBatches(store(), calls, 1000));
  const core::Nanos tiny(1);
  int deadline_exceeded = 0;
  auto check = [&](const core::Status& s, bool equal, const char* what) {
    if (s.code() == core::StatusCode::kDeadlineExceeded) {
      deadline_exceeded++;
      EXPECT_FALSE(s.message().empty()) << what;
    } else {
      EXPECT_TRUE(s.ok()) << what << ": " << s.ToString();
      EXPECT_TRUE(equal) << what << ": a partial answer";
    }
  };
  CallQuery list;
  list.sort = CallSort::kCost;
  list.filter.request_id_contains = "xyz";
  list.limit = 100;
  CallQuery hurried = list;
  hurried.timeout = tiny;
  auto slow_list = store().ListCalls(list);
  ASSERT_TRUE(slow_list.ok()) << slow_list.status().ToString();
  auto fast_list = store().ListCalls(hurried);
  check(fast_list.status(), fast_list.ok() && Ids(fast_list->calls) == Ids(slow_list->calls),
        "list");

  AggregateQuery agg;
  agg.filter = DataRange();
  agg.bucket = TimeBucket::kHour;
  agg.group_by = GroupBy::kTag;
  agg.group_tag_key = "team";
  agg.timeout = tiny;
  auto fast_agg = store().Aggregate(agg);
  check(fast_agg.status(), fast_agg.ok() && fast_agg->rows == ExpectedAggregate(calls, agg),
        "aggregate");

  TopQuery top;
  top.dimension = GroupBy::kUser;
  top.timeout = tiny;
  auto fast_top = store().Top(top);
  check(fast_top.status(), fast_top.ok() && fast_top->rows == ExpectedTop(calls, top), "top");

  TraceQuery traces;
  traces.timeout = tiny;
  auto fast_traces = store().ListTraces(traces);
  check(fast_traces.status(),
        fast_traces.ok() && fast_traces->traces == ExpectedTraces(calls, {}, traces), "traces");
  RecordProperty("deadline_exceeded", deadline_exceeded);
}

TEST_P(StoreContract, ConcurrentWritersAndReadersSeeNoErrors) {
  constexpr int kWriters = 2;
  constexpr int kBatches = 10;
  constexpr int kBatchSize = 20;
  constexpr int kReaders = 2;
  constexpr int kReads = 10;
  std::vector<std::vector<LlmCall>> per_writer(kWriters);
  for (int w = 0; w < kWriters; ++w) {
    per_writer[static_cast<size_t>(w)] =
        MakeCalls(100 + static_cast<uint64_t>(w), kBatches * kBatchSize, kBase, kDay, {});
    for (auto& c : per_writer[static_cast<size_t>(w)]) c.request_id += "-w" + std::to_string(w);
  }
  std::vector<core::Status> errors(kWriters + kReaders);
  {
    std::vector<std::jthread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        const auto& mine = per_writer[static_cast<size_t>(w)];
        for (int b = 0; b < kBatches; ++b) {
          auto s = store().WriteCalls(std::span<const LlmCall>(
              mine.data() + static_cast<size_t>(b * kBatchSize), kBatchSize));
          if (!s.ok()) {
            errors[static_cast<size_t>(w)] = s;
            return;
          }
        }
      });
    }
    for (int r = 0; r < kReaders; ++r) {
      threads.emplace_back([&, r] {
        core::Status& err = errors[static_cast<size_t>(kWriters + r)];
        int64_t last_count = 0;
        for (int i = 0; i < kReads; ++i) {
          if (auto p = store().ListCalls(CallQuery{}); !p.ok()) {
            err = p.status();
            return;
          }
          auto a = store().Aggregate(AggregateQuery{});
          if (!a.ok()) {
            err = a.status();
            return;
          }
          int64_t count = a->rows.empty() ? 0 : a->rows[0].requests;
          if (count < last_count) {
            err = core::Internal("the call count went down from " + std::to_string(last_count) +
                                 " to " + std::to_string(count));
            return;
          }
          last_count = count;
          if (auto t = store().Top(TopQuery{}); !t.ok()) {
            err = t.status();
            return;
          }
          if (auto s = store().Stats(); !s.ok()) {
            err = s.status();
            return;
          }
        }
      });
    }
  }
  for (const auto& s : errors) EXPECT_TRUE(s.ok()) << s.ToString();
  auto stats = store().Stats();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->calls, kWriters * kBatches * kBatchSize);
}

}  // namespace llmscope::storage
