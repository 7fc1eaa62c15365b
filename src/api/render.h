#pragma once

#include <string>

#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"
#include "storage/store.h"

// JSON (and CSV) bodies of the /api/v1/ endpoints, as pure functions. Every success body is
// {"status":"success","data":...} and every error {"status":"error","errorType":...,
// "error":"..."}, the envelope of Prometheus' HTTP API, so one client handles both the
// query API and PromQL. Times are given twice: RFC 3339 for people, Unix nanoseconds for
// programs; durations are in seconds.
namespace llmscope::api {

// The HTTP status and Prometheus-style errorType for a failed query:
//   INVALID_ARGUMENT 400 bad_data, NOT_FOUND 404 not_found, RESOURCE_EXHAUSTED 422
//   too_large, DEADLINE_EXCEEDED 503 timeout, UNAVAILABLE 503 unavailable, else 500
//   internal.
int HttpStatusFor(const core::Status& s);
std::string RenderError(const core::Status& s);

// {"calls":[call...],"next_cursor":"..."|null}; calls without content.
std::string RenderCallPage(const storage::CallPage& page);
// One call with its content (request_body, response_text; "" when not kept).
std::string RenderCall(const core::LlmCall& call);
// {"bucket":"hour","group_by":"model","rows":[{"bucket_start":...,"group":...,
//  "requests","errors","error_rate","latency_seconds":{"p50","p95","p99"},
//  "ttft_seconds":{"p50","p95"},"tokens":{...},"cost_usd","unpriced"}]}
std::string RenderAggregate(const storage::AggregateQuery& q, const storage::AggregateResult& r);
// {"by":"cost","dimension":"user","rows":[{"group","requests","input_tokens",
//  "output_tokens","total_tokens","cost_usd"}]}
std::string RenderTop(const storage::TopQuery& q, const storage::TopResult& r);
// {"traces":[summary...],"next_cursor":...}
std::string RenderTracePage(const storage::TracePage& page);
// One trace as a tree: {"trace_id":..., "start":..., "duration_s":..., "span_count",
// "call_count", "roots":[span{..., "children":[...], "calls":[...]}], "calls":[...]}.
// A span whose parent is not in the trace is a root. A call hangs under the span whose id is
// its parent_span_id (the app's span that made the call through the gateway) or, failing
// that, the span with its own span id (the same call reported over OTLP); otherwise it is
// listed at the top level.
std::string RenderTrace(const core::TraceId& id, const storage::TraceDetail& trace);
// {"calls":N,"content":N,"spans":N,"bytes_on_disk":N,"backend":"sqlite"}
std::string RenderStats(std::string_view backend, const storage::StoreStats& s);

// CSV export (RFC 4180: CRLF line ends, fields quoted when they hold a comma, quote, CR or
// LF; quotes doubled). The header names the columns; tags are one "k=v;k=v" field.
void AppendCsvHeader(std::string& out);
void AppendCallCsv(std::string& out, const core::LlmCall& call);

}  // namespace llmscope::api
