#pragma once

// INTERNAL to the otlp module (includes protobuf types): the OTLP/JSON reader.

#include <string_view>

#include "core/status.h"
#include "otlp/convert.h"

namespace llmscope::otlp::internal {

// Fills `out`, an empty Export{Trace,Metrics,Logs}ServiceRequest, from OTLP/JSON text by
// walking the message's descriptor, so one reader serves every signal. OTLP/JSON rules:
// trace_id, span_id and parent_span_id are hex; other bytes values are base64; enums are
// numbers or names; 64-bit integers are numbers or decimal strings; doubles may also be
// "NaN", "Infinity", "-Infinity"; keys are lowerCamelCase or the proto's snake_case; unknown
// keys and null values are ignored. An item (span, data point, log record) with a value of
// the wrong shape is dropped and added to `rejections`. INVALID_ARGUMENT, naming the JSON
// path, when the body is not JSON or a value outside the items has the wrong shape.
core::Status ReadOtlpJson(std::string_view body, google::protobuf::Message& out,
                          Rejections& rejections);

}  // namespace llmscope::otlp::internal
