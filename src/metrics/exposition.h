#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "metrics/snapshot.h"

namespace llmscope::metrics {

// The text formats a scrape can ask for. Pure functions below; all thread-safe.
enum class Format : uint8_t {
  kPrometheusText,  // text/plain; version=0.0.4; charset=utf-8
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0; charset=utf-8
};

// The Content-Type header value for a rendered body.
std::string_view ContentType(Format format);

// Picks the format for a scrape's Accept header: OpenMetrics when the client accepts
// application/openmetrics-text (version 1.0.0, 0.0.1 or unspecified) with a q-value > 0 that
// is at least that of text/plain (or */*); the Prometheus text format otherwise, including
// for an empty or unparsable header.
Format NegotiateFormat(std::string_view accept_header);

// Renders families in the given order; samples in the order given.
//   Prometheus text: "# HELP" then "# TYPE", both naming the exposed name (a counter's
//     name + "_total"); histograms as cumulative _bucket{le=..} including +Inf, _sum,
//     _count; no exemplars.
//   OpenMetrics: "# TYPE" then "# HELP" naming the family (a counter's TYPE line names it
//     WITHOUT "_total", its samples carry "_total"); `le` values in canonical form ("1.0");
//     exemplars after bucket samples; ends with "# EOF".
// Label values and HELP are escaped (\\, \n, and \" in label values and OpenMetrics HELP);
// invalid UTF-8 is replaced by U+FFFD so one bad label value cannot fail the whole scrape.
// An empty HELP is left out. A family without samples still gets its metadata lines.
std::string Render(std::span<const FamilySnapshot> families, Format format);

// Shortest decimal text that parses back to exactly `v` ("0.1", "1", "1e+21"); "NaN",
// "+Inf", "-Inf" for the special values.
std::string FormatDouble(double v);

// A histogram bucket bound the way the Go client renders `le` (strconv 'g', shortest:
// exponent form below 1e-4 and from 1e6 on): "0.005", "1", "100000", "1e+06", "+Inf".
// The OpenMetrics renderer appends ".0" where this has no '.' or exponent.
std::string FormatBucketBound(double v);

}  // namespace llmscope::metrics
