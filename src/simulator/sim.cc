#include "simulator/sim.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <utility>

#include "simulator/sim_internal.h"

namespace llmscope::simulator {
namespace json = boost::json;
using internal::Finish;
using internal::Plan;
using internal::RequestInfo;
using internal::Rng;

namespace {

constexpr std::array<std::pair<ErrorKind, std::string_view>, 7> kErrorNames = {{
    {ErrorKind::kRateLimit, "rate_limit"},
    {ErrorKind::kServerError, "server_error"},
    {ErrorKind::kOverloaded, "overloaded"},
    {ErrorKind::kTimeout, "timeout"},
    {ErrorKind::kTruncated, "truncated"},
    {ErrorKind::kContentFilter, "content_filter"},
    {ErrorKind::kBadRequest, "bad_request"},
}};

// The mix used when SimOptions::error_mix is empty (relative weights).
constexpr std::array<std::pair<ErrorKind, double>, 6> kDefaultMix = {{
    {ErrorKind::kRateLimit, 4.0},
    {ErrorKind::kServerError, 2.0},
    {ErrorKind::kOverloaded, 2.0},
    {ErrorKind::kTruncated, 1.0},
    {ErrorKind::kTimeout, 0.5},
    {ErrorKind::kContentFilter, 0.5},
}};

constexpr core::Nanos kMaxDelay = std::chrono::hours(1);
constexpr int64_t kMaxOutputTokens = 1'000'000;
constexpr double kMinTps = 0.01;
constexpr double kMaxTps = 1e9;

// Random streams: one per purpose, so draws of one never shift another.
enum Stream : uint64_t { kErrorStream = 1, kCountStream = 2, kIdStream = 3, kWordStream = 4 };

constexpr std::array<std::string_view, 32> kVocabulary = {
    "lorem",   "ipsum",   "dolor",   "sit",     "amet",  "consectetur", "adipiscing", "elit",
    "sed",     "do",      "eiusmod", "tempor",  "ut",    "labore",      "et",         "dolore",
    "magna",   "aliqua",  "enim",    "ad",      "minim", "veniam",      "quis",       "nostrud",
    "ullamco", "laboris", "nisi",    "aliquip", "ex",    "ea",          "commodo",    "duis",
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<double> ParseDouble(std::string_view s) {
  s = Trim(s);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  s = Trim(s);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

core::Status BadHeader(std::string_view name, std::string_view value, std::string_view want) {
  return core::InvalidArgument("header " + std::string(name) + ": invalid value \"" +
                               std::string(value) + "\", expected " + std::string(want));
}

bool IsOpenAiReasoningModel(std::string_view model) {
  for (std::string_view p : {"o1", "o3", "o4", "gpt-5"}) {
    if (model.substr(0, p.size()) == p) return true;
  }
  return false;
}

// "-YYYY-MM-DD" at the end of a model name.
bool HasDateSuffix(std::string_view m) {
  if (m.size() < 11) return false;
  std::string_view tail = m.substr(m.size() - 11);
  for (size_t i = 0; i < tail.size(); ++i) {
    bool dash = i == 0 || i == 5 || i == 8;
    if (dash ? tail[i] != '-' : !std::isdigit(static_cast<unsigned char>(tail[i]))) return false;
  }
  return true;
}

std::string ResponseModel(core::Endpoint endpoint, std::string_view requested) {
  std::string model(requested.substr(0, 4) == "sim/" ? requested.substr(4) : requested);
  bool dated = endpoint != core::Endpoint::kMessages && endpoint != core::Endpoint::kEmbeddings;
  if (dated && !HasDateSuffix(model)) model += "-2024-08-06";
  return model;
}

// Splits `s` into slices of about 4 bytes (one output token each), never inside a UTF-8
// sequence.
std::vector<std::string> Slices(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + 4);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) ++end;
    out.emplace_back(s.substr(i, end - i));
    i = end;
  }
  return out;
}

std::string Words(Rng& rng, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    if (i > 0) out.push_back(' ');
    out.append(kVocabulary[rng.Next() % kVocabulary.size()]);
  }
  return out;
}

// Tool arguments from the tool's JSON schema: every property of `properties`, by type.
std::string ToolArguments(const json::value& schema, Rng& rng) {
  json::object args;
  const auto* so = schema.if_object();
  const json::value* props = so ? so->if_contains("properties") : nullptr;
  if (props != nullptr && props->is_object()) {
    for (const auto& [key, prop] : props->get_object()) {
      const auto* po = prop.if_object();
      std::string type;
      if (po != nullptr) {
        if (const json::value* e = po->if_contains("enum");
            e && e->is_array() && !e->get_array().empty()) {
          args[key] = e->get_array().front();
          continue;
        }
        if (const json::value* t = po->if_contains("type")) {
          if (t->is_string()) type = std::string(t->get_string().c_str());
          if (t->is_array() && !t->get_array().empty() && t->get_array()[0].is_string()) {
            type = std::string(t->get_array()[0].get_string().c_str());
          }
        }
      }
      if (type == "integer" || type == "number") {
        args[key] = rng.Range(1, 100);
      } else if (type == "boolean") {
        args[key] = true;
      } else if (type == "array") {
        args[key] = json::array();
      } else if (type == "object") {
        args[key] = json::object();
      } else {
        args[key] = Words(rng, 2);
      }
    }
  }
  return json::serialize(args);
}

std::optional<ErrorKind> DrawError(const SimOptions& opts, uint64_t request_seq) {
  Rng rng(opts.seed, request_seq, kErrorStream);
  // Both draws always happen, so the sequence never depends on the outcome.
  const double fail = rng.Uniform01();
  const double pick = rng.Uniform01();
  if (opts.forced_error) return opts.forced_error;
  if (fail >= opts.error_rate) return std::nullopt;
  std::vector<std::pair<ErrorKind, double>> mix(opts.error_mix.begin(), opts.error_mix.end());
  if (mix.empty()) mix.assign(kDefaultMix.begin(), kDefaultMix.end());
  double total = 0;
  for (const auto& [kind, w] : mix) total += w;
  double x = pick * total;
  for (const auto& [kind, w] : mix) {
    if (x < w) return kind;
    x -= w;
  }
  for (auto it = mix.rbegin(); it != mix.rend(); ++it) {  // rounding: the last weighted kind
    if (it->second > 0) return it->first;
  }
  return std::nullopt;
}

void AddHeaders(core::Endpoint endpoint, const std::string& request_id, SimResponse& r) {
  r.headers.emplace_back(endpoint == core::Endpoint::kMessages ? "request-id" : "x-request-id",
                         request_id);
  if (r.status == 429) r.headers.emplace_back("retry-after", "1");
}

core::Result<SimResponse> SimulateUnchecked(core::Endpoint endpoint, std::string_view body,
                                            const SimOptions& opts, uint64_t request_seq) {
  if (auto s = ValidateOptions(opts); !s.ok()) {
    return core::FailedPrecondition("invalid simulator options: " + s.message());
  }
  Rng ids(opts.seed, request_seq, kIdStream);
  const std::string request_id = "req_" + ids.Hex(24);
  if (endpoint == core::Endpoint::kModels) {
    SimResponse r = internal::RenderModels(opts);
    AddHeaders(endpoint, request_id, r);
    return r;
  }
  auto parsed = internal::ParseRequest(endpoint, body);
  if (!parsed.ok()) return parsed.status();
  RequestInfo& req = *parsed;

  const std::optional<ErrorKind> error = DrawError(opts, request_seq);
  if (error == ErrorKind::kRateLimit || error == ErrorKind::kServerError ||
      error == ErrorKind::kOverloaded || error == ErrorKind::kBadRequest) {
    std::string message = *error == ErrorKind::kBadRequest
                              ? "Invalid request (simulated by llmscope)."
                              : std::string();
    SimResponse r = internal::RenderError(endpoint, *error, message, opts, request_id);
    AddHeaders(endpoint, request_id, r);
    return r;
  }
  if (error == ErrorKind::kTimeout) {
    SimResponse r;
    r.status = 0;
    r.hang = true;
    return r;
  }
  const bool truncated = error == ErrorKind::kTruncated;
  const bool filtered =
      error == ErrorKind::kContentFilter && endpoint != core::Endpoint::kEmbeddings;

  Plan plan;
  plan.endpoint = endpoint;
  plan.opts = opts;
  plan.request_seq = request_seq;
  plan.request_id = request_id;
  plan.model = ResponseModel(endpoint, req.model);
  plan.prompt_tokens = req.prompt_tokens;
  const bool anthropic = endpoint == core::Endpoint::kMessages;
  if (opts.cached_tokens) {
    plan.cache_read = std::min(*opts.cached_tokens, req.prompt_tokens);
  } else if (anthropic && req.has_cache_control) {
    (req.first_turn ? plan.cache_write : plan.cache_read) = req.cache_prefix_tokens;
  }
  plan.req = std::move(req);

  SimResponse r;
  if (endpoint == core::Endpoint::kEmbeddings) {
    r = internal::RenderEmbeddings(plan);
    r.usage.input = plan.prompt_tokens;
    r.usage_on_wire = opts.report_usage;
  } else {
    const bool reasoning = !anthropic && endpoint != core::Endpoint::kCompletions &&
                           IsOpenAiReasoningModel(plan.model);
    Rng counts(opts.seed, request_seq, kCountStream);
    int64_t n = counts.Range(opts.min_output_tokens, opts.max_output_tokens);
    plan.finish = Finish::kStop;
    if (plan.req.max_tokens) {
      // Reasoning tokens count against the budget too: visible + visible / 2 <= budget.
      int64_t cap = reasoning ? (2 * *plan.req.max_tokens + 1) / 3 : *plan.req.max_tokens;
      if (n > cap) {
        n = cap;
        plan.finish = Finish::kLength;
      }
    }
    Rng words(opts.seed, request_seq, kWordStream);
    plan.id = ids.Alnum(24);
    plan.item_id = ids.Hex(32);
    plan.call_id = ids.Alnum(24);
    if (plan.req.tool && !filtered) {
      plan.tool_call = true;
      plan.tool_name = plan.req.tool->name;
      plan.tool_args = ToolArguments(plan.req.tool->schema, words);
      plan.pieces = Slices(plan.tool_args);
      plan.finish = Finish::kToolCalls;
    } else {
      for (int64_t i = 0; i < n; ++i) {
        std::string_view w = kVocabulary[words.Next() % kVocabulary.size()];
        std::string piece = i == 0 ? std::string(w) : " " + std::string(w);
        if (i == 0) piece[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(w[0])));
        if (i == n - 1) piece.push_back('.');
        plan.pieces.push_back(std::move(piece));
      }
    }
    plan.emitted = plan.pieces.size();
    if (filtered) {
      plan.emitted = std::min<size_t>(plan.pieces.size(), 3);
      plan.pieces.resize(plan.emitted);
      plan.finish = Finish::kContentFilter;
    }
    if (truncated) {
      plan.truncated = true;
      plan.emitted = plan.pieces.size() / 2;
    }
    plan.visible_tokens = static_cast<int64_t>(plan.emitted);
    plan.reasoning_tokens = reasoning ? plan.visible_tokens / 2 : 0;

    switch (endpoint) {
      case core::Endpoint::kChatCompletions:
        r = internal::RenderChat(plan);
        break;
      case core::Endpoint::kCompletions:
        r = internal::RenderCompletions(plan);
        break;
      case core::Endpoint::kResponses:
        r = internal::RenderResponses(plan);
        break;
      default:
        r = internal::RenderMessages(plan);
        break;
    }
    r.output_text = plan.EmittedText();
    r.usage.input = plan.prompt_tokens;
    r.usage.output = plan.visible_tokens + plan.reasoning_tokens;
    r.usage.reasoning = plan.reasoning_tokens;
    r.usage_on_wire = opts.report_usage && !truncated;
  }
  r.usage.cache_read = plan.cache_read;
  r.usage.cache_write = plan.cache_write;
  if (truncated) {
    r.close_without_terminator = true;
    r.finish_reason.clear();
    if (!plan.req.stream || endpoint == core::Endpoint::kEmbeddings) {
      // Half of the JSON body: nothing the client can use.
      std::string& bytes = r.frames.front().bytes;
      bytes.resize(bytes.size() / 2);
      r.usage = core::TokenUsage{};
      r.output_text.clear();
    }
  }
  AddHeaders(endpoint, request_id, r);
  return r;
}

}  // namespace

namespace internal {

uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ULL;
  }
  return h;
}

Rng::Rng(uint64_t seed, uint64_t request_seq, uint64_t stream)
    : state_(Mix64(Mix64(Mix64(seed + 0x9E3779B97F4A7C15ULL) ^ request_seq) ^
                   (stream * 0xD1B54A32D192ED03ULL))) {}

uint64_t Rng::Next() {
  state_ += 0x9E3779B97F4A7C15ULL;
  return Mix64(state_);
}

double Rng::Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

int64_t Rng::Range(int64_t lo, int64_t hi) {
  const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;  // small spans: bias negligible
  return lo + static_cast<int64_t>(span == 0 ? Next() : Next() % span);
}

std::string Rng::Alnum(int length) {
  static constexpr std::string_view kChars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  for (int i = 0; i < length; ++i) out.push_back(kChars[Next() % kChars.size()]);
  return out;
}

std::string Rng::Hex(int length) {
  static constexpr std::string_view kChars = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < length; ++i) out.push_back(kChars[Next() % kChars.size()]);
  return out;
}

core::Nanos Plan::StreamStart() const { return std::max(opts.latency, opts.ttft); }

core::Nanos Plan::PieceAt(size_t i) const {
  return StreamStart() +
         core::Nanos(std::llround(static_cast<double>(i) * 1e9 / opts.tokens_per_second));
}

core::Nanos Plan::StreamEnd() const { return emitted > 0 ? PieceAt(emitted - 1) : StreamStart(); }

core::Nanos Plan::NonStreamAt() const {
  return opts.latency + opts.ttft +
         core::Nanos(std::llround(static_cast<double>(emitted) * 1e9 / opts.tokens_per_second));
}

std::string Plan::EmittedText() const {
  std::string out;
  for (size_t i = 0; i < emitted && i < pieces.size(); ++i) out += pieces[i];
  return out;
}

}  // namespace internal

std::string_view ErrorKindName(ErrorKind kind) {
  for (const auto& [k, name] : kErrorNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

std::optional<ErrorKind> ParseErrorKind(std::string_view name) {
  for (const auto& [k, n] : kErrorNames) {
    if (n == name) return k;
  }
  return std::nullopt;
}

core::Status ValidateOptions(const SimOptions& o) {
  std::string problems;
  auto add = [&](const std::string& p) {
    if (!problems.empty()) problems += "\n";
    problems += p;
  };
  if (o.latency < core::Nanos(0) || o.latency > kMaxDelay) add("latency must be in [0, 1h]");
  if (o.ttft < core::Nanos(0) || o.ttft > kMaxDelay) add("ttft must be in [0, 1h]");
  if (!(o.tokens_per_second >= kMinTps && o.tokens_per_second <= kMaxTps)) {
    add("tokens_per_second must be in [0.01, 1e9]");
  }
  if (o.min_output_tokens < 0 || o.min_output_tokens > o.max_output_tokens ||
      o.max_output_tokens > kMaxOutputTokens) {
    add("output token range must satisfy 0 <= min_output_tokens <= max_output_tokens <= 1000000");
  }
  if (!(o.error_rate >= 0.0 && o.error_rate <= 1.0)) add("error_rate must be in [0, 1]");
  double total = 0;
  for (const auto& [kind, w] : o.error_mix) {
    if (!(w >= 0.0 && std::isfinite(w))) {
      add("error_mix weight of " + std::string(ErrorKindName(kind)) + " must be finite and >= 0");
    } else {
      total += w;
    }
  }
  if (!o.error_mix.empty() && !(total > 0.0)) add("error_mix weights must not all be 0");
  if (o.embedding_dims < 1 || o.embedding_dims > 65536) add("embedding_dims must be in 1..65536");
  if (o.cached_tokens && *o.cached_tokens < 0) add("cached_tokens must be >= 0");
  if (problems.empty()) return core::Status::Ok();
  return core::InvalidArgument(problems);
}

core::Result<SimOptions> ApplyOverrides(
    const SimOptions& base,
    const std::function<std::optional<std::string_view>(std::string_view)>& header_lookup) {
  SimOptions o = base;
  constexpr double kMaxMs = 3'600'000;
  auto millis = [&](std::string_view name, core::Nanos& field) -> core::Status {
    auto v = header_lookup(name);
    if (!v) return core::Status::Ok();
    auto ms = ParseDouble(*v);
    if (!ms || *ms < 0 || *ms > kMaxMs) {
      return BadHeader(name, *v, "milliseconds, a number in [0, 3600000]");
    }
    field = core::Nanos(std::llround(*ms * 1e6));
    return core::Status::Ok();
  };
  if (auto s = millis("x-sim-latency-ms", o.latency); !s.ok()) return s;
  if (auto s = millis("x-sim-ttft-ms", o.ttft); !s.ok()) return s;
  if (auto v = header_lookup("x-sim-tokens-per-second")) {
    auto tps = ParseDouble(*v);
    if (!tps || *tps < kMinTps || *tps > kMaxTps) {
      return BadHeader("x-sim-tokens-per-second", *v, "a number in [0.01, 1e9]");
    }
    o.tokens_per_second = *tps;
  }
  if (auto v = header_lookup("x-sim-output-tokens")) {
    auto n = ParseUint(*v);
    if (!n || *n > static_cast<uint64_t>(kMaxOutputTokens)) {
      return BadHeader("x-sim-output-tokens", *v, "an integer in [0, 1000000]");
    }
    o.min_output_tokens = o.max_output_tokens = static_cast<int64_t>(*n);
  }
  if (auto v = header_lookup("x-sim-error")) {
    std::string_view name = Trim(*v);
    if (name == "none") {
      o.forced_error.reset();
      o.error_rate = 0;
    } else if (auto kind = ParseErrorKind(name)) {
      o.forced_error = kind;
    } else {
      return BadHeader("x-sim-error", *v,
                       "none, rate_limit, server_error, overloaded, timeout, truncated, "
                       "content_filter or bad_request");
    }
  }
  if (auto v = header_lookup("x-sim-usage")) {
    std::string_view mode = Trim(*v);
    if (mode == "none") {
      o.report_usage = false;
    } else if (mode == "full") {
      o.report_usage = true;
    } else {
      return BadHeader("x-sim-usage", *v, "none or full");
    }
  }
  if (auto v = header_lookup("x-sim-seed")) {
    auto seed = ParseUint(*v);
    if (!seed) return BadHeader("x-sim-seed", *v, "an unsigned 64-bit integer");
    o.seed = *seed;
  }
  if (auto v = header_lookup("x-sim-cached-tokens")) {
    auto n = ParseUint(*v);
    if (!n || *n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return BadHeader("x-sim-cached-tokens", *v, "an integer >= 0");
    }
    o.cached_tokens = static_cast<int64_t>(*n);
  }
  return o;
}

core::Result<SimResponse> Simulate(core::Endpoint endpoint, std::string_view request_body,
                                   const SimOptions& opts, uint64_t request_seq) {
  try {
    return SimulateUnchecked(endpoint, request_body, opts, request_seq);
  } catch (const std::bad_alloc&) {
    return core::Internal("simulator: out of memory");
  } catch (const std::exception& e) {
    // Boost.JSON accessors throw only on misuse; report it rather than crash the server.
    return core::Internal(std::string("simulator: ") + e.what());
  }
}

SimResponse BadRequestResponse(core::Endpoint endpoint, std::string_view message,
                               const SimOptions& opts, uint64_t request_seq) {
  try {
    Rng ids(opts.seed, request_seq, kIdStream);
    const std::string request_id = "req_" + ids.Hex(24);
    SimResponse r =
        internal::RenderError(endpoint, ErrorKind::kBadRequest, message, opts, request_id);
    AddHeaders(endpoint, request_id, r);
    return r;
  } catch (const std::exception&) {
    SimResponse r;  // out of memory: a bare 400 without a body
    r.status = 400;
    return r;
  }
}

}  // namespace llmscope::simulator
