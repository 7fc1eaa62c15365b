#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "metrics/metric.h"

namespace llmscope::metrics {

enum class MetricType : uint8_t {
  kCounter,
  kGauge,
  kHistogram,
  kUnknown,  // "untyped" in the Prometheus text format, "unknown" in OpenMetrics
};

struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
};

// One exposed line: <family name><suffix>{labels} value.
struct Sample {
  // Appended to the family name:
  //   counter:   "" (the renderer appends "_total")
  //   gauge, unknown: ""
  //   histogram: "_bucket" (with an "le" label, last), "_sum", "_count"
  std::string suffix;
  std::vector<Label> labels;
  double value = 0;
  // Only on histogram "_bucket" samples; rendered in OpenMetrics only.
  std::optional<Exemplar> exemplar;
};

// A point-in-time copy of one metric family, the unit that collectors produce and the
// renderers consume. For a counter, `name` is WITHOUT "_total" (see Registry).
// A histogram's samples are grouped per series: its buckets in increasing `le` order
// (values cumulative, "+Inf" last), then _sum, then _count.
struct FamilySnapshot {
  std::string name;
  std::string help;
  MetricType type = MetricType::kUnknown;
  std::vector<Sample> samples;
};

// Appends a family of one unlabelled sample (a gauge a collector computes at scrape time).
inline void AppendSingleValueFamily(std::vector<FamilySnapshot>& out, std::string name,
                                    std::string help, MetricType type, double value) {
  out.push_back(FamilySnapshot{
      std::move(name), std::move(help), type, {Sample{"", {}, value, std::nullopt}}});
}

// Thread-safety: implementations must allow concurrent Collect calls (two scrapes at once).
// The seam for values computed at scrape time (queue depths, process stats, cache sizes).
// Contract: Collect appends zero or more families to `out` and does not clear it; it must be
// quick and must not call back into the Registry it is registered with. Family names must be
// valid metric names not used by any other family of the registry (the registry drops and
// counts offenders at scrape time).
class Collector {
 public:
  virtual ~Collector() = default;
  virtual void Collect(std::vector<FamilySnapshot>& out) const = 0;
};

}  // namespace llmscope::metrics
