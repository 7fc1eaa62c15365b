#pragma once

#include <string_view>
#include <vector>

#include "core/status.h"
#include "tsdb/db.h"
#include "tsdb/labels.h"

namespace llmscope::tsdb {

// Parses samples with timestamps in the OpenMetrics text format, the input of
// `promtool tsdb create-blocks-from openmetrics`, so the same file backfills llmscope and
// Prometheus alike:
//   name{label="value",...} value timestamp
// with the timestamp in Unix seconds (a fraction allowed; kept to the millisecond) and the
// value a float, NaN, +Inf or -Inf. Comment and metadata lines ("# TYPE ...") are skipped;
// "# EOF" ends the input (nothing may follow it). Label values take the escapes \\, \" and
// \n. A sample without a timestamp is an error: a backfill needs times.
// Errors: INVALID_ARGUMENT naming the line and the problem (the first one found).
// Thread-safety: a pure function.
core::Result<std::vector<LabeledSample>> ParseOpenMetricsSamples(std::string_view text);

// What an import did.
struct ImportStats {
  uint64_t series = 0;
  AppendStats append;
};

// Appends `samples` to `db`, each series in time order (the input may interleave series and
// need not be sorted), then persists. Samples the store refuses (duplicates, out of its
// retention) are counted in the result, not errors. Errors: Persist's.
core::Result<ImportStats> ImportSamples(Db& db, std::vector<LabeledSample> samples);

}  // namespace llmscope::tsdb
