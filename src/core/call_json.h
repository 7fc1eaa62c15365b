#pragma once

#include <cstdint>
#include <string>

#include "core/llm_call.h"

// The one JSON rendering of an LlmCall, shared by the call log, the query API and exports,
// plus the number and time writers it is built from.
namespace llmscope::core {

// Appends the shortest text that parses back to exactly `v`; JSON has no NaN or
// infinities, so those are written as null.
void AppendJsonDouble(std::string& out, double v);
void AppendJsonInt(std::string& out, int64_t v);
// Appends a quoted RFC 3339 UTC timestamp with microseconds ("2023-11-14T22:13:20.123456Z"),
// truncated toward the past.
void AppendJsonTimestamp(std::string& out, int64_t unix_nanos);

// Appends one call as a JSON object: ts, request_id, trace and span ids, endpoint, provider,
// model, response_model, stream, status, error_type, timings in seconds (duration_s, ttft_s,
// tpot_s, first_byte_s; null when they did not happen), overhead_us, request parameters,
// finish_reasons, usage, usage_source, cost_usd (null when unpriced), unpriced, user,
// session, tags; request_body and response_text only when `include_content`.
// Strings are escaped per RFC 8259 with invalid UTF-8 replaced by U+FFFD, so the output is
// always valid JSON. Thread-safety: pure; safe from any thread.
void AppendCallJson(std::string& out, const LlmCall& call, bool include_content);
std::string FormatCallJson(const LlmCall& call, bool include_content);

}  // namespace llmscope::core
