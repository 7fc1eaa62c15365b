#pragma once

// Internals of the simulator shared by its .cc files: request parsing, the random source,
// and the dialect renderers. Not part of the module's interface.

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/status.h"
#include "simulator/sim.h"

namespace llmscope::simulator::internal {

// Thread-safety: not thread-safe; one instance per use, never shared.
// SplitMix64: tiny, fast and identical on every platform (std distributions are not).
class Rng {
 public:
  // Independent streams per (seed, request_seq, stream) so that, e.g., changing error_rate
  // never changes the generated text.
  Rng(uint64_t seed, uint64_t request_seq, uint64_t stream);
  uint64_t Next();
  double Uniform01();                     // [0, 1)
  int64_t Range(int64_t lo, int64_t hi);  // [lo, hi], REQUIRES lo <= hi
  std::string Alnum(int length);          // [A-Za-z0-9]
  std::string Hex(int length);            // [0-9a-f]

 private:
  uint64_t state_;
};

uint64_t Mix64(uint64_t x);
uint64_t Fnv1a(std::string_view s);

// tokens(s) = ceil(code points of s / 4).
int64_t TextTokens(std::string_view s);

// Thread-safety (this and the structs below): value types. The tool the model calls.
struct ToolChoice {
  std::string name;
  boost::json::value schema;  // JSON schema of the arguments; null when none
};

// One embedding input: what seeds its vector, and its token count.
struct EmbeddingInput {
  std::string key;
  int64_t tokens = 0;
};

// What the simulator needs from a request, extracted per dialect.
struct RequestInfo {
  std::string model;  // as requested
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  std::optional<int64_t> max_tokens;
  int64_t prompt_tokens = 0;
  // Anthropic prompt caching: tokens through the last block with cache_control.
  bool has_cache_control = false;
  int64_t cache_prefix_tokens = 0;
  bool first_turn = true;          // exactly one message in the conversation
  std::optional<ToolChoice> tool;  // set when the model answers with a tool call
  // Embeddings.
  std::vector<EmbeddingInput> embedding_inputs;
  std::optional<int> dimensions;
  bool base64 = false;
};

// Extracts RequestInfo from a body of `endpoint`'s dialect. InvalidArgument names the
// problem. REQUIRES: endpoint != kModels.
core::Result<RequestInfo> ParseRequest(core::Endpoint endpoint, std::string_view body);

enum class Finish : uint8_t { kStop, kLength, kToolCalls, kContentFilter };

// Thread-safety: a value type; the renderers only read it. Everything decided about one
// successful (or truncated / filtered) response; the renderers turn it into bytes.
struct Plan {
  core::Endpoint endpoint = core::Endpoint::kChatCompletions;
  RequestInfo req;
  SimOptions opts;
  uint64_t request_seq = 0;
  std::string model;                // response model
  std::vector<std::string> pieces;  // content deltas: words, or tool-argument slices
  size_t emitted = 0;               // pieces sent (fewer than pieces.size() when truncated)
  bool truncated = false;
  Finish finish = Finish::kStop;
  bool tool_call = false;
  std::string tool_name;
  std::string tool_args;  // complete arguments JSON
  std::string id;         // chatcmpl-…, cmpl-…, resp_…, msg_…
  std::string item_id;    // Responses message / function_call item id
  std::string call_id;    // call_… / toolu_…
  std::string request_id;
  // Usage as the wire reports it.
  int64_t prompt_tokens = 0;  // total, including cached
  int64_t cache_read = 0;
  int64_t cache_write = 0;
  int64_t visible_tokens = 0;  // == emitted
  int64_t reasoning_tokens = 0;

  core::Nanos StreamStart() const;      // when the first content event goes out
  core::Nanos PieceAt(size_t i) const;  // when content event i goes out
  core::Nanos StreamEnd() const;        // when the final events go out
  core::Nanos NonStreamAt() const;      // when a non-streaming body goes out
  std::string EmittedText() const;      // pieces[0, emitted) concatenated
};

// Dialect renderers. Each fills status, content type, frames, model and finish_reason;
// the caller adds headers and usage truth.
SimResponse RenderChat(const Plan& plan);
SimResponse RenderCompletions(const Plan& plan);
SimResponse RenderResponses(const Plan& plan);
SimResponse RenderMessages(const Plan& plan);
SimResponse RenderEmbeddings(const Plan& plan);
SimResponse RenderModels(const SimOptions& opts);
SimResponse RenderError(core::Endpoint endpoint, ErrorKind kind, std::string_view message,
                        const SimOptions& opts, std::string_view request_id);

// SSE event bytes: "data: <json>\n\n", or "event: <name>\ndata: <json>\n\n".
std::string SseData(std::string_view data);
std::string SseEvent(std::string_view name, std::string_view data);

}  // namespace llmscope::simulator::internal
