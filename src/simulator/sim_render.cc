// The simulator's dialect renderers: turn a Plan into the bytes and schedule that OpenAI
// (chat.completion, text_completion, Responses, embeddings, models) and Anthropic
// (Messages) would send. Field order follows the providers' own bodies.

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "simulator/sim_internal.h"

namespace llmscope::simulator::internal {
namespace json = boost::json;
namespace {

constexpr std::string_view kJson = "application/json";
constexpr std::string_view kSse = "text/event-stream";
constexpr std::string_view kFingerprint = "fp_llmscope_sim";

std::string_view OpenAiFinish(Finish f) {
  switch (f) {
    case Finish::kStop:
      return "stop";
    case Finish::kLength:
      return "length";
    case Finish::kToolCalls:
      return "tool_calls";
    case Finish::kContentFilter:
      return "content_filter";
  }
  return "stop";
}

std::string_view AnthropicStop(Finish f) {
  switch (f) {
    case Finish::kStop:
      return "end_turn";
    case Finish::kLength:
      return "max_tokens";
    case Finish::kToolCalls:
      return "tool_use";
    case Finish::kContentFilter:
      return "refusal";
  }
  return "end_turn";
}

json::string_view Sv(std::string_view s) { return {s.data(), s.size()}; }

// Appends one body frame at `at`.
void Push(SimResponse& r, core::Nanos at, std::string bytes) {
  r.frames.push_back(Frame{at, std::move(bytes)});
}

int64_t CompletionTokens(const Plan& p) { return p.visible_tokens + p.reasoning_tokens; }

json::object ChatUsage(const Plan& p) {
  const int64_t completion = CompletionTokens(p);
  return json::object{
      {"prompt_tokens", p.prompt_tokens},
      {"completion_tokens", completion},
      {"total_tokens", p.prompt_tokens + completion},
      {"prompt_tokens_details", json::object{{"cached_tokens", p.cache_read}, {"audio_tokens", 0}}},
      {"completion_tokens_details", json::object{{"reasoning_tokens", p.reasoning_tokens},
                                                 {"audio_tokens", 0},
                                                 {"accepted_prediction_tokens", 0},
                                                 {"rejected_prediction_tokens", 0}}},
  };
}

json::object CompletionsUsage(const Plan& p) {
  return json::object{{"prompt_tokens", p.prompt_tokens},
                      {"completion_tokens", p.visible_tokens},
                      {"total_tokens", p.prompt_tokens + p.visible_tokens}};
}

json::object ResponsesUsage(const Plan& p) {
  const int64_t output = CompletionTokens(p);
  return json::object{
      {"input_tokens", p.prompt_tokens},
      {"input_tokens_details", json::object{{"cached_tokens", p.cache_read}}},
      {"output_tokens", output},
      {"output_tokens_details", json::object{{"reasoning_tokens", p.reasoning_tokens}}},
      {"total_tokens", p.prompt_tokens + output},
  };
}

json::object AnthropicUsage(const Plan& p, int64_t output_tokens) {
  return json::object{
      {"input_tokens", p.prompt_tokens - p.cache_read - p.cache_write},
      {"cache_creation_input_tokens", p.cache_write},
      {"cache_read_input_tokens", p.cache_read},
      {"output_tokens", output_tokens},
  };
}

// The tool call's arguments as a JSON value (they are generated as valid JSON).
json::value ArgumentsValue(const Plan& p) {
  json::error_code ec;
  json::value v = json::parse(Sv(p.tool_args), ec);
  return ec ? json::value(json::object()) : v;
}

// ---- OpenAI chat.completion / chat.completion.chunk ----

json::object ChatChunk(const Plan& p, const std::string& id, json::array choices, bool usage_null) {
  json::object c{{"id", Sv(id)},
                 {"object", "chat.completion.chunk"},
                 {"created", p.opts.created_unix_seconds},
                 {"model", Sv(p.model)},
                 {"service_tier", "default"},
                 {"system_fingerprint", Sv(kFingerprint)},
                 {"choices", std::move(choices)}};
  if (usage_null) c["usage"] = nullptr;
  return c;
}

json::array ChatChoice(json::object delta, json::value finish) {
  return json::array{json::object{{"index", 0},
                                  {"delta", std::move(delta)},
                                  {"logprobs", nullptr},
                                  {"finish_reason", std::move(finish)}}};
}

}  // namespace

std::string SseData(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 8);
  out.append("data: ").append(data).append("\n\n");
  return out;
}

std::string SseEvent(std::string_view name, std::string_view data) {
  std::string out;
  out.reserve(name.size() + data.size() + 16);
  out.append("event: ").append(name).append("\ndata: ").append(data).append("\n\n");
  return out;
}

SimResponse RenderChat(const Plan& p) {
  SimResponse r;
  r.model = p.model;
  r.finish_reason = std::string(OpenAiFinish(p.finish));
  const std::string id = "chatcmpl-" + p.id;
  const std::string call_id = "call_" + p.call_id;
  if (!p.req.stream) {
    json::object message{{"role", "assistant"}};
    if (p.tool_call) {
      message["content"] = nullptr;
      message["refusal"] = nullptr;
      message["tool_calls"] = json::array{json::object{
          {"id", Sv(call_id)},
          {"type", "function"},
          {"function", json::object{{"name", Sv(p.tool_name)}, {"arguments", Sv(p.tool_args)}}}}};
    } else {
      message["content"] = Sv(p.EmittedText());
      message["refusal"] = nullptr;
    }
    json::object body{
        {"id", Sv(id)},
        {"object", "chat.completion"},
        {"created", p.opts.created_unix_seconds},
        {"model", Sv(p.model)},
        {"choices", json::array{json::object{{"index", 0},
                                             {"message", std::move(message)},
                                             {"logprobs", nullptr},
                                             {"finish_reason", Sv(r.finish_reason)}}}}};
    if (p.opts.report_usage) body["usage"] = ChatUsage(p);
    body["service_tier"] = "default";
    body["system_fingerprint"] = Sv(kFingerprint);
    r.content_type = kJson;
    r.headers_at = p.NonStreamAt();
    Push(r, p.NonStreamAt(), json::serialize(body));
    return r;
  }
  r.content_type = kSse;
  r.headers_at = p.opts.latency;
  const bool usage_chunk = p.req.include_usage && p.opts.report_usage;
  json::object first{{"role", "assistant"}};
  if (p.tool_call) {
    first["content"] = nullptr;
    first["tool_calls"] = json::array{
        json::object{{"index", 0},
                     {"id", Sv(call_id)},
                     {"type", "function"},
                     {"function", json::object{{"name", Sv(p.tool_name)}, {"arguments", ""}}}}};
  } else {
    first["content"] = "";
  }
  first["refusal"] = nullptr;
  Push(r, p.opts.latency,
       SseData(
           json::serialize(ChatChunk(p, id, ChatChoice(std::move(first), nullptr), usage_chunk))));
  for (size_t i = 0; i < p.emitted; ++i) {
    json::object delta;
    if (p.tool_call) {
      delta["tool_calls"] = json::array{
          json::object{{"index", 0}, {"function", json::object{{"arguments", Sv(p.pieces[i])}}}}};
    } else {
      delta["content"] = Sv(p.pieces[i]);
    }
    Push(r, p.PieceAt(i),
         SseData(json::serialize(
             ChatChunk(p, id, ChatChoice(std::move(delta), nullptr), usage_chunk))));
  }
  if (p.truncated) return r;
  const core::Nanos end = p.StreamEnd();
  Push(r, end,
       SseData(json::serialize(
           ChatChunk(p, id, ChatChoice(json::object(), Sv(r.finish_reason)), usage_chunk))));
  if (usage_chunk) {
    json::object c = ChatChunk(p, id, json::array(), false);
    c["usage"] = ChatUsage(p);
    Push(r, end, SseData(json::serialize(c)));
  }
  Push(r, end, SseData("[DONE]"));
  return r;
}

// ---- OpenAI legacy text_completion ----

SimResponse RenderCompletions(const Plan& p) {
  SimResponse r;
  r.model = p.model;
  r.finish_reason = std::string(OpenAiFinish(p.finish));
  const std::string id = "cmpl-" + p.id;
  auto chunk = [&](json::array choices) {
    return json::object{{"id", Sv(id)},
                        {"object", "text_completion"},
                        {"created", p.opts.created_unix_seconds},
                        {"model", Sv(p.model)},
                        {"system_fingerprint", Sv(kFingerprint)},
                        {"choices", std::move(choices)}};
  };
  auto choice = [](std::string_view text, json::value finish) {
    return json::array{json::object{{"text", Sv(text)},
                                    {"index", 0},
                                    {"logprobs", nullptr},
                                    {"finish_reason", std::move(finish)}}};
  };
  if (!p.req.stream) {
    json::object body = chunk(choice(p.EmittedText(), Sv(r.finish_reason)));
    if (p.opts.report_usage) body["usage"] = CompletionsUsage(p);
    r.content_type = kJson;
    r.headers_at = p.NonStreamAt();
    Push(r, p.NonStreamAt(), json::serialize(body));
    return r;
  }
  r.content_type = kSse;
  r.headers_at = p.opts.latency;
  const bool usage_chunk = p.req.include_usage && p.opts.report_usage;
  auto with_usage_null = [&](json::object c) {
    if (usage_chunk) c["usage"] = nullptr;
    return c;
  };
  for (size_t i = 0; i < p.emitted; ++i) {
    Push(r, p.PieceAt(i),
         SseData(json::serialize(with_usage_null(chunk(choice(p.pieces[i], nullptr))))));
  }
  if (p.truncated) return r;
  const core::Nanos end = p.StreamEnd();
  Push(r, end, SseData(json::serialize(with_usage_null(chunk(choice("", Sv(r.finish_reason)))))));
  if (usage_chunk) {
    json::object c = chunk(json::array());
    c["usage"] = CompletionsUsage(p);
    Push(r, end, SseData(json::serialize(c)));
  }
  Push(r, end, SseData("[DONE]"));
  return r;
}

// ---- OpenAI Responses API ----

SimResponse RenderResponses(const Plan& p) {
  SimResponse r;
  r.model = p.model;
  const std::string id = "resp_" + p.id;
  const std::string item_id = (p.tool_call ? "fc_" : "msg_") + p.item_id;
  const std::string call_id = "call_" + p.call_id;
  const bool incomplete = p.finish == Finish::kLength || p.finish == Finish::kContentFilter;
  const std::string_view reason =
      p.finish == Finish::kLength ? "max_output_tokens" : "content_filter";
  r.finish_reason = incomplete ? std::string(reason) : "completed";

  auto text_part = [](std::string_view text) {
    return json::object{{"type", "output_text"},
                        {"annotations", json::array()},
                        {"logprobs", json::array()},
                        {"text", Sv(text)}};
  };
  // The output item; `done`: finished, with its full content.
  auto item = [&](bool done) {
    const std::string_view status = !done ? "in_progress" : incomplete ? "incomplete" : "completed";
    if (p.tool_call) {
      return json::object{{"id", Sv(item_id)},      {"type", "function_call"},
                          {"status", Sv(status)},   {"arguments", done ? Sv(p.tool_args) : ""},
                          {"call_id", Sv(call_id)}, {"name", Sv(p.tool_name)}};
    }
    json::array content;
    if (done) content.push_back(text_part(p.EmittedText()));
    return json::object{{"id", Sv(item_id)},
                        {"type", "message"},
                        {"status", Sv(status)},
                        {"content", std::move(content)},
                        {"role", "assistant"}};
  };
  // The response object; `done`: final, with output and usage.
  auto response = [&](bool done) {
    json::object o{{"id", Sv(id)},
                   {"object", "response"},
                   {"created_at", p.opts.created_unix_seconds},
                   {"status", !done        ? "in_progress"
                              : incomplete ? "incomplete"
                                           : "completed"},
                   {"background", false},
                   {"error", nullptr}};
    if (done && incomplete) {
      o["incomplete_details"] = json::object{{"reason", Sv(reason)}};
    } else {
      o["incomplete_details"] = nullptr;
    }
    o["instructions"] = nullptr;
    if (p.req.max_tokens) {
      o["max_output_tokens"] = *p.req.max_tokens;
    } else {
      o["max_output_tokens"] = nullptr;
    }
    o["model"] = Sv(p.model);
    o["output"] = done ? json::array{item(true)} : json::array();
    o["parallel_tool_calls"] = true;
    o["previous_response_id"] = nullptr;
    o["reasoning"] = json::object{{"effort", nullptr}, {"summary", nullptr}};
    o["service_tier"] = "default";
    o["store"] = false;
    o["text"] = json::object{{"format", json::object{{"type", "text"}}}};
    o["tool_choice"] = "auto";
    o["tools"] = json::array();
    o["truncation"] = "disabled";
    if (done && p.opts.report_usage) {
      o["usage"] = ResponsesUsage(p);
    } else {
      o["usage"] = nullptr;
    }
    o["user"] = nullptr;
    o["metadata"] = json::object();
    return o;
  };

  if (!p.req.stream) {
    r.content_type = kJson;
    r.headers_at = p.NonStreamAt();
    Push(r, p.NonStreamAt(), json::serialize(response(true)));
    return r;
  }
  r.content_type = kSse;
  r.headers_at = p.opts.latency;
  int64_t seq = 0;
  auto event = [&](core::Nanos at, std::string_view type, json::object fields) {
    json::object o{{"type", Sv(type)}, {"sequence_number", seq++}};
    for (auto& kv : fields) o[kv.key()] = std::move(kv.value());
    Push(r, at, SseEvent(type, json::serialize(o)));
  };
  const core::Nanos start = p.opts.latency;
  event(start, "response.created", {{"response", response(false)}});
  event(start, "response.in_progress", {{"response", response(false)}});
  event(start, "response.output_item.added", {{"output_index", 0}, {"item", item(false)}});
  if (!p.tool_call) {
    event(start, "response.content_part.added",
          {{"item_id", Sv(item_id)},
           {"output_index", 0},
           {"content_index", 0},
           {"part", text_part("")}});
  }
  for (size_t i = 0; i < p.emitted; ++i) {
    if (p.tool_call) {
      event(p.PieceAt(i), "response.function_call_arguments.delta",
            {{"item_id", Sv(item_id)}, {"output_index", 0}, {"delta", Sv(p.pieces[i])}});
    } else {
      event(p.PieceAt(i), "response.output_text.delta",
            {{"item_id", Sv(item_id)},
             {"output_index", 0},
             {"content_index", 0},
             {"delta", Sv(p.pieces[i])},
             {"logprobs", json::array()}});
    }
  }
  if (p.truncated) return r;
  const core::Nanos end = p.StreamEnd();
  if (p.tool_call) {
    event(end, "response.function_call_arguments.done",
          {{"item_id", Sv(item_id)}, {"output_index", 0}, {"arguments", Sv(p.tool_args)}});
  } else {
    const std::string text = p.EmittedText();
    event(end, "response.output_text.done",
          {{"item_id", Sv(item_id)},
           {"output_index", 0},
           {"content_index", 0},
           {"text", Sv(text)},
           {"logprobs", json::array()}});
    event(end, "response.content_part.done",
          {{"item_id", Sv(item_id)},
           {"output_index", 0},
           {"content_index", 0},
           {"part", text_part(text)}});
  }
  event(end, "response.output_item.done", {{"output_index", 0}, {"item", item(true)}});
  event(end, incomplete ? "response.incomplete" : "response.completed",
        {{"response", response(true)}});
  return r;
}

// ---- Anthropic Messages ----

SimResponse RenderMessages(const Plan& p) {
  SimResponse r;
  r.model = p.model;
  r.finish_reason = std::string(AnthropicStop(p.finish));
  const std::string id = "msg_01" + p.id;
  const std::string tool_id = "toolu_01" + p.call_id;
  if (!p.req.stream) {
    json::object block;
    if (p.tool_call) {
      block = json::object{{"type", "tool_use"},
                           {"id", Sv(tool_id)},
                           {"name", Sv(p.tool_name)},
                           {"input", ArgumentsValue(p)}};
    } else {
      block = json::object{{"type", "text"}, {"text", Sv(p.EmittedText())}};
    }
    json::object body{{"id", Sv(id)},
                      {"type", "message"},
                      {"role", "assistant"},
                      {"model", Sv(p.model)},
                      {"content", json::array{std::move(block)}},
                      {"stop_reason", Sv(r.finish_reason)},
                      {"stop_sequence", nullptr}};
    if (p.opts.report_usage) body["usage"] = AnthropicUsage(p, p.visible_tokens);
    r.content_type = kJson;
    r.headers_at = p.NonStreamAt();
    Push(r, p.NonStreamAt(), json::serialize(body));
    return r;
  }
  r.content_type = kSse;
  r.headers_at = p.opts.latency;
  auto event = [&](core::Nanos at, std::string_view type, json::object o) {
    Push(r, at, SseEvent(type, json::serialize(o)));
  };
  const core::Nanos start = p.opts.latency;
  json::object message{{"id", Sv(id)},
                       {"type", "message"},
                       {"role", "assistant"},
                       {"model", Sv(p.model)},
                       {"content", json::array()},
                       {"stop_reason", nullptr},
                       {"stop_sequence", nullptr}};
  // Like the real API, message_start reports the input side and a provisional output count;
  // the final output count comes in message_delta.
  if (p.opts.report_usage)
    message["usage"] = AnthropicUsage(p, std::min<int64_t>(1, p.visible_tokens));
  event(start, "message_start", {{"type", "message_start"}, {"message", std::move(message)}});
  json::object block;
  if (p.tool_call) {
    block = json::object{{"type", "tool_use"},
                         {"id", Sv(tool_id)},
                         {"name", Sv(p.tool_name)},
                         {"input", json::object()}};
  } else {
    block = json::object{{"type", "text"}, {"text", ""}};
  }
  event(start, "content_block_start",
        {{"type", "content_block_start"}, {"index", 0}, {"content_block", std::move(block)}});
  event(start, "ping", {{"type", "ping"}});
  for (size_t i = 0; i < p.emitted; ++i) {
    json::object delta =
        p.tool_call ? json::object{{"type", "input_json_delta"}, {"partial_json", Sv(p.pieces[i])}}
                    : json::object{{"type", "text_delta"}, {"text", Sv(p.pieces[i])}};
    event(p.PieceAt(i), "content_block_delta",
          {{"type", "content_block_delta"}, {"index", 0}, {"delta", std::move(delta)}});
  }
  if (p.truncated) return r;
  const core::Nanos end = p.StreamEnd();
  event(end, "content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
  json::object md{
      {"type", "message_delta"},
      {"delta", json::object{{"stop_reason", Sv(r.finish_reason)}, {"stop_sequence", nullptr}}}};
  if (p.opts.report_usage) md["usage"] = json::object{{"output_tokens", p.visible_tokens}};
  event(end, "message_delta", std::move(md));
  event(end, "message_stop", {{"type", "message_stop"}});
  return r;
}

// ---- OpenAI embeddings ----

namespace {

void AppendBase64(std::string& out, const unsigned char* data, size_t n) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  if (i < n) {
    uint32_t v = uint32_t{data[i]} << 16;
    if (i + 1 < n) v |= uint32_t{data[i + 1]} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
}

// A unit vector that depends only on (seed, input): the same text always embeds the same.
std::vector<float> EmbeddingVector(uint64_t seed, std::string_view key, int dims) {
  Rng rng(seed, Fnv1a(key), 5);
  std::vector<float> v(static_cast<size_t>(dims));
  double norm = 0;
  for (auto& x : v) {
    x = static_cast<float>(rng.Uniform01() * 2.0 - 1.0);
    norm += static_cast<double>(x) * x;
  }
  norm = std::sqrt(norm);
  if (norm > 0) {
    for (auto& x : v) x = static_cast<float>(x / norm);
  }
  return v;
}

}  // namespace

SimResponse RenderEmbeddings(const Plan& p) {
  SimResponse r;
  r.model = p.model;
  r.content_type = kJson;
  const int dims = p.req.dimensions.value_or(p.opts.embedding_dims);
  std::string body = R"({"object":"list","data":[)";
  for (size_t i = 0; i < p.req.embedding_inputs.size(); ++i) {
    if (i > 0) body.push_back(',');
    body += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    const std::vector<float> v = EmbeddingVector(p.opts.seed, p.req.embedding_inputs[i].key, dims);
    if (p.req.base64) {
      std::string bytes;
      bytes.reserve(v.size() * 4);
      for (float f : v) {  // little-endian float32, as the API sends
        uint32_t u = 0;
        std::memcpy(&u, &f, sizeof u);
        for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((u >> (8 * b)) & 0xFF));
      }
      body.push_back('"');
      AppendBase64(body, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
      body.push_back('"');
    } else {
      body.push_back('[');
      std::array<char, 32> buf{};
      for (size_t j = 0; j < v.size(); ++j) {
        if (j > 0) body.push_back(',');
        auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v[j]);
        body.append(buf.data(), res.ptr);
      }
      body.push_back(']');
    }
    body.push_back('}');
  }
  body += R"(],"model":)" + json::serialize(json::value(Sv(p.model)));
  if (p.opts.report_usage) {
    body += R"(,"usage":{"prompt_tokens":)" + std::to_string(p.prompt_tokens) +
            R"(,"total_tokens":)" + std::to_string(p.prompt_tokens) + "}";
  }
  body += "}";
  r.headers_at = p.opts.latency;
  Push(r, p.opts.latency, std::move(body));
  return r;
}

// ---- Models list and errors ----

SimResponse RenderModels(const SimOptions& opts) {
  static constexpr std::array<std::string_view, 6> kModels = {
      "sim/gpt-4o",           "sim/gpt-4o-mini",           "sim/o3-mini", "sim/claude-sonnet-4-5",
      "sim/claude-haiku-4-5", "sim/text-embedding-3-small"};
  json::array data;
  for (std::string_view m : kModels) {
    data.push_back(json::object{{"id", Sv(m)},
                                {"object", "model"},
                                {"created", opts.created_unix_seconds},
                                {"owned_by", "llmscope-simulator"}});
  }
  SimResponse r;
  r.content_type = kJson;
  r.headers_at = opts.latency;
  Push(r, opts.latency,
       json::serialize(json::object{{"object", "list"}, {"data", std::move(data)}}));
  return r;
}

SimResponse RenderError(core::Endpoint endpoint, ErrorKind kind, std::string_view message,
                        const SimOptions& opts, std::string_view request_id) {
  const bool anthropic = endpoint == core::Endpoint::kMessages;
  int status = 500;
  std::string_view type = anthropic ? "api_error" : "server_error";
  json::value code = nullptr;
  std::string_view text = "The server had an error while processing your request (simulated).";
  switch (kind) {
    case ErrorKind::kRateLimit:
      status = 429;
      type = anthropic ? "rate_limit_error" : "requests";
      if (!anthropic) code = "rate_limit_exceeded";
      text = anthropic ? "Number of requests has exceeded your rate limit (simulated)."
                       : "Rate limit reached for requests (simulated). Please try again in 1s.";
      break;
    case ErrorKind::kOverloaded:
      status = anthropic ? 529 : 503;
      type = anthropic ? "overloaded_error" : "server_error";
      text = anthropic ? "Overloaded (simulated)."
                       : "The engine is currently overloaded, please try again later (simulated).";
      break;
    case ErrorKind::kBadRequest:
      status = 400;
      type = "invalid_request_error";
      text = "Invalid request (simulated).";
      break;
    default:  // kServerError, and kinds without an HTTP status
      break;
  }
  if (!message.empty()) text = message;
  json::object body;
  if (anthropic) {
    body = json::object{{"type", "error"},
                        {"error", json::object{{"type", Sv(type)}, {"message", Sv(text)}}},
                        {"request_id", Sv(request_id)}};
  } else {
    body = json::object{{"error", json::object{{"message", Sv(text)},
                                               {"type", Sv(type)},
                                               {"param", nullptr},
                                               {"code", std::move(code)}}}};
  }
  SimResponse r;
  r.status = status;
  r.content_type = kJson;
  r.headers_at = opts.latency;
  Push(r, opts.latency, json::serialize(body));
  return r;
}

}  // namespace llmscope::simulator::internal
