#pragma once

// Encoding of llmscope's spans as an OTLP export request: the sending half of the OTLP
// module (decode.h is the receiving half). Pure; safe from any thread.

#include <string>
#include <vector>

#include "core/span.h"

namespace llmscope::otlp {

// The protobuf ExportTraceServiceRequest of `spans`, as OTLP/HTTP posts it to /v1/traces.
// Spans are grouped by resource (service and resource attributes) and, within a resource,
// by instrumentation scope, in the order each group first appears; spans keep their order.
// A span whose resource attributes lack service.name gets it from `Span::service`.
//
// The inverse of DecodeTraces for what DecodeTraces produces: DecodeTraces(EncodeTraces(s))
// == s for spans that were decoded (or made) within the decoder's limits and carry their
// service name in the resource. JsonText composites go back to AnyValue arrays and kvlists;
// what JSON cannot tell apart stays as the decoder left it: a whole double inside a composite
// ("1") comes back as an int, NaN and infinities inside a composite as strings, and bytes
// values (kept as base64 strings) as strings. A JsonText that is not JSON is sent as a string.
std::string EncodeTraces(const std::vector<core::Span>& spans);

}  // namespace llmscope::otlp
