#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/snapshot.h"
#include "otlp/decode.h"

namespace llmscope::server {

// The OpenTelemetry GenAI client metrics that applications send over OTLP
// (gen_ai.client.token.usage, gen_ai.client.operation.duration,
// gen_ai.client.operation.time_to_first_chunk, gen_ai.client.operation.time_per_output_chunk),
// exposed through /metrics as histograms named otlp_<Prometheus name>
// (otlp_gen_ai_client_token_usage, otlp_gen_ai_client_operation_duration_seconds, ...),
// labelled by `service` and the conventions' bounded attributes (gen_ai.operation.name,
// gen_ai.provider.name (or the legacy gen_ai.system), gen_ai.request.model,
// gen_ai.response.model, gen_ai.token.type, error.type, server.address, dots as
// underscores). They keep a name of their own: llmscope's gen_ai_client_* families count
// the calls llmscope itself sees.
//
// No double counting (docs/ARCHITECTURE.md, "One trace"): a service that sends GenAI spans
// has its calls counted from those spans, so its GenAI metrics are not exposed (and what
// was exposed for it is removed once its first GenAI span arrives). Cumulative points
// replace a stream's state, delta points add to it (a change of bucket bounds restarts it).
// Streams are capped; points of new streams beyond the cap are dropped and counted.
//
// Thread-safety: Add and Collect may be called concurrently (decode threads, scrapes).
class OtlpGenAiMetrics final : public metrics::Collector {
 public:
  explicit OtlpGenAiMetrics(size_t max_streams = 2000) : max_streams_(max_streams) {}

  struct AddResult {
    int64_t exposed = 0;          // GenAI histogram points taken
    int64_t duplicate_spans = 0;  // from services that send GenAI spans
    int64_t over_cap = 0;         // new streams beyond max_streams
  };
  // `sends_spans(service)` tells whether the service sends GenAI spans.
  AddResult Add(const std::vector<otlp::MetricPoint>& points,
                const std::function<bool(std::string_view)>& sends_spans);

  void Collect(std::vector<metrics::FamilySnapshot>& out) const override;

 private:
  struct Stream {
    std::vector<double> bounds;
    std::vector<uint64_t> counts;  // per bucket, bounds.size() + 1
    double sum = 0;
    uint64_t count = 0;
  };
  using LabelSet = std::vector<std::pair<std::string, std::string>>;  // sorted by name
  const size_t max_streams_;
  mutable std::mutex mu_;
  std::map<std::string, std::map<LabelSet, Stream>> families_;  // GUARDED_BY(mu_)
  size_t streams_ = 0;                                          // GUARDED_BY(mu_)
};

}  // namespace llmscope::server
