#pragma once

// The LLM simulator's pure logic: given a request body, options and a request number, it
// computes the complete response an OpenAI- or Anthropic-compatible provider would send,
// as a schedule of body frames with their offsets from the request's arrival. A serving
// adapter (elsewhere in this module) plays the schedule over a socket. Nothing here opens
// sockets, reads clocks or sleeps; the same inputs always give byte-identical output.
// Thread-safety: every function here is pure and may be called from any number of threads
// at once.
// Options, override headers and every formula are documented in README.md.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/llm_call.h"
#include "core/status.h"

namespace llmscope::simulator {

// The ways a simulated request can fail.
enum class ErrorKind : uint8_t {
  kRateLimit,      // 429 with retry-after: 1
  kServerError,    // 500
  kOverloaded,     // 529 overloaded_error (Anthropic), 503 (OpenAI dialects)
  kTimeout,        // headers never sent: the adapter holds the connection until the client
                   // gives up
  kTruncated,      // the body stops about half-way, without its terminator, and the
                   // connection closes
  kContentFilter,  // 200, stops after a few tokens: finish_reason "content_filter" (OpenAI),
                   // stop_reason "refusal" (Anthropic), status "incomplete" (Responses)
  kBadRequest,     // 400 invalid_request_error
};

// "rate_limit", "server_error", "overloaded", "timeout", "truncated", "content_filter",
// "bad_request": the names the x-sim-error header takes.
std::string_view ErrorKindName(ErrorKind kind);
std::optional<ErrorKind> ParseErrorKind(std::string_view name);

// Thread-safety: a value type; distinct instances may be used from distinct threads, and a
// const instance may be shared. Configuration of the simulator, parsed and validated once
// (ValidateOptions), then adjusted per request by ApplyOverrides.
struct SimOptions {
  // Time from the request's arrival to the response headers of a stream, an HTTP error
  // (sent with its body), an embeddings or models answer. A non-streaming generation's
  // headers and body go out together at latency + ttft + n / tokens_per_second.
  core::Nanos latency{std::chrono::milliseconds(20)};
  // Streaming: time from the request's arrival to the first content event. When it is
  // shorter than `latency`, the first content event is sent at `latency`.
  core::Nanos ttft{std::chrono::milliseconds(250)};
  // Streaming pace after the first content event: event i (from 0) is sent at
  // max(latency, ttft) + round(i * 1e9 / tokens_per_second) ns. Also sets the
  // non-streaming duration. REQUIRES: in [0.01, 1e9].
  double tokens_per_second = 60.0;
  // The number of generated content events (output tokens) is drawn uniformly from
  // [min_output_tokens, max_output_tokens], then capped by the request's max_tokens
  // (max_completion_tokens, max_output_tokens), which makes the finish reason "length".
  // REQUIRES: 0 <= min <= max <= 1,000,000.
  int64_t min_output_tokens = 16;
  int64_t max_output_tokens = 128;
  // Probability in [0, 1] that a request fails; which way is drawn from `error_mix`.
  double error_rate = 0.0;
  // Relative weights (>= 0, finite) of the kinds drawn when a request fails. Empty means
  // the default mix documented in README.md.
  std::vector<std::pair<ErrorKind, double>> error_mix;
  // When set, every request fails this way (x-sim-error); error_rate is ignored.
  std::optional<ErrorKind> forced_error;
  // Seed of every random draw. Draws depend only on (seed, request_seq), never on the body.
  uint64_t seed = 42;
  // Embedding length when the request names no `dimensions`. REQUIRES: 1..65536.
  int embedding_dims = 1536;
  // False: no usage anywhere in the response (x-sim-usage: none), to exercise estimation.
  bool report_usage = true;
  // When set, prompt tokens served from cache (x-sim-cached-tokens): OpenAI
  // prompt_tokens_details.cached_tokens and Anthropic cache_read_input_tokens, capped at
  // the prompt's tokens; it replaces the Anthropic cache_control rule. REQUIRES: >= 0.
  std::optional<int64_t> cached_tokens;
  // The `created` / `created_at` Unix seconds written into bodies. Fixed so output is
  // deterministic; an adapter may set it per request from its clock.
  int64_t created_unix_seconds = 1735689600;  // 2025-01-01T00:00:00Z
};

// Every problem with `opts`, one per line, or Ok. Simulate refuses invalid options.
core::Status ValidateOptions(const SimOptions& opts);

// Returns `base` with the per-request override headers applied, so a test can drive one
// call exactly. `header_lookup` is called with lower-case names and returns the header's
// value, or nullopt when absent. Headers: x-sim-latency-ms, x-sim-ttft-ms (number >= 0),
// x-sim-tokens-per-second (number > 0), x-sim-output-tokens (exact count, integer >= 0),
// x-sim-error (an ErrorKindName, or "none" for no error at all), x-sim-usage ("none" or
// "full"), x-sim-seed (unsigned integer), x-sim-cached-tokens (integer >= 0).
// An invalid value gives InvalidArgument naming the header and the value.
core::Result<SimOptions> ApplyOverrides(
    const SimOptions& base,
    const std::function<std::optional<std::string_view>(std::string_view)>& header_lookup);

// Thread-safety: a value type. A piece of the response body and when to send it.
struct Frame {
  core::Nanos at{0};  // offset from the request's arrival
  std::string bytes;  // body bytes: one whole SSE event, or (part of) the JSON body
};

// Thread-safety: a value type. A complete simulated response.
// Playing contract for the adapter: when `hang`, send nothing and keep the connection open
// until the client leaves. Otherwise send the status line and headers at `headers_at`, then
// each frame at its `at` (frames are sorted, and none precedes headers_at). When
// `close_without_terminator`, use chunked transfer encoding, send the frames, then close
// the connection without the terminating chunk; otherwise end the body normally.
struct SimResponse {
  int status = 200;          // 0 when `hang`
  std::string content_type;  // "application/json" or "text/event-stream"
  // Extra headers: x-request-id (OpenAI dialects) or request-id (Anthropic); retry-after
  // on 429.
  std::vector<std::pair<std::string, std::string>> headers;
  core::Nanos headers_at{0};
  // Non-streaming: one frame. Streaming: one frame per SSE event.
  std::vector<Frame> frames;
  bool close_without_terminator = false;  // kTruncated
  bool hang = false;                      // kTimeout: send nothing at all
  // The truth tests compare against: prompt tokens by the documented formula and the
  // output tokens actually sent (content events, plus hidden reasoning tokens). All zero
  // for error statuses and hangs. TokenUsage semantics: input includes cache reads and
  // writes; output includes reasoning.
  core::TokenUsage usage;
  // Whether the response carries its final usage on the wire (false with x-sim-usage:
  // none, for errors, and when truncated before the usage is sent).
  bool usage_on_wire = false;
  std::string model;          // the model the response reports ("" for errors, models list)
  std::string finish_reason;  // as on the wire: "stop", "length", "tool_calls",
                              // "content_filter", "end_turn", "max_tokens", "tool_use",
                              // "refusal"; Responses: "completed", "max_output_tokens",
                              // "content_filter". Empty when none was sent.
  std::string output_text;    // the generated text, or the tool call's arguments JSON
};

// Simulates one request. `request_seq` numbers the requests the caller has served (it
// picks the random draws, so different numbers give different answers); the response is a
// pure function of all four arguments.
// Non-streaming responses arrive in one frame at latency + ttft + round(n * 1e9 / tps),
// where n is the number of output pieces. Streaming follows the SSE dialect of the
// endpoint (README.md). kModels ignores the body and never fails.
// Errors: InvalidArgument naming the problem when the body is not JSON, lacks the model or
// another required field (the adapter answers 400 with BadRequestResponse);
// FailedPrecondition when `opts` is invalid (see ValidateOptions); Internal on allocation
// failure. Never throws.
core::Result<SimResponse> Simulate(core::Endpoint endpoint, std::string_view request_body,
                                   const SimOptions& opts, uint64_t request_seq);

// A 400 in the endpoint's dialect (OpenAI {"error":{...}}, Anthropic
// {"type":"error","error":{...}}) carrying `message`, sent at opts.latency: for the adapter
// to answer a request that Simulate rejected.
SimResponse BadRequestResponse(core::Endpoint endpoint, std::string_view message,
                               const SimOptions& opts, uint64_t request_seq);

}  // namespace llmscope::simulator
