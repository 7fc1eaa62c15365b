#pragma once

// llmscope's own calls as OpenTelemetry spans, so a gateway call can be sent on to another
// OTLP backend beside the spans the receiver took in.

#include <functional>
#include <vector>

#include "core/llm_call.h"
#include "core/record_sink.h"
#include "core/span.h"

namespace llmscope::otlp {

// The CLIENT span of one gateway call, following the OpenTelemetry GenAI semantic
// conventions (v1.37+): name "{gen_ai.operation.name} {gen_ai.request.model}"; service and
// resource service.name "llmscope", scope "llmscope.gateway"; the call's trace, span and
// parent span ids; start at start_unix_nanos, end at start + end_nanos (the start when the
// call has no end). Attributes, each only when the call has the fact:
//   gen_ai.operation.name, gen_ai.provider.name (core::GenAiProviderName of provider_kind),
//   gen_ai.request.model, gen_ai.response.model, gen_ai.response.id (the request id the
//   gateway answered with), gen_ai.usage.input_tokens / output_tokens /
//   cache_read.input_tokens / cache_creation.input_tokens / reasoning.output_tokens (when
//   usage was reported or estimated), gen_ai.request.max_tokens / temperature / top_p,
//   gen_ai.response.finish_reasons (a string array), error.type (core::ErrorClassName),
//   http.response.status_code, and llmscope.gateway = true (so IsGatewaySpan recognises the
//   span and MapGenAiSpan never turns it into a second call), llmscope.provider (the
//   configured upstream), llmscope.ttft_s, llmscope.overhead_us, llmscope.cost_usd.
// A failed call has status ERROR with its error message. Content is never copied.
// Thread-safety: pure.
core::Span SpanFromCall(const core::LlmCall& call);

// A pipeline sink that turns the gateway's calls into spans (SpanFromCall) and hands each
// batch to `out`. Calls mapped from OTLP spans (MapGenAiSpan tags them source=otlp) are
// skipped: their spans travel on their own. Thread-safety: as core::BatchSink (the
// pipeline's worker thread only); `out` is called on that thread and must not block.
class CallSpanSink final : public core::BatchSink {
 public:
  explicit CallSpanSink(std::function<void(std::vector<core::Span>&&)> out)
      : out_(std::move(out)) {}
  void Consume(const std::vector<core::LlmCall>& batch) override;

 private:
  std::function<void(std::vector<core::Span>&&)> out_;
};

}  // namespace llmscope::otlp
