#include "otlp/genai.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>

#include "core/ascii.h"
#include "core/json_string.h"

namespace llmscope::otlp {
namespace {

namespace json = boost::json;

// ---- Attribute access ------------------------------------------------------------------

const core::AttributeValue* Find(const core::Attributes& attrs, std::string_view key) {
  for (const auto& a : attrs) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

bool Has(const core::Attributes& attrs, std::string_view key) {
  return Find(attrs, key) != nullptr;
}

std::optional<std::string_view> GetString(const core::Attributes& attrs, std::string_view key) {
  const auto* v = Find(attrs, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(v); s && !s->empty()) return *s;
  return std::nullopt;
}

// Numbers arrive as ints, doubles or (from some SDKs) decimal strings.
std::optional<double> GetDouble(const core::Attributes& attrs, std::string_view key) {
  const auto* v = Find(attrs, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<int64_t>(v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(v)) {
    if (std::isfinite(*d)) return *d;
    return std::nullopt;
  }
  if (const auto* s = std::get_if<std::string>(v)) {
    double d;
    auto r = std::from_chars(s->data(), s->data() + s->size(), d);
    if (r.ec == std::errc() && r.ptr == s->data() + s->size() && std::isfinite(d)) return d;
  }
  return std::nullopt;
}

std::optional<int64_t> GetInt(const core::Attributes& attrs, std::string_view key) {
  auto d = GetDouble(attrs, key);
  if (!d || *d < 0 || *d > 9e15 || *d != std::floor(*d)) return std::nullopt;
  return static_cast<int64_t>(*d);
}

std::optional<bool> GetBool(const core::Attributes& attrs, std::string_view key) {
  const auto* v = Find(attrs, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* b = std::get_if<bool>(v)) return *b;
  if (const auto* s = std::get_if<std::string>(v)) {
    if (*s == "true" || *s == "True") return true;
    if (*s == "false" || *s == "False") return false;
  }
  return std::nullopt;
}

template <typename Getter>
auto First(const core::Attributes& attrs, std::initializer_list<std::string_view> keys, Getter get)
    -> decltype(get(attrs, std::string_view())) {
  for (auto k : keys) {
    if (auto v = get(attrs, k)) return v;
  }
  return std::nullopt;
}

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// ---- Vocabulary ------------------------------------------------------------------------

// The conventions' well-known gen_ai.provider.name values, and the aliases instrumentations
// use for them (gen_ai.system values before v1.37, OpenInference llm.provider/llm.system,
// OpenLLMetry's capitalised names). Unknown names become "other": provider is a label.
std::string_view NormaliseProvider(std::string_view raw) {
  const std::string lower = core::AsciiLower(raw.substr(0, 64));
  static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"openai", "openai"},
      {"anthropic", "anthropic"},
      {"aws.bedrock", "aws.bedrock"},
      {"aws", "aws.bedrock"},
      {"bedrock", "aws.bedrock"},
      {"azure.ai.inference", "azure.ai.inference"},
      {"az.ai.inference", "azure.ai.inference"},
      {"azure.ai.openai", "azure.ai.openai"},
      {"az.ai.openai", "azure.ai.openai"},
      {"azure", "azure.ai.openai"},
      {"azure_openai", "azure.ai.openai"},
      {"cohere", "cohere"},
      {"deepseek", "deepseek"},
      {"gcp.gemini", "gcp.gemini"},
      {"gemini", "gcp.gemini"},
      {"gcp.gen_ai", "gcp.gen_ai"},
      {"google", "gcp.gen_ai"},
      {"gcp.vertex_ai", "gcp.vertex_ai"},
      {"vertex_ai", "gcp.vertex_ai"},
      {"vertexai", "gcp.vertex_ai"},
      {"groq", "groq"},
      {"ibm.watsonx.ai", "ibm.watsonx.ai"},
      {"watsonx", "ibm.watsonx.ai"},
      {"mistral_ai", "mistral_ai"},
      {"mistralai", "mistral_ai"},
      {"perplexity", "perplexity"},
      {"x_ai", "x_ai"},
      {"xai", "x_ai"},
      {"ollama", "ollama"},
      {"together", "together"},
      {"fireworks", "fireworks"},
      {"openrouter", "openrouter"},
      {"huggingface", "huggingface"},
      {"vllm", "vllm"},
  };
  for (const auto& [alias, name] : kNames) {
    if (lower == alias) return name;
  }
  return "other";
}

// gen_ai.operation.name (or the dialects' equivalents) to the endpoint; nullopt for
// operations that are not one LLM inference call (execute_tool, invoke_agent, ...).
std::optional<core::Endpoint> EndpointOf(std::string_view op) {
  if (op == "chat" || op == "generate_content") return core::Endpoint::kChatCompletions;
  if (op == "text_completion" || op == "completion") return core::Endpoint::kCompletions;
  if (op == "embeddings" || op == "embedding") return core::Endpoint::kEmbeddings;
  if (op == "responses") return core::Endpoint::kResponses;
  return std::nullopt;
}

// error.type values (exception class names, HTTP statuses, the conventions' "_OTHER") to
// our bounded classes.
core::ErrorClass ClassifyError(std::string_view type, int http_status) {
  const std::string t = core::AsciiLower(type.substr(0, 128));
  auto has = [&](std::string_view w) { return t.find(w) != std::string::npos; };
  if (http_status == 0 && t.size() == 3 && std::all_of(t.begin(), t.end(), ::isdigit)) {
    http_status = std::stoi(t);
  }
  if (has("timeout") || has("deadline") || http_status == 408 || http_status == 504) {
    return core::ErrorClass::kTimeout;
  }
  if (has("ratelimit") || has("rate_limit") || http_status == 429 || http_status == 529 ||
      has("overloaded")) {
    return core::ErrorClass::kRateLimit;
  }
  if (has("auth") || has("permission") || http_status == 401 || http_status == 403) {
    return core::ErrorClass::kAuth;
  }
  if (has("content_filter") || has("contentfilter")) return core::ErrorClass::kContentFilter;
  if (has("cancel")) return core::ErrorClass::kCancelled;
  if (has("connection") || has("connect")) return core::ErrorClass::kUpstreamUnreachable;
  if (has("badrequest") || has("bad_request") || has("notfound") || has("not_found") ||
      has("unprocessable") || has("invalid") || (http_status >= 400 && http_status < 500)) {
    return core::ErrorClass::kInvalidRequest;
  }
  return core::ErrorClass::kServerError;
}

// ---- Content ---------------------------------------------------------------------------

// Attributes that carry prompt or completion content, by exact key or by key prefix.
constexpr std::string_view kContentKeys[] = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
    "input.value",
    "output.value",
    "llm.prompts",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
};
constexpr std::string_view kContentPrefixes[] = {
    "gen_ai.prompt.",       "gen_ai.completion.", "llm.input_messages.",
    "llm.output_messages.", "llm.prompts.",       "llm.prompt_template.variables",
};
// Events that carry content (the event conventions before and since v1.37).
constexpr std::string_view kContentEvents[] = {
    "gen_ai.content.prompt",
    "gen_ai.content.completion",
    "gen_ai.system.message",
    "gen_ai.user.message",
    "gen_ai.assistant.message",
    "gen_ai.tool.message",
    "gen_ai.choice",
    "gen_ai.client.inference.operation.details",
};

bool IsContentKey(std::string_view key) {
  for (auto k : kContentKeys) {
    if (key == k) return true;
  }
  for (auto p : kContentPrefixes) {
    if (StartsWith(key, p)) return true;
  }
  return false;
}

bool IsContentEvent(std::string_view name) {
  return std::find(std::begin(kContentEvents), std::end(kContentEvents), name) !=
         std::end(kContentEvents);
}

void AppendValueJson(std::string& out, const core::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    core::AppendJsonString(out, *s);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out += *b ? "true" : "false";
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out += std::to_string(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    out += std::isfinite(*d) ? json::serialize(json::value(*d)) : "null";
  } else {
    out += std::get<core::JsonText>(v).text;
  }
}

}  // namespace

std::string AttributeText(const core::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  std::string out;
  AppendValueJson(out, v);
  return out;
}

namespace {

// Flattened message lists (gen_ai.prompt.0.role, gen_ai.prompt.0.content, ...;
// llm.input_messages.0.message.content, ...) as a JSON array of objects, one per index, in
// index order. "" when no attribute has the prefix.
std::string IndexedMessages(const core::Attributes& attrs, std::string_view prefix) {
  std::map<int, std::vector<const core::Attribute*>> by_index;
  for (const auto& a : attrs) {
    if (!StartsWith(a.key, prefix)) continue;
    std::string_view rest = std::string_view(a.key).substr(prefix.size());
    int index = 0;
    auto r = std::from_chars(rest.data(), rest.data() + rest.size(), index);
    if (r.ec != std::errc() || r.ptr == rest.data() + rest.size() || *r.ptr != '.') continue;
    if (index < 0 || index > 10'000) continue;
    by_index[index].push_back(&a);
  }
  if (by_index.empty()) return {};
  std::string out = "[";
  for (const auto& [index, fields] : by_index) {
    if (out.size() > 1) out += ',';
    out += '{';
    bool first = true;
    for (const auto* a : fields) {
      std::string_view rest = std::string_view(a->key).substr(prefix.size());
      rest = rest.substr(rest.find('.') + 1);
      if (!first) out += ',';
      first = false;
      core::AppendJsonString(out, rest);
      out += ':';
      AppendValueJson(out, a->value);
    }
    out += '}';
  }
  out += ']';
  return out;
}

// The first content attribute present among `keys`, on the span or on its content events.
std::string ContentOf(const core::Span& span, std::initializer_list<std::string_view> keys,
                      std::initializer_list<std::string_view> prefixes,
                      std::initializer_list<std::string_view> events) {
  for (auto k : keys) {
    if (const auto* v = Find(span.attributes, k)) return AttributeText(*v);
  }
  for (auto p : prefixes) {
    std::string s = IndexedMessages(span.attributes, p);
    if (!s.empty()) return s;
  }
  // Events: the attribute of the same meaning on the event, else the event's attributes.
  std::string out;
  for (const auto& e : span.events) {
    if (std::find(events.begin(), events.end(), e.name) == events.end()) continue;
    for (auto k : keys) {
      if (const auto* v = Find(e.attributes, k)) return AttributeText(*v);
    }
    if (!out.empty()) out += '\n';
    std::string obj = "{";
    for (const auto& a : e.attributes) {
      if (obj.size() > 1) obj += ',';
      core::AppendJsonString(obj, a.key);
      obj += ':';
      AppendValueJson(obj, a.value);
    }
    out += obj + "}";
  }
  return out;
}

// ---- Dialect detection -----------------------------------------------------------------

struct Markers {
  bool openinference = false;
  bool openllmetry = false;
  bool traceloop = false;     // traceloop.* attributes
  bool otel_current = false;  // gen_ai.provider.name
  bool otel_any = false;      // any gen_ai.* attribute
};

Markers Scan(const core::Span& span) {
  Markers m;
  for (const auto& a : span.attributes) {
    std::string_view k = a.key;
    if (k == "openinference.span.kind") {
      // Only its LLM and embedding spans are model calls; chain, retriever, tool, agent and
      // other spans of an OpenInference app are not GenAI spans.
      const auto* kind = std::get_if<std::string>(&a.value);
      if (kind != nullptr && (core::AsciiEqualsIgnoreCase(*kind, "LLM") ||
                              core::AsciiEqualsIgnoreCase(*kind, "EMBEDDING"))) {
        m.openinference = true;
      }
    } else if (StartsWith(k, "llm.token_count.") || k == "llm.model_name" ||
               k == "llm.invocation_parameters" || k == "llm.provider" || k == "llm.system") {
      m.openinference = true;
    } else if (k == "llm.request.type" || StartsWith(k, "llm.usage.") || k == "llm.is_streaming") {
      m.openllmetry = true;
    } else if (StartsWith(k, "traceloop.")) {
      // The Traceloop SDK's mark: its dialect when the span is a model call by any other
      // marker; alone (workflow, task, agent and tool spans) it marks no model call.
      m.traceloop = true;
    } else if (k == "gen_ai.provider.name") {
      m.otel_current = m.otel_any = true;
    } else if (StartsWith(k, "gen_ai.")) {
      m.otel_any = true;
    }
  }
  return m;
}

Dialect DialectOf(const Markers& m) {
  if (m.openinference) return Dialect::kOpenInference;
  if (m.openllmetry || (m.traceloop && m.otel_any)) return Dialect::kOpenLlmetry;
  if (m.otel_current) return Dialect::kOtelGenAi;
  if (m.otel_any) return Dialect::kOtelGenAiLegacy;
  return Dialect::kNone;
}

// The attributes the current conventions deprecate, with no exception: each is reported.
constexpr std::string_view kDeprecated[] = {
    "gen_ai.system",                              // -> gen_ai.provider.name (v1.37)
    "gen_ai.usage.prompt_tokens",                 // -> gen_ai.usage.input_tokens (v1.27)
    "gen_ai.usage.completion_tokens",             // -> gen_ai.usage.output_tokens (v1.27)
    "gen_ai.prompt",                              // -> gen_ai.input.messages (v1.37)
    "gen_ai.completion",                          // -> gen_ai.output.messages (v1.37)
    "gen_ai.openai.request.seed",                 // -> gen_ai.request.seed
    "gen_ai.openai.request.response_format",      // -> gen_ai.output.type
    "gen_ai.openai.request.service_tier",         // -> openai.request.service_tier
    "gen_ai.openai.response.service_tier",        // -> openai.response.service_tier
    "gen_ai.openai.response.system_fingerprint",  // -> openai.response.system_fingerprint
};

// ---- Reading the call ------------------------------------------------------------------

// The operation a span performs, in the conventions' vocabulary, or "" when it is not
// recognisably an LLM call.
std::string OperationOf(const core::Span& span, const Markers& m) {
  const auto& a = span.attributes;
  if (auto op = GetString(a, "gen_ai.operation.name")) return std::string(*op);
  if (m.openinference) {
    auto kind = GetString(a, "openinference.span.kind");
    if (kind && (*kind == "LLM" || *kind == "llm")) return "chat";
    if (kind && (*kind == "EMBEDDING" || *kind == "embedding")) return "embeddings";
    return {};
  }
  if (auto t = GetString(a, "llm.request.type")) {
    if (*t == "chat") return "chat";
    if (*t == "completion") return "text_completion";
    if (*t == "embedding") return "embeddings";
    return std::string(*t);  // rerank, unknown: not mapped
  }
  // Before v1.27 there was no operation name: a system plus a model means an inference.
  if (Has(a, "gen_ai.system") && Has(a, "gen_ai.request.model")) return "chat";
  return {};
}

// llm.invocation_parameters (OpenInference): the request's parameters as JSON text.
json::object InvocationParameters(const core::Attributes& a) {
  auto text = GetString(a, "llm.invocation_parameters");
  if (!text) return {};
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  if (ec || !v.is_object()) return {};
  return v.get_object();
}

std::optional<double> JsonNumber(const json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->value().is_double()) return it->value().get_double();
  if (it->value().is_int64()) return static_cast<double>(it->value().get_int64());
  if (it->value().is_uint64()) return static_cast<double>(it->value().get_uint64());
  return std::nullopt;
}

std::vector<std::string> FinishReasons(const core::Attributes& a) {
  std::vector<std::string> out;
  const auto* v = Find(a, "gen_ai.response.finish_reasons");
  if (v == nullptr) v = Find(a, "llm.response.finish_reason");
  if (v == nullptr) v = Find(a, "gen_ai.completion.0.finish_reason");
  if (v == nullptr) return out;
  if (const auto* s = std::get_if<std::string>(v)) {
    // A list some SDKs send as its JSON text; otherwise a single reason.
    boost::system::error_code ec;
    json::value parsed = json::parse(*s, ec);
    if (!ec && parsed.is_array()) {
      for (const auto& e : parsed.get_array()) {
        if (e.is_string()) out.emplace_back(e.get_string());
      }
    } else if (!s->empty()) {
      out.push_back(*s);
    }
  } else if (const auto* j = std::get_if<core::JsonText>(v)) {
    boost::system::error_code ec;
    json::value parsed = json::parse(j->text, ec);
    if (!ec && parsed.is_array()) {
      for (const auto& e : parsed.get_array()) {
        if (e.is_string()) out.emplace_back(e.get_string());
      }
    }
  }
  if (out.size() > 16) out.resize(16);
  return out;
}

int64_t SecondsToNanos(double s) { return static_cast<int64_t>(std::llround(s * 1e9)); }

}  // namespace

std::string_view DialectName(Dialect d) {
  switch (d) {
    case Dialect::kNone:
      return "none";
    case Dialect::kOtelGenAi:
      return "otel-genai";
    case Dialect::kOtelGenAiLegacy:
      return "otel-genai-legacy";
    case Dialect::kOpenInference:
      return "openinference";
    case Dialect::kOpenLlmetry:
      return "openllmetry";
  }
  return "unknown";
}

bool IsGatewaySpan(const core::Span& span, const GatewayCallLookup& seen_by_gateway) {
  if (GetBool(span.attributes, "llmscope.gateway").value_or(false)) return true;
  return seen_by_gateway && seen_by_gateway(span.trace_id, span.span_id);
}

bool IsMappedFromSpan(const core::LlmCall& call) {
  for (const auto& [k, v] : call.tags) {
    if (k == "source" && v == "otlp") return true;
  }
  return false;
}

std::optional<core::LlmCall> MapGenAiSpan(const core::Span& span, const MapOptions& options) {
  if (IsGatewaySpan(span)) return std::nullopt;
  const Markers m = Scan(span);
  if (DialectOf(m) == Dialect::kNone) return std::nullopt;
  const std::string op = OperationOf(span, m);
  const auto endpoint = EndpointOf(op);
  if (!endpoint) return std::nullopt;

  const auto& a = span.attributes;
  const json::object params = InvocationParameters(a);
  core::LlmCall c;
  c.trace_id = span.trace_id;
  c.span_id = span.span_id;
  c.parent_span_id = span.parent_span_id;
  c.start_unix_nanos = span.start_unix_nanos;
  c.end_nanos = span.end_unix_nanos - span.start_unix_nanos;
  c.endpoint = *endpoint;

  c.requested_model = std::string(
      First(a, {"gen_ai.request.model", "llm.request.model", "llm.model_name"}, GetString)
          .value_or(""));
  c.response_model = std::string(
      First(a, {"gen_ai.response.model", "llm.response.model", "llm.model_name"}, GetString)
          .value_or(""));
  if (c.response_model.empty()) c.response_model = c.requested_model;

  auto raw_provider =
      First(a, {"gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"}, GetString);
  if (raw_provider) {
    c.provider = std::string(NormaliseProvider(*raw_provider));
    c.provider_kind = c.provider;
  } else {
    c.provider = "otlp";
    c.provider_kind = "otlp";
  }
  if (c.endpoint == core::Endpoint::kChatCompletions && c.provider == "anthropic") {
    c.endpoint = core::Endpoint::kMessages;
  }

  // Timing: the client's time to first chunk (seconds). gen_ai.server.time_to_first_token
  // is a model-server metric that some instrumentations set as a client span attribute;
  // read as the client's value only when nothing better is present.
  auto ttft = First(a,
                    {"gen_ai.response.time_to_first_chunk", "gen_ai.server.time_to_first_token",
                     "llm.response.time_to_first_token"},
                    GetDouble);
  if (ttft && *ttft >= 0) {
    int64_t n = SecondsToNanos(*ttft);
    if (n <= c.end_nanos) c.first_content_nanos = n;
  }
  c.stream = First(a, {"gen_ai.request.stream", "llm.is_streaming"}, GetBool)
                 .value_or(c.first_content_nanos >= 0);

  if (auto v = First(a, {"gen_ai.request.max_tokens", "llm.request.max_tokens"}, GetInt)) {
    c.max_tokens = *v;
  } else if (auto p = JsonNumber(params, "max_tokens")) {
    c.max_tokens = static_cast<int64_t>(*p);
  } else if (auto q = JsonNumber(params, "max_completion_tokens")) {
    c.max_tokens = static_cast<int64_t>(*q);
  }
  if (auto v = First(a, {"gen_ai.request.temperature", "llm.request.temperature"}, GetDouble)) {
    c.temperature = *v;
  } else if (auto p = JsonNumber(params, "temperature")) {
    c.temperature = *p;
  }
  if (auto v = First(a, {"gen_ai.request.top_p", "llm.request.top_p", "llm.top_p"}, GetDouble)) {
    c.top_p = *v;
  } else if (auto p = JsonNumber(params, "top_p")) {
    c.top_p = *p;
  }
  c.finish_reasons = FinishReasons(a);

  // Usage. Keys newest first; each dialect's spelling of the same count.
  auto input = First(a,
                     {"gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                      "llm.token_count.prompt", "llm.usage.prompt_tokens"},
                     GetInt);
  auto output = First(a,
                      {"gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                       "llm.token_count.completion", "llm.usage.completion_tokens"},
                      GetInt);
  auto total = First(
      a, {"gen_ai.usage.total_tokens", "llm.token_count.total", "llm.usage.total_tokens"}, GetInt);
  auto cache_read =
      First(a,
            {"gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
             "llm.token_count.prompt_details.cache_read"},
            GetInt);
  auto cache_write = First(
      a,
      {"gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
       "gen_ai.usage.cache_creation_input_tokens", "llm.token_count.prompt_details.cache_write"},
      GetInt);
  auto reasoning = First(a,
                         {"gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
                          "llm.token_count.completion_details.reasoning"},
                         GetInt);
  if (input || output || total) {
    c.usage_source = core::UsageSource::kProvider;
    c.usage.input = input.value_or(0);
    c.usage.output = output.value_or(0);
    if (total && !output && input && *total >= *input) c.usage.output = *total - *input;
    if (total && !input && output && *total >= *output) c.usage.input = *total - *output;
    c.usage.cache_read = cache_read.value_or(0);
    c.usage.cache_write = cache_write.value_or(0);
    c.usage.reasoning = reasoning.value_or(0);
    // input counts cached tokens (the conventions' definition). An instrumentation that
    // passes Anthropic's disjoint counts through shows cache counts larger than the input:
    // add them so the invariant holds.
    if (c.usage.cache_read + c.usage.cache_write > c.usage.input) {
      c.usage.input += c.usage.cache_read + c.usage.cache_write;
    }
  }

  // Errors: the span status, or error.type (set only when the operation failed).
  auto error_type = GetString(a, "error.type");
  auto http_status = First(a, {"http.response.status_code", "http.status_code"}, GetInt);
  if (http_status) c.http_status = static_cast<int>(*http_status);
  if (span.status == core::SpanStatus::kError || error_type) {
    c.error = ClassifyError(error_type.value_or(""), c.http_status);
    c.error_message = span.status_message;
    if (c.error_message.empty()) {
      for (const auto& e : span.events) {
        if (e.name != "exception") continue;
        if (auto msg = GetString(e.attributes, "exception.message")) {
          c.error_message = std::string(*msg);
        }
        break;
      }
    }
    if (c.error_message.empty() && error_type) c.error_message = std::string(*error_type);
  } else if (c.http_status == 0) {
    c.http_status = 200;  // a successful call over OTLP: no status is reported
  }

  if (auto id = GetString(a, "gen_ai.response.id")) {
    c.request_id = std::string(*id);
  } else {
    c.request_id = core::ToHex(span.span_id);
  }
  c.user = std::string(First(a, {"user.id", "enduser.id"}, GetString).value_or(""));
  c.session =
      std::string(First(a, {"session.id", "gen_ai.conversation.id"}, GetString).value_or(""));
  c.tags.emplace_back("source", "otlp");
  if (!span.service.empty()) c.tags.emplace_back("service", span.service);

  if (options.capture_content) {
    c.request_body = ContentOf(
        span, {"gen_ai.input.messages", "gen_ai.prompt", "input.value", "traceloop.entity.input"},
        {"gen_ai.prompt.", "llm.input_messages."},
        {"gen_ai.content.prompt", "gen_ai.system.message", "gen_ai.user.message",
         "gen_ai.assistant.message", "gen_ai.tool.message"});
    c.response_text = ContentOf(
        span,
        {"gen_ai.output.messages", "gen_ai.completion", "output.value", "traceloop.entity.output"},
        {"gen_ai.completion.", "llm.output_messages."},
        {"gen_ai.content.completion", "gen_ai.choice"});
  }
  return c;
}

int StripContent(core::Span& span) {
  int removed = 0;
  auto strip = [&](core::Attributes& attrs) {
    auto it = std::remove_if(attrs.begin(), attrs.end(),
                             [](const core::Attribute& a) { return IsContentKey(a.key); });
    removed += static_cast<int>(attrs.end() - it);
    attrs.erase(it, attrs.end());
  };
  strip(span.attributes);
  auto ev = std::remove_if(span.events.begin(), span.events.end(),
                           [](const core::SpanEvent& e) { return IsContentEvent(e.name); });
  removed += static_cast<int>(span.events.end() - ev);
  span.events.erase(ev, span.events.end());
  for (auto& e : span.events) strip(e.attributes);
  return removed;
}

int RedactContent(core::Span& span, const std::function<int(std::string&)>& redact) {
  int n = 0;
  auto apply = [&](core::Attribute& a) {
    if (auto* str = std::get_if<std::string>(&a.value)) {
      n += redact(*str);
    } else if (auto* json = std::get_if<core::JsonText>(&a.value)) {
      // Replacements are plain ASCII without quotes or backslashes, so JSON text stays valid.
      n += redact(json->text);
    }
  };
  for (auto& a : span.attributes) {
    if (IsContentKey(a.key)) apply(a);
  }
  for (auto& e : span.events) {
    const bool content_event = IsContentEvent(e.name);
    for (auto& a : e.attributes) {
      if (content_event || IsContentKey(a.key)) apply(a);
    }
  }
  return n;
}

Conformance DescribeDialect(const core::Span& span) {
  Conformance c;
  const Markers m = Scan(span);
  c.dialect = DialectOf(m);
  if (c.dialect == Dialect::kNone) return c;
  const auto& a = span.attributes;
  for (auto k : kDeprecated) {
    if (Has(a, k)) c.deprecated.emplace_back(k);
  }
  if (Has(a, "gen_ai.server.time_to_first_token")) {
    c.misused.emplace_back("gen_ai.server.time_to_first_token");
  }
  if (c.dialect == Dialect::kOtelGenAi || c.dialect == Dialect::kOtelGenAiLegacy) {
    if (m.otel_current) {
      c.semconv_version = ">=1.37";
    } else if (Has(a, "gen_ai.usage.prompt_tokens") || Has(a, "gen_ai.usage.completion_tokens")) {
      c.semconv_version = "<=1.26";
    } else {
      c.semconv_version = "1.27-1.36";
    }
  }
  for (auto k : {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model"}) {
    if (!Has(a, k)) c.missing.emplace_back(k);
  }
  if (span.status == core::SpanStatus::kError && !Has(a, "error.type")) {
    c.missing.emplace_back("error.type");
  }
  return c;
}

bool ConformanceReport::HasService(std::string_view service) const {
  std::lock_guard lock(mu_);
  return services_.find(service) != services_.end();
}

void ConformanceReport::Add(std::string_view service, const Conformance& c) {
  std::lock_guard lock(mu_);
  auto it = services_.find(service);
  if (it == services_.end()) {
    if (services_.size() >= max_services_) service = "_other";
    it = services_.try_emplace(std::string(service)).first;
  }
  Counts& n = it->second;
  ++n.spans;
  ++n.dialects[std::string(DialectName(c.dialect))];
  if (!c.semconv_version.empty()) ++n.versions[c.semconv_version];
  for (const auto& k : c.deprecated) ++n.deprecated[k];
  for (const auto& k : c.misused) ++n.misused[k];
  for (const auto& k : c.missing) ++n.missing[k];
}

std::string ConformanceReport::ToJson() const {
  auto map_json = [](std::string& out, const std::map<std::string, int64_t, std::less<>>& m) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : m) {
      if (!first) out += ',';
      first = false;
      core::AppendJsonString(out, k);
      out += ':' + std::to_string(v);
    }
    out += '}';
  };
  std::lock_guard lock(mu_);
  std::string out = "{\"services\":[";
  bool first = true;
  for (const auto& [service, n] : services_) {
    if (!first) out += ',';
    first = false;
    out += "{\"service\":";
    core::AppendJsonString(out, service);
    out += ",\"spans\":" + std::to_string(n.spans);
    out += ",\"dialects\":";
    map_json(out, n.dialects);
    out += ",\"semconv_versions\":";
    map_json(out, n.versions);
    out += ",\"deprecated\":";
    map_json(out, n.deprecated);
    out += ",\"misused\":";
    map_json(out, n.misused);
    out += ",\"missing\":";
    map_json(out, n.missing);
    out += '}';
  }
  out += "]}";
  return out;
}

}  // namespace llmscope::otlp
