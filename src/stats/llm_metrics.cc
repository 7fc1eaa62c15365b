#include "stats/llm_metrics.h"

#include <array>
#include <optional>
#include <string>
#include <utility>

namespace llmscope::stats {
namespace {

// Label values longer than this are cut (at a UTF-8 boundary). Model names come from
// clients; the series cap bounds how many, this bounds how big each one is.
constexpr size_t kMaxLabelValueBytes = 256;

constexpr std::array<double, 15> kRequestDuration = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,  2.5,
                                                     5,    10,    20,   40,  80,   160, 320};
constexpr std::array<double, 16> kTimeToFirstToken = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30};
constexpr std::array<double, 18> kTimePerOutputToken = {0.001, 0.0025, 0.005, 0.0075, 0.01,  0.015,
                                                        0.02,  0.03,   0.04,  0.05,   0.075, 0.1,
                                                        0.15,  0.2,    0.3,   0.5,    1,     2.5};
// Semantic conventions v1.41, docs/gen-ai/gen-ai-metrics.md: the ExplicitBucketBoundaries
// advised for gen_ai.client.operation.duration, .time_to_first_chunk and
// .time_per_output_chunk, and for gen_ai.client.token.usage.
constexpr std::array<double, 14> kGenAiDuration = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                                   1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
constexpr std::array<double, 14> kGenAiTokenUsage = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};

std::vector<double> Vec(std::span<const double> s) { return {s.begin(), s.end()}; }

// `v` cut to kMaxLabelValueBytes without splitting a UTF-8 sequence.
std::string_view Bounded(std::string_view v) {
  if (v.size() <= kMaxLabelValueBytes) return v;
  size_t n = kMaxLabelValueBytes;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  return v.substr(0, n);
}

// An exemplar pointing at the call's trace, stamped with the wall time of what was
// observed; nullopt when the call carries no valid trace id (nothing to link to).
std::optional<metrics::Exemplar> TraceExemplar(const core::LlmCall& c, int64_t offset_nanos) {
  if (!core::IsValid(c.trace_id)) return std::nullopt;
  metrics::Exemplar e;
  e.trace_id = core::ToHex(c.trace_id);
  if (core::IsValid(c.span_id)) e.span_id = core::ToHex(c.span_id);
  e.timestamp_seconds = static_cast<double>(c.start_unix_nanos + offset_nanos) / 1e9;
  return e;
}

void Observe(metrics::Histogram& h, double v, const std::optional<metrics::Exemplar>& e) {
  if (e) {
    h.Observe(v, *e);
  } else {
    h.Observe(v);
  }
}

}  // namespace

std::span<const double> RequestDurationBuckets() { return kRequestDuration; }
std::span<const double> TimeToFirstTokenBuckets() { return kTimeToFirstToken; }
std::span<const double> TimePerOutputTokenBuckets() { return kTimePerOutputToken; }
std::span<const double> GenAiDurationBuckets() { return kGenAiDuration; }
std::span<const double> GenAiTokenUsageBuckets() { return kGenAiTokenUsage; }

core::Result<std::unique_ptr<LlmMetrics>> LlmMetrics::Create(metrics::Registry& registry,
                                                             const StatsOptions& options) {
  if (options.series_cap == 0) return core::InvalidArgument("stats: series_cap must be >= 1");
  const metrics::FamilyOptions fo{.series_cap = options.series_cap};
  std::unique_ptr<LlmMetrics> m(new LlmMetrics());
  core::Status status;
  // Registers one family into `*slot`, remembering the first failure.
  const auto counter = [&](metrics::CounterFamily** slot, std::string name, std::string help,
                           std::vector<std::string> labels) {
    if (!status.ok()) return;
    auto f = registry.AddCounter(std::move(name), std::move(help), std::move(labels), fo);
    if (f.ok()) {
      *slot = *f;
    } else {
      status = f.status();
    }
  };
  const auto histogram = [&](metrics::HistogramFamily** slot, std::string name, std::string help,
                             std::vector<std::string> labels, std::span<const double> buckets) {
    if (!status.ok()) return;
    auto f = registry.AddHistogram(std::move(name), std::move(help), std::move(labels),
                                   Vec(buckets), fo);
    if (f.ok()) {
      *slot = *f;
    } else {
      status = f.status();
    }
  };

  counter(&m->requests_, "llm_requests",
          "LLM calls finished, by requested model, upstream provider, endpoint and HTTP status "
          "(\"0\": no response from the upstream).",
          {"model", "provider", "endpoint", "status"});
  counter(&m->errors_, "llm_errors", "LLM calls that failed, by error class.",
          {"model", "provider", "endpoint", "error_type"});
  histogram(&m->duration_, "llm_request_duration_seconds",
            "LLM call duration, from the request's arrival to the last byte sent to the client "
            "(or the failure).",
            {"model", "provider", "endpoint"}, kRequestDuration);
  histogram(&m->ttft_, "llm_time_to_first_token_seconds",
            "Time from the request's arrival to the first generated content.",
            {"model", "provider", "endpoint"}, kTimeToFirstToken);
  histogram(&m->tpot_, "llm_time_per_output_token_seconds",
            "Mean time between output tokens after the first, one observation per call.",
            {"model", "provider"}, kTimePerOutputToken);
  counter(&m->tokens_, "llm_tokens",
          "Tokens by type: input (includes cache_read and cache_write), output (includes "
          "reasoning), and the cache_read, cache_write and reasoning subsets.",
          {"model", "provider", "type"});
  counter(&m->cost_, "llm_cost_usd", "Cost of priced LLM calls in US dollars (list prices).",
          {"model", "provider"});
  counter(&m->unpriced_, "llm_unpriced_requests",
          "LLM calls whose model has no price in the catalog (not included in llm_cost_usd).",
          {"model", "provider"});
  counter(&m->usage_source_, "llm_usage_source",
          "LLM calls by where their token counts came from: provider, estimated, missing.",
          {"provider", "usage_source"});

  histogram(&m->genai_duration_, "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration (OpenTelemetry gen_ai.client.operation.duration).",
            {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_response_model", "error_type"},
            kGenAiDuration);
  histogram(&m->genai_tokens_, "gen_ai_client_token_usage",
            "Number of input and output tokens used (OpenTelemetry gen_ai.client.token.usage).",
            {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_response_model", "gen_ai_token_type"},
            kGenAiTokenUsage);
  histogram(&m->genai_ttfc_, "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to receive the first chunk of a streamed response (OpenTelemetry "
            "gen_ai.client.operation.time_to_first_chunk).",
            {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_response_model"},
            kGenAiDuration);
  histogram(&m->genai_tpoc_, "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time per output chunk after the first of a streamed response, one observation "
            "per call (OpenTelemetry gen_ai.client.operation.time_per_output_chunk).",
            {"gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
             "gen_ai_response_model"},
            kGenAiDuration);
  if (!status.ok()) return status;
  return m;
}

void LlmMetrics::Consume(const std::vector<core::LlmCall>& batch) {
  for (const core::LlmCall& call : batch) Record(call);
}

void LlmMetrics::Record(const core::LlmCall& c) {
  const std::string_view model = Bounded(c.requested_model);
  const std::string_view provider = Bounded(c.provider);
  const std::string_view endpoint = core::EndpointName(c.endpoint);
  const std::string status = std::to_string(c.http_status);
  // The call's trace ids in hex, made once per call; `exemplar_at` stamps the time of the
  // observation it goes with.
  std::optional<metrics::Exemplar> exemplar = TraceExemplar(c, c.end_nanos);
  auto exemplar_at = [&](int64_t offset_nanos) -> const std::optional<metrics::Exemplar>& {
    if (exemplar) {
      exemplar->timestamp_seconds = static_cast<double>(c.start_unix_nanos + offset_nanos) / 1e9;
    }
    return exemplar;
  };

  requests_->WithLabels({model, provider, endpoint, status}).Inc();
  if (c.error != core::ErrorClass::kNone) {
    errors_->WithLabels({model, provider, endpoint, core::ErrorClassName(c.error)}).Inc();
  }
  const std::optional<double> duration = c.DurationSeconds();
  if (duration) {
    Observe(duration_->WithLabels({model, provider, endpoint}), *duration,
            exemplar_at(c.end_nanos));
  }
  const std::optional<double> ttft = c.TimeToFirstTokenSeconds();
  if (ttft) {
    Observe(ttft_->WithLabels({model, provider, endpoint}), *ttft,
            exemplar_at(c.first_content_nanos));
  }
  const std::optional<double> tpot = c.TimePerOutputTokenSeconds();
  if (tpot) tpot_->WithLabels({model, provider}).Observe(*tpot);

  const std::pair<std::string_view, int64_t> tokens[] = {
      {"input", c.usage.input},           {"output", c.usage.output},
      {"cache_read", c.usage.cache_read}, {"cache_write", c.usage.cache_write},
      {"reasoning", c.usage.reasoning},
  };
  for (const auto& [type, n] : tokens) {
    tokens_->WithLabels({model, provider, type}).Inc(static_cast<double>(n));
  }
  if (c.cost_usd) cost_->WithLabels({model, provider}).Inc(*c.cost_usd);
  if (c.unpriced) unpriced_->WithLabels({model, provider}).Inc();
  usage_source_->WithLabels({provider, core::UsageSourceName(c.usage_source)}).Inc();

  // Listing models is not a GenAI operation in the conventions' sense.
  if (c.endpoint == core::Endpoint::kModels) return;
  const std::string_view op = core::GenAiOperationName(c.endpoint);
  const std::string_view gen_provider = core::GenAiProviderName(Bounded(c.provider_kind));
  const std::string_view response_model = Bounded(c.response_model);
  // error.type is set only when the call failed; an empty label value is how Prometheus
  // represents an absent attribute (it drops empty labels on ingestion).
  const std::string_view error_type =
      c.error == core::ErrorClass::kNone ? std::string_view() : core::ErrorClassName(c.error);
  if (duration) {
    Observe(genai_duration_->WithLabels({op, gen_provider, model, response_model, error_type}),
            *duration, exemplar_at(c.end_nanos));
  }
  // The conventions forbid reporting token usage that was not obtained; estimates are the
  // "offline token counting" they allow.
  if (c.usage_source != core::UsageSource::kMissing) {
    genai_tokens_->WithLabels({op, gen_provider, model, response_model, "input"})
        .Observe(static_cast<double>(c.usage.input));
    genai_tokens_->WithLabels({op, gen_provider, model, response_model, "output"})
        .Observe(static_cast<double>(c.usage.output));
  }
  // Both chunk metrics SHOULD be reported for streaming calls only.
  if (c.stream && ttft) {
    Observe(genai_ttfc_->WithLabels({op, gen_provider, model, response_model}), *ttft,
            exemplar_at(c.first_content_nanos));
  }
  if (c.stream && tpot) {
    genai_tpoc_->WithLabels({op, gen_provider, model, response_model}).Observe(*tpot);
  }
}

}  // namespace llmscope::stats
