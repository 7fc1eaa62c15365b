#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/record_sink.h"
#include "core/status.h"
#include "metrics/family.h"
#include "metrics/registry.h"

namespace llmscope::stats {

// Settings of LlmMetrics, fixed at creation.
struct StatsOptions {
  // The most distinct label sets each family keeps; further ones fold into the family's
  // "__overflow__" series (see metrics::FamilyOptions). Model names come from clients, so
  // this is what bounds the series count. REQUIRES: >= 1.
  size_t series_cap = 2000;
};

// Bucket bounds (seconds unless noted), exposed so tests and dashboards can check them.
// llmscope's own histograms, sized for LLM calls (a chat call of a minute is normal):
std::span<const double> RequestDurationBuckets();     // 0.01 ... 320
std::span<const double> TimeToFirstTokenBuckets();    // 0.005 ... 30
std::span<const double> TimePerOutputTokenBuckets();  // 0.001 ... 2.5
// The OpenTelemetry GenAI semantic conventions' (v1.41) advised ExplicitBucketBoundaries:
std::span<const double> GenAiDurationBuckets();    // operation duration, TTFC, TPOC
std::span<const double> GenAiTokenUsageBuckets();  // token usage: 1, 4, 16, ... 67108864

// Thread-safety: Consume is called from the pipeline's worker thread only (see
// core::BatchSink); it only updates lock-free metrics after WithLabels lookups, so the
// registry may be scraped concurrently.
//
// Turns finished calls into metric updates, off the request path. Families (label sets
// bounded by configuration, the endpoint/status/error enums, and the series cap for
// client-supplied model names; see src/stats/README.md for every family and label):
//   llm_requests_total{model,provider,endpoint,status}
//   llm_errors_total{model,provider,endpoint,error_type}
//   llm_request_duration_seconds{model,provider,endpoint}          with trace exemplars
//   llm_time_to_first_token_seconds{model,provider,endpoint}       with trace exemplars
//   llm_time_per_output_token_seconds{model,provider}
//   llm_tokens_total{model,provider,type}
//   llm_cost_usd_total{model,provider}
//   llm_unpriced_requests_total{model,provider}
//   llm_usage_source_total{provider,usage_source}
//   gen_ai_client_operation_duration_seconds{gen_ai_operation_name,gen_ai_provider_name,
//       gen_ai_request_model,gen_ai_response_model,error_type}
//   gen_ai_client_token_usage{...,gen_ai_token_type}
//   gen_ai_client_operation_time_to_first_chunk_seconds{...}
//   gen_ai_client_operation_time_per_output_chunk_seconds{...}
class LlmMetrics final : public core::BatchSink {
 public:
  // Registers every family on `registry`, which must outlive the returned object.
  // Errors: INVALID_ARGUMENT for series_cap == 0; the registry's error when a family
  // cannot be registered (e.g. ALREADY_EXISTS for a second LlmMetrics on one registry).
  static core::Result<std::unique_ptr<LlmMetrics>> Create(metrics::Registry& registry,
                                                          const StatsOptions& options);

  void Consume(const std::vector<core::LlmCall>& batch) override;

  // The update for one call (Consume calls it per record). Public for tests and for
  // callers that record single calls; same thread-safety as Consume.
  void Record(const core::LlmCall& call);

 private:
  LlmMetrics() = default;

  metrics::CounterFamily* requests_ = nullptr;
  metrics::CounterFamily* errors_ = nullptr;
  metrics::HistogramFamily* duration_ = nullptr;
  metrics::HistogramFamily* ttft_ = nullptr;
  metrics::HistogramFamily* tpot_ = nullptr;
  metrics::CounterFamily* tokens_ = nullptr;
  metrics::CounterFamily* cost_ = nullptr;
  metrics::CounterFamily* unpriced_ = nullptr;
  metrics::CounterFamily* usage_source_ = nullptr;
  metrics::HistogramFamily* genai_duration_ = nullptr;
  metrics::HistogramFamily* genai_tokens_ = nullptr;
  metrics::HistogramFamily* genai_ttfc_ = nullptr;
  metrics::HistogramFamily* genai_tpoc_ = nullptr;
};

}  // namespace llmscope::stats
