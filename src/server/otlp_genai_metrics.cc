#include "server/otlp_genai_metrics.h"

#include <algorithm>
#include <array>
#include <utility>

#include "metrics/exposition.h"
#include "otlp/genai.h"

namespace llmscope::server {
namespace {

// The exposed family name of a GenAI client metric, or "" for any other metric.
std::string FamilyName(const otlp::MetricPoint& p) {
  static constexpr std::array<std::string_view, 4> kNames = {
      "gen_ai.client.token.usage", "gen_ai.client.operation.duration",
      "gen_ai.client.operation.time_to_first_chunk",
      "gen_ai.client.operation.time_per_output_chunk"};
  if (std::find(kNames.begin(), kNames.end(), p.name) == kNames.end()) return "";
  std::string out = "otlp_" + p.name;
  std::replace(out.begin(), out.end(), '.', '_');
  if (p.unit == "s") out += "_seconds";
  return out;
}

// The stream's labels: service plus the bounded attributes, sorted by name.
std::vector<std::pair<std::string, std::string>> StreamLabels(const otlp::MetricPoint& p) {
  static constexpr std::array<std::string_view, 7> kKept = {
      "error.type",           "gen_ai.operation.name", "gen_ai.provider.name",
      "gen_ai.request.model", "gen_ai.response.model", "gen_ai.token.type",
      "server.address"};
  std::map<std::string, std::string> labels;
  std::string legacy_provider;
  for (const auto& a : p.attributes) {
    if (a.key == "gen_ai.system") legacy_provider = otlp::AttributeText(a.value);
    if (std::find(kKept.begin(), kKept.end(), a.key) == kKept.end()) continue;
    std::string name = a.key;
    std::replace(name.begin(), name.end(), '.', '_');
    labels[name] = otlp::AttributeText(a.value);
  }
  if (!legacy_provider.empty()) labels.try_emplace("gen_ai_provider_name", legacy_provider);
  labels["service"] = p.service;
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [k, v] : labels) {
    if (!v.empty()) out.emplace_back(k, std::move(v));
  }
  return out;
}

}  // namespace

OtlpGenAiMetrics::AddResult OtlpGenAiMetrics::Add(
    const std::vector<otlp::MetricPoint>& points,
    const std::function<bool(std::string_view)>& sends_spans) {
  AddResult r;
  std::lock_guard lock(mu_);
  for (const auto& p : points) {
    if (p.kind != otlp::MetricKind::kHistogram) continue;
    const std::string family = FamilyName(p);
    if (family.empty()) continue;
    if (p.bucket_counts.size() != p.bounds.size() + 1) continue;  // no buckets: nothing to add
    if (sends_spans && sends_spans(p.service)) {
      ++r.duplicate_spans;
      // Whatever was exposed for this service before its spans came is withdrawn.
      for (auto& [name, streams] : families_) {
        for (auto it = streams.begin(); it != streams.end();) {
          const auto svc = std::find_if(it->first.begin(), it->first.end(),
                                        [](const auto& l) { return l.first == "service"; });
          if (svc != it->first.end() && svc->second == p.service) {
            it = streams.erase(it);
            --streams_;
          } else {
            ++it;
          }
        }
      }
      continue;
    }
    auto& streams = families_[family];
    auto labels = StreamLabels(p);
    auto it = streams.find(labels);
    if (it == streams.end()) {
      if (streams_ >= max_streams_) {
        ++r.over_cap;
        continue;
      }
      it = streams.emplace(std::move(labels), Stream{}).first;
      ++streams_;
    }
    Stream& s = it->second;
    const bool add = p.temporality == otlp::Temporality::kDelta && s.bounds == p.bounds &&
                     s.counts.size() == p.bucket_counts.size();
    if (add) {
      for (size_t i = 0; i < s.counts.size(); ++i) s.counts[i] += p.bucket_counts[i];
      s.sum += p.sum.value_or(0);
      s.count += p.count;
    } else {
      s.bounds = p.bounds;
      s.counts = p.bucket_counts;
      s.sum = p.sum.value_or(0);
      s.count = p.count;
    }
    ++r.exposed;
  }
  return r;
}

void OtlpGenAiMetrics::Collect(std::vector<metrics::FamilySnapshot>& out) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, streams] : families_) {
    if (streams.empty()) continue;
    metrics::FamilySnapshot f;
    f.name = name;
    f.help = "GenAI client metric received over OTLP from services that send no GenAI spans.";
    f.type = metrics::MetricType::kHistogram;
    for (const auto& [pairs, s] : streams) {
      std::vector<metrics::Label> labels;
      for (const auto& [k, v] : pairs) labels.push_back({k, v});
      uint64_t running = 0;
      for (size_t i = 0; i < s.counts.size(); ++i) {
        running += s.counts[i];
        auto l = labels;
        l.push_back({"le", i < s.bounds.size() ? metrics::FormatBucketBound(s.bounds[i]) : "+Inf"});
        f.samples.push_back({"_bucket", std::move(l), static_cast<double>(running), std::nullopt});
      }
      f.samples.push_back({"_sum", labels, s.sum, std::nullopt});
      // _count is the +Inf bucket, as OTLP defines count (the sum of the bucket counts).
      f.samples.push_back({"_count", labels, static_cast<double>(running), std::nullopt});
    }
    out.push_back(std::move(f));
  }
}

}  // namespace llmscope::server
