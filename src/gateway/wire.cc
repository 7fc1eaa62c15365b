#include "gateway/wire.h"

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <utility>

#include "core/ascii.h"
#include "core/json_string.h"

namespace llmscope::gateway {
namespace json = boost::json;
namespace {

// ---------------------------------------------------------------------------------------
// Small helpers.

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view TrimJsonSpace(std::string_view s) {
  while (!s.empty() && IsJsonSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsJsonSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool StartsWithLower(std::string_view hay, size_t at, std::string_view lower_needle) {
  if (hay.size() - at < lower_needle.size()) return false;
  for (size_t k = 0; k < lower_needle.size(); ++k) {
    if (core::AsciiLower(hay[at + k]) != lower_needle[k]) return false;
  }
  return true;
}

// Whether an error body says the request broke a content policy: "content_filter" (Azure's
// code), "content_policy..." (OpenAI's code), "content policy" or "content management
// policy" (messages), in any case. One pass: every needle starts with "content".
bool MentionsContentPolicy(std::string_view body) {
  for (size_t i = 0; i < body.size(); ++i) {
    if (core::AsciiLower(body[i]) != 'c' || !StartsWithLower(body, i, "content")) continue;
    const size_t rest = i + 7;
    if (StartsWithLower(body, rest, "_filter") || StartsWithLower(body, rest, "_policy") ||
        StartsWithLower(body, rest, " policy") ||
        StartsWithLower(body, rest, " management policy")) {
      return true;
    }
  }
  return false;
}

using core::AppendJsonString;

void AppendJsonStringOrNull(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.append("null");
  } else {
    AppendJsonString(out, s);
  }
}

// ---------------------------------------------------------------------------------------
// Request parsing: a SAX handler that validates and extracts the few fields we need in one
// pass, without building a DOM (request bodies carry whole conversations).

enum class TopField : uint8_t {
  kOther,
  kModel,
  kStream,
  kStreamOptions,
  kMaxTokens,            // max_tokens
  kMaxCompletionTokens,  // chat: max_completion_tokens
  kMaxOutputTokens,      // responses: max_output_tokens
  kTemperature,
  kTopP,
  kUser,
  kMetadata,  // anthropic: metadata.user_id
  kText,      // prompt text: messages, prompt, input, system, instructions
};

enum class ValueKind : uint8_t { kObject, kArray, kString, kInt, kDouble, kBool, kNull };

class RequestHandler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr size_t kMaxDepth = 128;  // the parser's own limit is set above it

  RequestHandler(Dialect dialect, RequestFacts* facts) : dialect_(dialect), facts_(facts) {}

  const std::string& error() const { return error_; }
  bool model_seen() const { return model_seen_; }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) { return Open(ValueKind::kObject, false, ec); }
  bool on_array_begin(json::error_code& ec) { return Open(ValueKind::kArray, true, ec); }
  bool on_object_end(std::size_t, json::error_code&) { return Close(); }
  bool on_array_end(std::size_t, json::error_code&) { return Close(); }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    AppendKey(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    AppendKey(s);
    ClassifyKey();
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code& ec) {
    if (!in_string_ && !BeginString(ec)) return false;
    in_string_ = true;
    StringBytes(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (!in_string_ && !BeginString(ec)) return false;
    in_string_ = false;
    StringBytes(s);
    string_target_ = nullptr;
    return true;
  }

  bool on_int64(int64_t v, json::string_view, json::error_code& ec) {
    if (!Value(ValueKind::kInt, ec)) return false;
    return Integer(static_cast<double>(v), v, true, ec);
  }
  bool on_uint64(uint64_t v, json::string_view, json::error_code& ec) {
    if (!Value(ValueKind::kInt, ec)) return false;
    const bool fits = v <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    return Integer(static_cast<double>(v), fits ? static_cast<int64_t>(v) : 0, fits, ec);
  }
  bool on_double(double v, json::string_view, json::error_code& ec) {
    if (!Value(ValueKind::kDouble, ec)) return false;
    const bool integral = std::trunc(v) == v && std::fabs(v) < 9.0e18;
    return Integer(v, integral ? static_cast<int64_t>(v) : 0, integral, ec);
  }
  bool on_bool(bool b, json::error_code& ec) {
    if (!Value(ValueKind::kBool, ec)) return false;
    if (depth_ == 1 && top_ == TopField::kStream) facts_->stream = b;
    if (depth_ == 2 && top_ == TopField::kStreamOptions && key_is_include_usage_) {
      facts_->include_usage = b;
    }
    return true;
  }
  bool on_null(json::error_code& ec) { return Value(ValueKind::kNull, ec); }

 private:
  bool Fail(std::string message, json::error_code& ec) {
    error_ = std::move(message);
    ec = json::error::exception;  // any error: ParseRequest reports error_ instead
    return false;
  }

  static std::string FieldName(TopField f) {
    switch (f) {
      case TopField::kModel:
        return "model";
      case TopField::kStream:
        return "stream";
      case TopField::kStreamOptions:
        return "stream_options";
      case TopField::kMaxTokens:
        return "max_tokens";
      case TopField::kMaxCompletionTokens:
        return "max_completion_tokens";
      case TopField::kMaxOutputTokens:
        return "max_output_tokens";
      case TopField::kTemperature:
        return "temperature";
      case TopField::kTopP:
        return "top_p";
      case TopField::kUser:
        return "user";
      case TopField::kMetadata:
        return "metadata";
      default:
        return "?";
    }
  }

  void AppendKey(std::string_view s) {
    const size_t room = key_.size() - key_len_;
    if (s.size() > room) {
      key_len_ = key_.size();  // too long for any key we know: it matches none
      key_overflow_ = true;
      return;
    }
    std::memcpy(key_.data() + key_len_, s.data(), s.size());
    key_len_ += s.size();
  }

  void ClassifyKey() {
    const std::string_view key =
        key_overflow_ ? std::string_view() : std::string_view(key_.data(), key_len_);
    key_overflow_ = false;
    key_len_ = 0;  // the next key starts afresh
    if (depth_ == 1) {
      top_ = ClassifyTop(key);
      key_is_include_usage_ = key_is_user_id_ = key_counts_ = false;
      return;
    }
    if (depth_ == 2) {
      key_is_include_usage_ = top_ == TopField::kStreamOptions && key == "include_usage";
      key_is_user_id_ = top_ == TopField::kMetadata && key == "user_id";
    }
    if (top_ == TopField::kText) {
      key_counts_ = key == "content" || key == "text" || key == "arguments" || key == "output" ||
                    key == "thinking" || key == "refusal";
    }
  }

  TopField ClassifyTop(std::string_view key) const {
    if (key == "model") return TopField::kModel;
    if (key == "stream") return TopField::kStream;
    if (key == "temperature") return TopField::kTemperature;
    if (key == "top_p") return TopField::kTopP;
    switch (dialect_) {
      case Dialect::kChatCompletions:
        if (key == "messages") return TopField::kText;
        if (key == "stream_options") return TopField::kStreamOptions;
        if (key == "max_tokens") return TopField::kMaxTokens;
        if (key == "max_completion_tokens") return TopField::kMaxCompletionTokens;
        if (key == "user") return TopField::kUser;
        break;
      case Dialect::kCompletions:
        if (key == "prompt") return TopField::kText;
        if (key == "stream_options") return TopField::kStreamOptions;
        if (key == "max_tokens") return TopField::kMaxTokens;
        if (key == "user") return TopField::kUser;
        break;
      case Dialect::kEmbeddings:
        if (key == "input") return TopField::kText;
        if (key == "user") return TopField::kUser;
        break;
      case Dialect::kResponses:
        if (key == "input" || key == "instructions") return TopField::kText;
        if (key == "max_output_tokens") return TopField::kMaxOutputTokens;
        if (key == "user") return TopField::kUser;
        break;
      case Dialect::kAnthropicMessages:
        if (key == "messages" || key == "system") return TopField::kText;
        if (key == "max_tokens") return TopField::kMaxTokens;
        if (key == "metadata") return TopField::kMetadata;
        break;
    }
    return TopField::kOther;
  }

  // Type-checks the value about to start at the current position.
  bool Value(ValueKind kind, json::error_code& ec) {
    if (depth_ == 0) {
      if (kind != ValueKind::kObject) return Fail("request body must be a JSON object", ec);
      return true;
    }
    if (kind == ValueKind::kNull) return true;  // null is absent, for every field
    if (depth_ == 1) {
      switch (top_) {
        case TopField::kModel:
          if (kind != ValueKind::kString) return Fail("field 'model' must be a string", ec);
          model_seen_ = true;
          break;
        case TopField::kStream:
          if (kind != ValueKind::kBool) return Fail("field 'stream' must be a boolean", ec);
          break;
        case TopField::kStreamOptions:
          if (kind != ValueKind::kObject) {
            return Fail("field 'stream_options' must be an object", ec);
          }
          break;
        case TopField::kMaxTokens:
        case TopField::kMaxCompletionTokens:
        case TopField::kMaxOutputTokens:
          if (kind != ValueKind::kInt && kind != ValueKind::kDouble) {
            return Fail("field '" + FieldName(top_) + "' must be an integer", ec);
          }
          break;
        case TopField::kTemperature:
        case TopField::kTopP:
          if (kind != ValueKind::kInt && kind != ValueKind::kDouble) {
            return Fail("field '" + FieldName(top_) + "' must be a number", ec);
          }
          break;
        case TopField::kUser:
          if (kind != ValueKind::kString) return Fail("field 'user' must be a string", ec);
          break;
        default:
          break;
      }
      return true;
    }
    if (depth_ == 2) {
      if (key_is_include_usage_ && !in_array_[2] && kind != ValueKind::kBool) {
        return Fail("field 'stream_options.include_usage' must be a boolean", ec);
      }
      if (key_is_user_id_ && !in_array_[2] && kind != ValueKind::kString) {
        return Fail("field 'metadata.user_id' must be a string", ec);
      }
    }
    return true;
  }

  bool Open(ValueKind kind, bool is_array, json::error_code& ec) {
    if (!Value(kind, ec)) return false;
    if (depth_ >= kMaxDepth) {
      return Fail("request body nests deeper than " + std::to_string(kMaxDepth) + " levels", ec);
    }
    ++depth_;
    in_array_[depth_] = is_array;
    return true;
  }

  bool Close() {
    --depth_;
    return true;
  }

  bool BeginString(json::error_code& ec) {
    if (!Value(ValueKind::kString, ec)) return false;
    string_target_ = nullptr;
    counting_ = false;
    if (depth_ == 1) {
      if (top_ == TopField::kModel) {
        string_target_ = &facts_->model;
      } else if (top_ == TopField::kUser) {
        string_target_ = &facts_->user;
      }
    } else if (depth_ == 2 && key_is_user_id_ && !in_array_[2]) {
      string_target_ = &facts_->user;
    }
    if (string_target_ != nullptr) string_target_->clear();
    if (top_ == TopField::kText && depth_ >= 1) {
      counting_ = depth_ == 1 || in_array_[depth_] || key_counts_;
    }
    return true;
  }

  void StringBytes(std::string_view s) {
    if (string_target_ != nullptr) string_target_->append(s);
    if (counting_) facts_->prompt_chars += s.size();
  }

  bool Integer(double as_double, int64_t as_int, bool is_integral, json::error_code& ec) {
    if (depth_ == 1) {
      switch (top_) {
        case TopField::kMaxTokens:
        case TopField::kMaxCompletionTokens:
        case TopField::kMaxOutputTokens:
          if (!is_integral) {
            return Fail("field '" + FieldName(top_) + "' must be an integer", ec);
          }
          if (top_ == TopField::kMaxCompletionTokens) {
            max_completion_tokens_seen_ = true;
            facts_->max_tokens = as_int;
          } else if (!max_completion_tokens_seen_) {
            facts_->max_tokens = as_int;
          }
          break;
        case TopField::kTemperature:
          facts_->temperature = as_double;
          break;
        case TopField::kTopP:
          facts_->top_p = as_double;
          break;
        default:
          break;
      }
    } else if (top_ == TopField::kText && in_array_[depth_] &&
               (dialect_ == Dialect::kCompletions || dialect_ == Dialect::kEmbeddings)) {
      facts_->prompt_chars += 4;  // a token id: one token, ~4 characters
    }
    return true;
  }

  Dialect dialect_;
  RequestFacts* facts_;
  std::string error_;
  size_t depth_ = 0;  // containers open; the root object is depth 1
  std::array<bool, kMaxDepth + 2> in_array_{};
  TopField top_ = TopField::kOther;  // the root member being parsed
  std::array<char, 32> key_{};
  size_t key_len_ = 0;
  bool key_overflow_ = false;
  bool key_is_include_usage_ = false;
  bool key_is_user_id_ = false;
  bool key_counts_ = false;  // inside a kText field: the current key names prompt text
  std::string* string_target_ = nullptr;
  bool in_string_ = false;  // between a string's first part and its end
  bool counting_ = false;
  bool model_seen_ = false;
  bool max_completion_tokens_seen_ = false;
};

// ---------------------------------------------------------------------------------------
// DOM helpers for responses (small JSON documents, parsed into an arena).

const json::value* Find(const json::object& o, std::string_view key) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  return it == o.end() ? nullptr : &it->value();
}

const json::object* FindObject(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  return v == nullptr ? nullptr : v->if_object();
}

const json::array* FindArray(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  return v == nullptr ? nullptr : v->if_array();
}

std::string_view FindString(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return {};
  const json::string* s = v->if_string();
  return s == nullptr ? std::string_view() : std::string_view(s->data(), s->size());
}

std::optional<int64_t> FindInt(const json::object& o, std::string_view key) {
  const json::value* v = Find(o, key);
  if (v == nullptr) return std::nullopt;
  if (const int64_t* i = v->if_int64()) return *i;
  if (const uint64_t* u = v->if_uint64()) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
    return std::nullopt;
  }
  if (const double* d = v->if_double()) {
    if (std::isfinite(*d) && std::fabs(*d) < 9.0e18) return static_cast<int64_t>(*d);
  }
  return std::nullopt;
}

int64_t IntOr0(const json::object* o, std::string_view key) {
  if (o == nullptr) return 0;
  return FindInt(*o, key).value_or(0);
}

// Records text the model generated; true when non-empty.
bool AddContent(ResponseFacts& f, std::string_view text) {
  if (text.empty()) return false;
  f.content_chars += text.size();
  f.saw_content = true;
  return true;
}

void SetModel(ResponseFacts& f, std::string_view model) {
  if (!model.empty() && f.response_model != model) f.response_model.assign(model);
}

void AddFinishReason(ResponseFacts& f, std::string_view reason) {
  if (reason.empty()) return;
  f.finish_reasons.emplace_back(reason);
  if (reason == "content_filter" || reason == "refusal") f.content_filtered = true;
}

// An error object in any provider's shape: {"type"|"code", "message"}.
void TakeError(ResponseFacts& f, const json::object& err) {
  std::string_view type = FindString(err, "type");
  if (type.empty()) type = FindString(err, "code");
  if (type.empty()) {
    if (const json::value* code = Find(err, "code"); code != nullptr && code->is_number()) {
      f.error_type = json::serialize(*code);
    }
  } else {
    f.error_type.assign(type);
  }
  if (f.error_type.empty()) f.error_type = "error";
  f.error_message.assign(FindString(err, "message"));
}

// A top-level error: OpenAI {"error":{...}}, Anthropic {"type":"error","error":{...}}, or
// the flat {"object":"error","message":...,"type":...,"code":400} of vLLM and others.
bool TakeTopLevelError(ResponseFacts& f, const json::object& o) {
  if (const json::object* err = FindObject(o, "error")) {
    TakeError(f, *err);
    return true;
  }
  if (FindString(o, "object") == "error") {
    TakeError(f, o);
    return true;
  }
  return false;
}

// OpenAI chat/completions/embeddings `usage`.
std::optional<core::TokenUsage> OpenAiUsage(const json::object& u) {
  const std::optional<int64_t> prompt = FindInt(u, "prompt_tokens");
  const std::optional<int64_t> completion = FindInt(u, "completion_tokens");
  if (!prompt && !completion) return std::nullopt;
  core::TokenUsage usage;
  usage.input = prompt.value_or(0);
  usage.output = completion.value_or(0);
  usage.cache_read = IntOr0(FindObject(u, "prompt_tokens_details"), "cached_tokens");
  usage.reasoning = IntOr0(FindObject(u, "completion_tokens_details"), "reasoning_tokens");
  return usage;
}

// Responses API `usage`.
std::optional<core::TokenUsage> ResponsesUsage(const json::object& u) {
  const std::optional<int64_t> input = FindInt(u, "input_tokens");
  const std::optional<int64_t> output = FindInt(u, "output_tokens");
  if (!input && !output) return std::nullopt;
  core::TokenUsage usage;
  usage.input = input.value_or(0);
  usage.output = output.value_or(0);
  usage.cache_read = IntOr0(FindObject(u, "input_tokens_details"), "cached_tokens");
  usage.reasoning = IntOr0(FindObject(u, "output_tokens_details"), "reasoning_tokens");
  return usage;
}

// Anthropic usage fields as sent; a stream reports them across two events.
struct AnthropicCounts {
  int64_t input = 0;  // excludes cache reads and writes
  int64_t cache_read = 0;
  int64_t cache_creation = 0;
  int64_t output = 0;
  bool any = false;

  // Takes the fields present in `u` (each is a running total, so later values replace).
  void Merge(const json::object& u) {
    auto take = [&](std::string_view key, int64_t& field) {
      if (std::optional<int64_t> v = FindInt(u, key)) {
        field = *v;
        any = true;
      }
    };
    take("input_tokens", input);
    take("cache_read_input_tokens", cache_read);
    take("cache_creation_input_tokens", cache_creation);
    take("output_tokens", output);
  }

  std::optional<core::TokenUsage> Normalized() const {
    if (!any) return std::nullopt;
    core::TokenUsage usage;
    usage.input = input + cache_read + cache_creation;
    usage.cache_read = cache_read;
    usage.cache_write = cache_creation;
    usage.output = output;
    return usage;
  }
};

// The text of a chat message or delta: content (string or parts), refusal, reasoning,
// tool calls. Returns true when any was non-empty.
bool ChatMessageContent(ResponseFacts& f, const json::object& m) {
  bool content = false;
  if (const json::value* c = Find(m, "content")) {
    if (const json::string* s = c->if_string()) {
      content |= AddContent(f, std::string_view(s->data(), s->size()));
    } else if (const json::array* parts = c->if_array()) {
      for (const json::value& part : *parts) {
        if (const json::object* p = part.if_object())
          content |= AddContent(f, FindString(*p, "text"));
      }
    }
  }
  content |= AddContent(f, FindString(m, "refusal"));
  // DeepSeek, vLLM and OpenRouter stream reasoning under these names.
  content |= AddContent(f, FindString(m, "reasoning_content"));
  content |= AddContent(f, FindString(m, "reasoning"));
  if (const json::array* calls = FindArray(m, "tool_calls")) {
    for (const json::value& call : *calls) {
      const json::object* c = call.if_object();
      if (c == nullptr) continue;
      if (const json::object* fn = FindObject(*c, "function")) {
        content |= AddContent(f, FindString(*fn, "name"));
        content |= AddContent(f, FindString(*fn, "arguments"));
      }
    }
  }
  if (const json::object* fn = FindObject(m, "function_call")) {  // deprecated form
    content |= AddContent(f, FindString(*fn, "name"));
    content |= AddContent(f, FindString(*fn, "arguments"));
  }
  return content;
}

// One element of `choices` (chat and completions, streamed or not). Returns true when it
// carried generated content.
bool OpenAiChoice(ResponseFacts& f, Dialect d, const json::object& choice, bool streamed) {
  bool content = false;
  if (d == Dialect::kCompletions) {
    content = AddContent(f, FindString(choice, "text"));
  } else if (const json::object* m = FindObject(choice, streamed ? "delta" : "message")) {
    content = ChatMessageContent(f, *m);
  }
  AddFinishReason(f, FindString(choice, "finish_reason"));
  return content;
}

// Items of a Responses API `output` array.
void ResponsesOutput(ResponseFacts& f, const json::array& output) {
  for (const json::value& item_value : output) {
    const json::object* item = item_value.if_object();
    if (item == nullptr) continue;
    const std::string_view type = FindString(*item, "type");
    if (type == "message") {
      if (const json::array* parts = FindArray(*item, "content")) {
        for (const json::value& part_value : *parts) {
          const json::object* part = part_value.if_object();
          if (part == nullptr) continue;
          AddContent(f, FindString(*part, "text"));
          AddContent(f, FindString(*part, "refusal"));
        }
      }
    } else if (type == "function_call" || type == "custom_tool_call") {
      AddContent(f, FindString(*item, "name"));
      AddContent(f, FindString(*item, "arguments"));
      AddContent(f, FindString(*item, "input"));
    } else if (type == "reasoning") {
      if (const json::array* summary = FindArray(*item, "summary")) {
        for (const json::value& s : *summary) {
          if (const json::object* so = s.if_object()) AddContent(f, FindString(*so, "text"));
        }
      }
    }
  }
}

// A Responses API `response` object (a body, or the payload of a terminal stream event).
// With_content: count the generated output (not when the deltas were already counted).
void ResponsesObject(ResponseFacts& f, const json::object& r, bool with_content) {
  SetModel(f, FindString(r, "model"));
  if (const json::object* u = FindObject(r, "usage")) {
    if (std::optional<core::TokenUsage> usage = ResponsesUsage(*u)) f.usage = usage;
  }
  const std::string_view status = FindString(r, "status");
  if (status == "incomplete") {
    std::string_view reason;
    if (const json::object* details = FindObject(r, "incomplete_details")) {
      reason = FindString(*details, "reason");
    }
    AddFinishReason(f, reason.empty() ? status : reason);
  } else if (!status.empty() && status != "in_progress" && status != "queued") {
    AddFinishReason(f, status);
  }
  if (const json::object* err = FindObject(r, "error")) TakeError(f, *err);
  if (with_content) {
    if (const json::array* output = FindArray(r, "output")) ResponsesOutput(f, *output);
  }
}

// Anthropic content blocks (a body's `content`, or one content_block_start's block).
bool AnthropicBlock(ResponseFacts& f, const json::object& block) {
  const std::string_view type = FindString(block, "type");
  if (type == "text") return AddContent(f, FindString(block, "text"));
  if (type == "thinking") return AddContent(f, FindString(block, "thinking"));
  if (type == "tool_use" || type == "server_tool_use") {
    bool content = AddContent(f, FindString(block, "name"));
    if (const json::object* input = FindObject(block, "input"); input && !input->empty()) {
      content |= AddContent(f, json::serialize(*input));
    }
    return content;
  }
  return false;
}

// Parses `text` with storage `sp`. The document, on success, is p.release() (which must be
// move-constructed from, never assigned: assignment would copy it out of the arena).
bool ParseJson(json::parser& p, json::storage_ptr sp, std::string_view text) {
  json::error_code ec;
  p.reset(std::move(sp));
  p.write(text.data(), text.size(), ec);
  return !ec;
}

json::parse_options ResponseParseOptions() {
  json::parse_options opts;
  opts.max_depth = 128;
  opts.allow_invalid_utf8 = true;  // a provider's bad byte must not cost us the usage
  return opts;
}

}  // namespace

// ---------------------------------------------------------------------------------------

Dialect DialectFor(core::Endpoint endpoint) {
  switch (endpoint) {
    case core::Endpoint::kChatCompletions:
      return Dialect::kChatCompletions;
    case core::Endpoint::kCompletions:
      return Dialect::kCompletions;
    case core::Endpoint::kEmbeddings:
      return Dialect::kEmbeddings;
    case core::Endpoint::kResponses:
      return Dialect::kResponses;
    case core::Endpoint::kMessages:
      return Dialect::kAnthropicMessages;
    case core::Endpoint::kModels:
      return Dialect::kChatCompletions;
  }
  return Dialect::kChatCompletions;
}

std::string_view DialectName(Dialect dialect) {
  switch (dialect) {
    case Dialect::kChatCompletions:
      return "chat_completions";
    case Dialect::kCompletions:
      return "completions";
    case Dialect::kEmbeddings:
      return "embeddings";
    case Dialect::kResponses:
      return "responses";
    case Dialect::kAnthropicMessages:
      return "anthropic_messages";
  }
  return "unknown";
}

core::Result<RequestFacts> ParseRequest(Dialect dialect, std::string_view body) {
  if (TrimJsonSpace(body).empty()) return core::InvalidArgument("request body is empty");
  try {
    RequestFacts facts;
    json::parse_options opts;
    opts.max_depth = RequestHandler::kMaxDepth + 1;  // so that the handler's message wins
    json::basic_parser<RequestHandler> parser(opts, dialect, &facts);
    json::error_code ec;
    const size_t n = parser.write_some(false, body.data(), body.size(), ec);
    const RequestHandler& h = parser.handler();
    if (!h.error().empty()) return core::InvalidArgument(h.error());
    if (ec) {
      return core::InvalidArgument("request body is not valid JSON: " + ec.message() +
                                   " at offset " + std::to_string(n));
    }
    if (n != body.size()) {
      return core::InvalidArgument("request body is not valid JSON: extra data at offset " +
                                   std::to_string(n));
    }
    if (!h.model_seen()) return core::InvalidArgument("missing required field 'model'");
    if (facts.model.empty()) return core::InvalidArgument("field 'model' must not be empty");
    return facts;
  } catch (const std::exception& e) {  // allocation failure: nothing else throws here
    return core::Internal(std::string("parsing the request body failed: ") + e.what());
  }
}

std::string PrepareUpstreamBody(Dialect dialect, std::string_view body, const RequestFacts& facts,
                                bool* injected_usage) {
  if (injected_usage != nullptr) *injected_usage = false;
  if ((dialect != Dialect::kChatCompletions && dialect != Dialect::kCompletions) || !facts.stream ||
      facts.include_usage) {
    return std::string(body);
  }
  static constexpr std::string_view kMember = R"("stream_options":{"include_usage":true})";
  static constexpr std::string_view kKey = "\"stream_options\"";
  if (memmem(body.data(), body.size(), kKey.data(), kKey.size()) == nullptr) {
    // No stream_options anywhere: insert the member right after the opening brace.
    size_t open = 0;
    while (open < body.size() && IsJsonSpace(body[open])) ++open;
    if (open == body.size() || body[open] != '{') return std::string(body);
    size_t next = open + 1;
    while (next < body.size() && IsJsonSpace(body[next])) ++next;
    const bool empty_object = next < body.size() && body[next] == '}';
    std::string out;
    out.reserve(body.size() + kMember.size() + 1);
    out.append(body.substr(0, open + 1));
    out.append(kMember);
    if (!empty_object) out.push_back(',');
    out.append(body.substr(open + 1));
    if (injected_usage != nullptr) *injected_usage = true;
    return out;
  }
  // stream_options is present without include_usage: true (or the name appears only inside
  // some text): edit the document properly.
  try {
    json::error_code ec;
    json::value doc = json::parse(json::string_view(body.data(), body.size()), ec);
    json::object* root = ec ? nullptr : doc.if_object();
    if (root == nullptr) return std::string(body);
    json::value& options = (*root)["stream_options"];
    if (json::object* o = options.if_object()) {
      (*o)["include_usage"] = true;
    } else {
      options = json::object{{"include_usage", true}};
    }
    std::string out = json::serialize(doc);
    if (injected_usage != nullptr) *injected_usage = true;
    return out;
  } catch (const std::exception&) {  // allocation failure: send the body as the client wrote it
    return std::string(body);
  }
}

ResponseFacts ParseResponseBody(Dialect dialect, std::string_view body) {
  ResponseFacts f;
  try {
    alignas(16) unsigned char arena_buffer[4096];
    json::monotonic_resource arena(arena_buffer, sizeof(arena_buffer));
    unsigned char temp[1024];
    json::parser parser(json::storage_ptr(), ResponseParseOptions(), temp, sizeof(temp));
    if (!ParseJson(parser, &arena, body)) {
      f.malformed = true;
      return f;
    }
    const json::value doc = parser.release();
    if (!doc.is_object()) {
      f.malformed = true;
      return f;
    }
    const json::object& o = doc.get_object();
    f.terminated = true;
    if (TakeTopLevelError(f, o) && dialect != Dialect::kResponses) return f;
    SetModel(f, FindString(o, "model"));
    switch (dialect) {
      case Dialect::kChatCompletions:
      case Dialect::kCompletions:
        if (const json::array* choices = FindArray(o, "choices")) {
          for (const json::value& c : *choices) {
            if (const json::object* co = c.if_object()) OpenAiChoice(f, dialect, *co, false);
          }
        }
        [[fallthrough]];
      case Dialect::kEmbeddings:
        if (const json::object* u = FindObject(o, "usage")) f.usage = OpenAiUsage(*u);
        break;
      case Dialect::kResponses:
        ResponsesObject(f, o, /*with_content=*/true);
        break;
      case Dialect::kAnthropicMessages: {
        AddFinishReason(f, FindString(o, "stop_reason"));
        if (const json::array* blocks = FindArray(o, "content")) {
          for (const json::value& b : *blocks) {
            if (const json::object* bo = b.if_object()) AnthropicBlock(f, *bo);
          }
        }
        AnthropicCounts counts;
        if (const json::object* u = FindObject(o, "usage")) counts.Merge(*u);
        f.usage = counts.Normalized();
        break;
      }
    }
  } catch (const std::exception& e) {  // allocation failure
    f.malformed = true;
  }
  return f;
}

// ---------------------------------------------------------------------------------------

struct StreamObserver::Impl {
  Impl(Dialect d, bool strip)
      : dialect(d),
        strip_usage_only_chunk(strip),
        arena(arena_buffer, sizeof(arena_buffer)),
        parser(json::storage_ptr(), ResponseParseOptions(), parser_buffer, sizeof(parser_buffer)) {}

  Verdict OnEvent(const SseEvent& ev);
  Verdict OnOpenAi(std::string_view event, const json::object& o);
  Verdict OnResponses(std::string_view type, const json::object& o);
  Verdict OnAnthropic(std::string_view type, const json::object& o);

  Dialect dialect;
  bool strip_usage_only_chunk;
  ResponseFacts facts;
  AnthropicCounts anthropic;
  uint64_t malformed = 0;
  // The event JSON is parsed into this arena, released before each event: a typical event
  // needs no heap allocation at all.
  alignas(16) unsigned char arena_buffer[8192];
  json::monotonic_resource arena;
  unsigned char parser_buffer[1024];
  json::parser parser;
};

namespace {

// Position of `needle` in `hay`, or npos. glibc's memmem (two-way search): std::string_view::
// find anchors on the needle's first byte, and needles starting with '"' or ',' match
// dozens of times in every event, costing a memcmp per occurrence.
size_t FindBytes(std::string_view hay, std::string_view needle, size_t from = 0) {
  if (from > hay.size()) return std::string_view::npos;
  const void* p = memmem(hay.data() + from, hay.size() - from, needle.data(), needle.size());
  return p ? static_cast<size_t>(static_cast<const char*>(p) - hay.data()) : std::string_view::npos;
}

}  // namespace

StreamObserver::Verdict StreamObserver::Impl::OnEvent(const SseEvent& ev) {
  const std::string_view data = TrimJsonSpace(ev.data);
  if (data == "[DONE]") {  // OpenAI's end marker; the other dialects end with an event
    if (dialect == Dialect::kChatCompletions || dialect == Dialect::kCompletions ||
        dialect == Dialect::kEmbeddings) {
      facts.terminated = true;
    }
    return {};
  }
  if (data.empty()) return {};
  arena.release();
  if (!ParseJson(parser, &arena, data)) {
    ++malformed;
    return {};
  }
  const json::value doc = parser.release();
  if (!doc.is_object()) {
    ++malformed;
    return {};
  }
  const json::object& o = doc.get_object();
  switch (dialect) {
    case Dialect::kChatCompletions:
    case Dialect::kCompletions:
    case Dialect::kEmbeddings:
      return OnOpenAi(ev.event, o);
    case Dialect::kResponses: {
      std::string_view type = FindString(o, "type");
      return OnResponses(type.empty() ? ev.event : type, o);
    }
    case Dialect::kAnthropicMessages: {
      std::string_view type = FindString(o, "type");
      return OnAnthropic(type.empty() ? ev.event : type, o);
    }
  }
  return {};
}

StreamObserver::Verdict StreamObserver::Impl::OnOpenAi(std::string_view event,
                                                       const json::object& o) {
  Verdict v;
  if (TakeTopLevelError(facts, o)) return v;
  if (event == "error") {  // `event: error` with the error object as the whole payload
    TakeError(facts, o);
    return v;
  }
  SetModel(facts, FindString(o, "model"));
  bool has_choices = false;
  if (const json::array* choices = FindArray(o, "choices")) {
    has_choices = !choices->empty();
    for (const json::value& c : *choices) {
      if (const json::object* co = c.if_object())
        v.content |= OpenAiChoice(facts, dialect, *co, true);
    }
  }
  if (const json::object* u = FindObject(o, "usage")) {
    if (std::optional<core::TokenUsage> usage = OpenAiUsage(*u)) {
      facts.usage = usage;
      // The chunk llmscope asked for on the client's behalf: usage and no choices. A server
      // that puts usage on its last content chunk keeps that chunk.
      if (!has_choices && strip_usage_only_chunk) v.forward = false;
    }
  }
  return v;
}

StreamObserver::Verdict StreamObserver::Impl::OnResponses(std::string_view type,
                                                          const json::object& o) {
  Verdict v;
  if (type.size() > 6 && type.substr(type.size() - 6) == ".delta") {
    const std::string_view delta = FindString(o, "delta");
    if (delta.empty()) return v;
    v.content = true;
    facts.saw_content = true;
    // Text-like deltas count towards the output estimate; audio and the like do not.
    if (type == "response.output_text.delta" || type == "response.refusal.delta" ||
        type == "response.function_call_arguments.delta" ||
        type == "response.custom_tool_call_input.delta" ||
        type == "response.reasoning_summary_text.delta" ||
        type == "response.reasoning_text.delta" || type == "response.audio.transcript.delta") {
      facts.content_chars += delta.size();
    }
    return v;
  }
  if (type == "response.created" || type == "response.in_progress" || type == "response.queued") {
    if (const json::object* r = FindObject(o, "response")) SetModel(facts, FindString(*r, "model"));
    return v;
  }
  if (type == "response.completed" || type == "response.incomplete" || type == "response.failed") {
    facts.terminated = true;
    if (const json::object* r = FindObject(o, "response")) {
      ResponsesObject(facts, *r, /*with_content=*/false);
    }
    if (type == "response.failed" && facts.error_type.empty()) facts.error_type = "failed";
    return v;
  }
  if (type == "error") {
    // {"type":"error","code":...,"message":...}, or the error nested under "error".
    if (const json::object* err = FindObject(o, "error")) {
      TakeError(facts, *err);
    } else {
      std::string_view code = FindString(o, "code");
      facts.error_type.assign(code.empty() ? std::string_view("error") : code);
      facts.error_message.assign(FindString(o, "message"));
    }
  }
  return v;
}

StreamObserver::Verdict StreamObserver::Impl::OnAnthropic(std::string_view type,
                                                          const json::object& o) {
  Verdict v;
  if (type == "content_block_delta") {
    const json::object* delta = FindObject(o, "delta");
    if (delta == nullptr) return v;
    const std::string_view dtype = FindString(*delta, "type");
    if (dtype == "text_delta") {
      v.content = AddContent(facts, FindString(*delta, "text"));
    } else if (dtype == "input_json_delta") {
      v.content = AddContent(facts, FindString(*delta, "partial_json"));
    } else if (dtype == "thinking_delta") {
      v.content = AddContent(facts, FindString(*delta, "thinking"));
    }
    return v;
  }
  if (type == "content_block_start") {
    if (const json::object* block = FindObject(o, "content_block")) {
      v.content = AnthropicBlock(facts, *block);
    }
    return v;
  }
  if (type == "message_start") {
    if (const json::object* m = FindObject(o, "message")) {
      SetModel(facts, FindString(*m, "model"));
      if (const json::object* u = FindObject(*m, "usage")) {
        anthropic.Merge(*u);
        facts.usage = anthropic.Normalized();
      }
    }
    return v;
  }
  if (type == "message_delta") {
    if (const json::object* d = FindObject(o, "delta")) {
      AddFinishReason(facts, FindString(*d, "stop_reason"));
    }
    if (const json::object* u = FindObject(o, "usage")) {
      anthropic.Merge(*u);
      facts.usage = anthropic.Normalized();
    }
    return v;
  }
  if (type == "message_stop") {
    facts.terminated = true;
    return v;
  }
  if (type == "error") {
    if (const json::object* err = FindObject(o, "error")) TakeError(facts, *err);
  }
  return v;  // ping, content_block_stop and unknown events carry nothing we record
}

StreamObserver::StreamObserver(Dialect dialect, bool strip_usage_only_chunk)
    : impl_(std::make_unique<Impl>(dialect, strip_usage_only_chunk)) {}
StreamObserver::~StreamObserver() = default;
StreamObserver::StreamObserver(StreamObserver&&) noexcept = default;
StreamObserver& StreamObserver::operator=(StreamObserver&&) noexcept = default;

StreamObserver::Verdict StreamObserver::OnEvent(const SseEvent& event) {
  try {
    return impl_->OnEvent(event);
  } catch (const std::exception&) {  // allocation failure: forward, record nothing
    ++impl_->malformed;
    return {};
  }
}

const ResponseFacts& StreamObserver::facts() const { return impl_->facts; }
uint64_t StreamObserver::malformed_events() const { return impl_->malformed; }

// ---------------------------------------------------------------------------------------

core::ErrorClass ClassifyUpstreamStatus(int http_status, std::string_view body) {
  using core::ErrorClass;
  if (http_status >= 200 && http_status < 300) return ErrorClass::kNone;
  switch (http_status) {
    case 400:
      return MentionsContentPolicy(body) ? ErrorClass::kContentFilter : ErrorClass::kInvalidRequest;
    case 401:
    case 403:
      return ErrorClass::kAuth;
    case 429:
    case 529:
      return ErrorClass::kRateLimit;
    case 408:
    case 504:
      return ErrorClass::kTimeout;
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return ErrorClass::kInvalidRequest;
  return ErrorClass::kServerError;
}

std::string OpenAiErrorBody(std::string_view message, std::string_view type, std::string_view param,
                            std::string_view code) {
  std::string out;
  out.reserve(64 + message.size() + type.size() + param.size() + code.size());
  out.append(R"({"error":{"message":)");
  AppendJsonString(out, message);
  out.append(R"(,"type":)");
  AppendJsonString(out, type);
  out.append(R"(,"param":)");
  AppendJsonStringOrNull(out, param);
  out.append(R"(,"code":)");
  AppendJsonStringOrNull(out, code);
  out.append("}}");
  return out;
}

std::string AnthropicErrorBody(std::string_view type, std::string_view message) {
  std::string out;
  out.reserve(48 + message.size() + type.size());
  out.append(R"({"type":"error","error":{"type":)");
  AppendJsonString(out, type);
  out.append(R"(,"message":)");
  AppendJsonString(out, message);
  out.append("}}");
  return out;
}

bool AppendWithoutNullUsage(std::string_view raw, std::string& out) {
  // Providers serialize the field as the object's last or first member; a textual cut of
  // the exact member keeps the rest of the event byte for byte. Only one occurrence is
  // top-level: nested objects have no `usage` member in these dialects.
  static constexpr std::string_view kTrailing = ",\"usage\":null";
  static constexpr std::string_view kLeading = "\"usage\":null,";
  size_t pos = FindBytes(raw, kTrailing);
  size_t len = kTrailing.size();
  if (pos == std::string_view::npos) {
    pos = FindBytes(raw, kLeading);
    len = kLeading.size();
  }
  if (pos == std::string_view::npos) return false;
  out.append(raw.substr(0, pos));
  out.append(raw.substr(pos + len));
  return true;
}

int64_t EstimateTokens(size_t chars) { return static_cast<int64_t>((chars + 3) / 4); }

}  // namespace llmscope::gateway
