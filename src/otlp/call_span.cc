#include "otlp/call_span.h"

#include <algorithm>
#include <utility>

#include "core/json_string.h"
#include "otlp/genai.h"

namespace llmscope::otlp {
namespace {

void Add(core::Attributes& a, std::string key, core::AttributeValue v) {
  a.push_back(core::Attribute{std::move(key), std::move(v)});
}

}  // namespace

core::Span SpanFromCall(const core::LlmCall& c) {
  core::Span s;
  s.trace_id = c.trace_id;
  s.span_id = c.span_id;
  s.parent_span_id = c.parent_span_id;
  const std::string_view op = core::GenAiOperationName(c.endpoint);
  s.name = std::string(op) + " " + c.requested_model;
  s.kind = core::SpanKind::kClient;
  s.service = "llmscope";
  s.scope = "llmscope.gateway";
  s.resource_attributes.push_back({"service.name", std::string("llmscope")});
  s.start_unix_nanos = c.start_unix_nanos;
  s.end_unix_nanos = c.start_unix_nanos + std::max<int64_t>(c.end_nanos, 0);
  if (c.error != core::ErrorClass::kNone) {
    s.status = core::SpanStatus::kError;
    s.status_message = c.error_message;
  }

  core::Attributes& a = s.attributes;
  Add(a, "gen_ai.operation.name", std::string(op));
  Add(a, "gen_ai.provider.name", std::string(core::GenAiProviderName(c.provider_kind)));
  if (!c.requested_model.empty()) Add(a, "gen_ai.request.model", c.requested_model);
  if (!c.response_model.empty()) Add(a, "gen_ai.response.model", c.response_model);
  if (!c.request_id.empty()) Add(a, "gen_ai.response.id", c.request_id);
  if (c.usage_source != core::UsageSource::kMissing) {
    Add(a, "gen_ai.usage.input_tokens", c.usage.input);
    Add(a, "gen_ai.usage.output_tokens", c.usage.output);
    if (c.usage.cache_read > 0) Add(a, "gen_ai.usage.cache_read.input_tokens", c.usage.cache_read);
    if (c.usage.cache_write > 0) {
      Add(a, "gen_ai.usage.cache_creation.input_tokens", c.usage.cache_write);
    }
    if (c.usage.reasoning > 0) Add(a, "gen_ai.usage.reasoning.output_tokens", c.usage.reasoning);
  }
  if (c.max_tokens) Add(a, "gen_ai.request.max_tokens", *c.max_tokens);
  if (c.temperature) Add(a, "gen_ai.request.temperature", *c.temperature);
  if (c.top_p) Add(a, "gen_ai.request.top_p", *c.top_p);
  if (!c.finish_reasons.empty()) {
    std::string json = "[";
    for (const std::string& r : c.finish_reasons) {
      if (json.size() > 1) json += ',';
      core::AppendJsonString(json, r);
    }
    json += ']';
    Add(a, "gen_ai.response.finish_reasons", core::JsonText{std::move(json)});
  }
  if (c.error != core::ErrorClass::kNone) {
    Add(a, "error.type", std::string(core::ErrorClassName(c.error)));
  }
  if (c.http_status != 0) Add(a, "http.response.status_code", int64_t{c.http_status});
  Add(a, "llmscope.gateway", true);
  if (!c.provider.empty()) Add(a, "llmscope.provider", c.provider);
  if (auto ttft = c.TimeToFirstTokenSeconds()) Add(a, "llmscope.ttft_s", *ttft);
  Add(a, "llmscope.overhead_us", c.overhead_nanos / 1000);
  if (c.cost_usd) Add(a, "llmscope.cost_usd", *c.cost_usd);
  return s;
}

void CallSpanSink::Consume(const std::vector<core::LlmCall>& batch) {
  std::vector<core::Span> spans;
  spans.reserve(batch.size());
  for (const core::LlmCall& c : batch) {
    if (IsMappedFromSpan(c) || !core::IsValid(c.trace_id) || !core::IsValid(c.span_id)) continue;
    spans.push_back(SpanFromCall(c));
  }
  if (!spans.empty()) out_(std::move(spans));
}

}  // namespace llmscope::otlp
