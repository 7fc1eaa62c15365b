#pragma once

#include <compare>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "promql/value.h"

// The TSDB's vocabulary: label sets, samples and the stale marker. A label pair is the
// engine's (promql/labels.h); a label set here is a plain sorted vector of them, which
// DbQueryable shares with the engine without copying.
namespace llmscope::tsdb {

// The label that carries the metric name, as in Prometheus.
inline constexpr std::string_view kMetricNameLabel = "__name__";

// The engine's pair type, so that a stored label set can be handed to a query without a copy
// (promql::Labels::FromShared).
using Label = promql::Label;

// A label set: pairs sorted by name, names unique and non-empty, values non-empty (an empty
// value means "absent", as in Prometheus). Build one with MakeLabels; Db rejects others.
using Labels = std::vector<Label>;

// Sorts by name, drops pairs with an empty value; on a repeated name the last one wins.
Labels MakeLabels(std::vector<Label> labels);
// True when `labels` obeys the Labels contract above.
bool IsValidLabels(const Labels& labels);
// The value of `name`, or "" when absent. Binary search: O(log n).
std::string_view GetLabel(const Labels& labels, std::string_view name);
// A 64-bit hash of names and values (FNV-1a with separators); equal sets hash equally.
uint64_t HashLabels(const Labels& labels);
// {__name__="up", job="x"} style text, for messages.
std::string LabelsToString(const Labels& labels);

struct LabelsHash {
  size_t operator()(const Labels& l) const { return static_cast<size_t>(HashLabels(l)); }
};

// Prometheus' staleness marker (promql/value.h: one definition for the engine and the
// store), written when a series disappears from a scrape and stored bit-exactly.
using promql::IsStaleNaN;
using promql::kStaleNaNBits;
using promql::StaleNaN;

// One float sample; t in milliseconds since the Unix epoch.
struct Sample {
  int64_t t_ms = 0;
  double v = 0;
};

// One series of a query answer: its labels and samples sorted by time.
struct SeriesData {
  Labels labels;
  std::vector<Sample> samples;
};

// A sample on its way in, with the series it belongs to.
struct LabeledSample {
  Labels labels;
  int64_t t_ms = 0;
  double v = 0;
};

}  // namespace llmscope::tsdb
