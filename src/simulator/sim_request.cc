// Request parsing for the simulator: extracts what it needs (model, stream flags, token
// budget, prompt token count, cache prefix, tool to call) from each dialect's request body.

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "simulator/sim_internal.h"

namespace llmscope::simulator::internal {
namespace json = boost::json;
namespace {

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

std::optional<int64_t> AsInt(const json::value& v) {
  if (const auto* i = v.if_int64()) return *i;
  if (const auto* u = v.if_uint64()) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
    return std::nullopt;
  }
  if (const auto* d = v.if_double()) {
    if (*d >= 0 && *d <= 9.0e15 && static_cast<double>(static_cast<int64_t>(*d)) == *d) {
      return static_cast<int64_t>(*d);
    }
  }
  return std::nullopt;
}

const json::value* Field(const json::object& o, std::string_view key) {
  return o.if_contains(json::string_view(key.data(), key.size()));
}

std::optional<std::string_view> StringField(const json::object& o, std::string_view key) {
  const json::value* v = Field(o, key);
  if (v == nullptr) return std::nullopt;
  if (const auto* s = v->if_string()) return View(*s);
  return std::nullopt;
}

bool HasCacheControl(const json::value& v) {
  const auto* o = v.if_object();
  if (o == nullptr) return false;
  const json::value* cc = Field(*o, "cache_control");
  return cc != nullptr && !cc->is_null();
}

// Tokens of one content block or part: its text, a tool call's name and input, a tool
// result's content. Images and other media count zero.
int64_t BlockTokens(const json::value& block);

// Tokens of a message's `content`: a string, or an array of blocks / parts.
int64_t ContentTokens(const json::value& content) {
  if (const auto* s = content.if_string()) return TextTokens(View(*s));
  int64_t total = 0;
  if (const auto* a = content.if_array()) {
    for (const auto& part : *a) total += BlockTokens(part);
  }
  return total;
}

int64_t BlockTokens(const json::value& block) {
  if (const auto* s = block.if_string()) return TextTokens(View(*s));
  const auto* o = block.if_object();
  if (o == nullptr) return 0;
  int64_t total = 0;
  if (auto text = StringField(*o, "text")) total += TextTokens(*text);
  if (auto thinking = StringField(*o, "thinking")) total += TextTokens(*thinking);
  auto type = StringField(*o, "type").value_or("");
  if (type == "tool_use") {
    total += TextTokens(StringField(*o, "name").value_or(""));
    if (const json::value* input = Field(*o, "input")) {
      total += TextTokens(json::serialize(*input));
    }
  } else if (type == "tool_result") {
    if (const json::value* c = Field(*o, "content")) total += ContentTokens(*c);
  }
  return total;
}

// Text of a message's content, for the "weather" rule.
std::string ContentText(const json::value& content) {
  if (const auto* s = content.if_string()) return std::string(View(*s));
  std::string out;
  if (const auto* a = content.if_array()) {
    for (const auto& part : *a) {
      if (const auto* o = part.if_object()) {
        if (auto text = StringField(*o, "text")) {
          out.append(*text);
          out.push_back(' ');
        }
      }
    }
  }
  return out;
}

bool ContainsWeather(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("weather") != std::string::npos;
}

core::Status Missing(std::string_view field) {
  return core::InvalidArgument("field '" + std::string(field) + "' is required");
}

core::Status WrongType(std::string_view field, std::string_view what) {
  return core::InvalidArgument("field '" + std::string(field) + "' must be " + std::string(what));
}

// Common fields: model (required), stream, and the token budget: the smallest of the
// `budget_fields` present.
core::Status ParseCommon(const json::object& o,
                         std::initializer_list<std::string_view> budget_fields, RequestInfo& info) {
  const json::value* model = Field(o, "model");
  if (model == nullptr) return Missing("model");
  const auto* model_s = model->if_string();
  if (model_s == nullptr || model_s->empty()) return WrongType("model", "a non-empty string");
  info.model = std::string(View(*model_s));
  if (const json::value* stream = Field(o, "stream"); stream != nullptr && !stream->is_null()) {
    const bool* b = stream->if_bool();
    if (b == nullptr) return WrongType("stream", "a boolean");
    info.stream = *b;
  }
  for (std::string_view key : budget_fields) {
    const json::value* v = Field(o, key);
    if (v == nullptr || v->is_null()) continue;
    auto n = AsInt(*v);
    if (!n || *n < 1) return WrongType(key, "a positive integer");
    info.max_tokens = info.max_tokens ? std::min(*info.max_tokens, *n) : *n;
  }
  return core::Status::Ok();
}

core::Status ParseIncludeUsage(const json::object& o, RequestInfo& info) {
  const json::value* so = Field(o, "stream_options");
  if (so == nullptr || so->is_null()) return core::Status::Ok();
  const auto* so_o = so->if_object();
  if (so_o == nullptr) return WrongType("stream_options", "an object");
  if (const json::value* iu = Field(*so_o, "include_usage"); iu != nullptr && !iu->is_null()) {
    const bool* b = iu->if_bool();
    if (b == nullptr) return WrongType("stream_options.include_usage", "a boolean");
    info.include_usage = *b;
  }
  return core::Status::Ok();
}

// A callable tool as the dialects describe it.
struct ToolDef {
  std::string name;
  json::value schema;
};

enum class ChoiceMode { kAuto, kNone, kRequired, kNamed };

// Picks the tool call, if any. `weather_turn`: the conversation ends with a user turn whose
// text mentions "weather".
core::Status DecideTool(const std::vector<ToolDef>& tools, ChoiceMode mode, std::string_view named,
                        bool weather_turn, RequestInfo& info) {
  if (tools.empty() || mode == ChoiceMode::kNone) return core::Status::Ok();
  const ToolDef* pick = nullptr;
  if (mode == ChoiceMode::kNamed) {
    for (const auto& t : tools) {
      if (t.name == named) pick = &t;
    }
    if (pick == nullptr) {
      return core::InvalidArgument("field 'tool_choice' names tool '" + std::string(named) +
                                   "', which is not in 'tools'");
    }
  } else if (mode == ChoiceMode::kRequired || weather_turn) {
    pick = &tools.front();
  }
  if (pick != nullptr) info.tool = ToolChoice{pick->name, pick->schema};
  return core::Status::Ok();
}

// Thread-safety: not thread-safe; one per request being parsed.
// Walks prompt parts in order, keeping the running token count and the cache prefix.
class PromptCounter {
 public:
  PromptCounter() : total_(3) {}  // reply priming
  void AddTool(const json::value& tool) {
    total_ += TextTokens(json::serialize(tool));
    Mark(tool);
  }
  void BeginMessage() { total_ += 4; }
  void AddContent(const json::value& content) {
    if (content.is_array()) {
      for (const auto& block : content.get_array()) {
        total_ += BlockTokens(block);
        Mark(block);
      }
    } else {
      total_ += ContentTokens(content);
    }
  }
  void AddText(std::string_view s) { total_ += TextTokens(s); }
  void Finish(RequestInfo& info) const {
    info.prompt_tokens = total_;
    info.has_cache_control = marked_;
    info.cache_prefix_tokens = prefix_;
  }

 private:
  void Mark(const json::value& v) {
    if (HasCacheControl(v)) {
      marked_ = true;
      prefix_ = total_;
    }
  }
  int64_t total_;
  int64_t prefix_ = 0;
  bool marked_ = false;
};

core::Result<RequestInfo> ParseChat(const json::object& o) {
  RequestInfo info;
  if (auto s = ParseCommon(o, {"max_tokens", "max_completion_tokens"}, info); !s.ok()) return s;
  if (auto s = ParseIncludeUsage(o, info); !s.ok()) return s;
  const json::value* messages = Field(o, "messages");
  if (messages == nullptr) return Missing("messages");
  const auto* arr = messages->if_array();
  if (arr == nullptr || arr->empty()) return WrongType("messages", "a non-empty array");

  std::vector<ToolDef> tools;
  PromptCounter counter;
  if (const json::value* tv = Field(o, "tools"); tv != nullptr && tv->is_array()) {
    for (const auto& t : tv->get_array()) {
      counter.AddTool(t);
      const auto* to = t.if_object();
      const json::value* fn = to ? Field(*to, "function") : nullptr;
      const auto* fo = fn ? fn->if_object() : nullptr;
      if (fo == nullptr) continue;
      auto name = StringField(*fo, "name");
      if (!name) continue;
      const json::value* params = Field(*fo, "parameters");
      tools.push_back({std::string(*name), params ? *params : json::value()});
    }
  }
  for (const auto& m : *arr) {
    const auto* mo = m.if_object();
    if (mo == nullptr) return WrongType("messages[]", "an object");
    counter.BeginMessage();
    if (const json::value* c = Field(*mo, "content")) counter.AddContent(*c);
    if (const json::value* tc = Field(*mo, "tool_calls"); tc != nullptr && tc->is_array()) {
      for (const auto& call : tc->get_array()) {
        const auto* co = call.if_object();
        const json::value* fn = co ? Field(*co, "function") : nullptr;
        const auto* fo = fn ? fn->if_object() : nullptr;
        if (fo == nullptr) continue;
        counter.AddText(StringField(*fo, "name").value_or(""));
        counter.AddText(StringField(*fo, "arguments").value_or(""));
      }
    }
  }
  counter.Finish(info);
  info.first_turn = arr->size() == 1;

  const auto& last = arr->back().get_object();
  bool weather = StringField(last, "role").value_or("") == "user" && Field(last, "content") &&
                 ContainsWeather(ContentText(*Field(last, "content")));
  ChoiceMode mode = ChoiceMode::kAuto;
  std::string named;
  if (const json::value* tc = Field(o, "tool_choice")) {
    if (const auto* s = tc->if_string()) {
      if (*s == "none") mode = ChoiceMode::kNone;
      if (*s == "required") mode = ChoiceMode::kRequired;
    } else if (const auto* tco = tc->if_object()) {
      const json::value* fn = Field(*tco, "function");
      const auto* fo = fn ? fn->if_object() : nullptr;
      if (auto name = fo ? StringField(*fo, "name") : std::nullopt) {
        mode = ChoiceMode::kNamed;
        named = std::string(*name);
      }
    }
  }
  if (auto s = DecideTool(tools, mode, named, weather, info); !s.ok()) return s;
  return info;
}

core::Result<RequestInfo> ParseMessages(const json::object& o) {
  RequestInfo info;
  if (auto s = ParseCommon(o, {}, info); !s.ok()) return s;
  const json::value* mt = Field(o, "max_tokens");
  if (mt == nullptr) return Missing("max_tokens");
  auto max_tokens = AsInt(*mt);
  if (!max_tokens || *max_tokens < 1) return WrongType("max_tokens", "a positive integer");
  info.max_tokens = *max_tokens;
  const json::value* messages = Field(o, "messages");
  if (messages == nullptr) return Missing("messages");
  const auto* arr = messages->if_array();
  if (arr == nullptr || arr->empty()) return WrongType("messages", "a non-empty array");

  // Anthropic's cache prefix order: tools, then system, then messages.
  std::vector<ToolDef> tools;
  PromptCounter counter;
  if (const json::value* tv = Field(o, "tools"); tv != nullptr && tv->is_array()) {
    for (const auto& t : tv->get_array()) {
      counter.AddTool(t);
      const auto* to = t.if_object();
      if (to == nullptr) continue;
      auto type = StringField(*to, "type").value_or("custom");
      auto name = StringField(*to, "name");
      if (type != "custom" || !name) continue;  // server tools are not called by the sim
      const json::value* schema = Field(*to, "input_schema");
      tools.push_back({std::string(*name), schema ? *schema : json::value()});
    }
  }
  if (const json::value* system = Field(o, "system"); system != nullptr && !system->is_null()) {
    counter.BeginMessage();
    counter.AddContent(*system);
  }
  for (const auto& m : *arr) {
    const auto* mo = m.if_object();
    if (mo == nullptr) return WrongType("messages[]", "an object");
    counter.BeginMessage();
    if (const json::value* c = Field(*mo, "content")) counter.AddContent(*c);
  }
  counter.Finish(info);
  info.first_turn = arr->size() == 1;

  const auto& last = arr->back().get_object();
  bool weather = false;
  if (StringField(last, "role").value_or("") == "user") {
    const json::value* c = Field(last, "content");
    bool has_tool_result = false;
    if (c != nullptr && c->is_array()) {
      for (const auto& b : c->get_array()) {
        const auto* bo = b.if_object();
        if (bo && StringField(*bo, "type").value_or("") == "tool_result") has_tool_result = true;
      }
    }
    weather = c != nullptr && !has_tool_result && ContainsWeather(ContentText(*c));
  }
  ChoiceMode mode = ChoiceMode::kAuto;
  std::string named;
  if (const json::value* tc = Field(o, "tool_choice")) {
    if (const auto* tco = tc->if_object()) {
      auto type = StringField(*tco, "type").value_or("auto");
      if (type == "none") mode = ChoiceMode::kNone;
      if (type == "any") mode = ChoiceMode::kRequired;
      if (type == "tool") {
        mode = ChoiceMode::kNamed;
        named = std::string(StringField(*tco, "name").value_or(""));
      }
    }
  }
  if (auto s = DecideTool(tools, mode, named, weather, info); !s.ok()) return s;
  return info;
}

core::Result<RequestInfo> ParseResponses(const json::object& o) {
  RequestInfo info;
  if (auto s = ParseCommon(o, {"max_output_tokens"}, info); !s.ok()) return s;
  const json::value* input = Field(o, "input");
  if (input == nullptr) return Missing("input");

  std::vector<ToolDef> tools;
  PromptCounter counter;
  if (const json::value* tv = Field(o, "tools"); tv != nullptr && tv->is_array()) {
    for (const auto& t : tv->get_array()) {
      counter.AddTool(t);
      const auto* to = t.if_object();
      if (to == nullptr || StringField(*to, "type").value_or("") != "function") continue;
      auto name = StringField(*to, "name");
      if (!name) continue;
      const json::value* params = Field(*to, "parameters");
      tools.push_back({std::string(*name), params ? *params : json::value()});
    }
  }
  if (auto instructions = StringField(o, "instructions")) {
    counter.BeginMessage();
    counter.AddText(*instructions);
  }
  bool weather = false;
  size_t items = 0;
  if (const auto* s = input->if_string()) {
    counter.BeginMessage();
    counter.AddText(View(*s));
    weather = ContainsWeather(View(*s));
    items = 1;
  } else if (const auto* arr = input->if_array()) {
    if (arr->empty()) return WrongType("input", "a string or a non-empty array");
    for (const auto& item : *arr) {
      const auto* io = item.if_object();
      if (io == nullptr) return WrongType("input[]", "an object");
      counter.BeginMessage();
      if (const json::value* c = Field(*io, "content")) counter.AddContent(*c);
      auto type = StringField(*io, "type").value_or("message");
      if (type == "function_call") {
        counter.AddText(StringField(*io, "name").value_or(""));
        counter.AddText(StringField(*io, "arguments").value_or(""));
      } else if (type == "function_call_output") {
        counter.AddText(StringField(*io, "output").value_or(""));
      }
    }
    items = arr->size();
    const auto& last = arr->back().get_object();
    const json::value* c = Field(last, "content");
    weather = StringField(last, "role").value_or("") == "user" && c != nullptr &&
              ContainsWeather(ContentText(*c));
  } else {
    return WrongType("input", "a string or an array");
  }
  counter.Finish(info);
  info.first_turn = items == 1;

  ChoiceMode mode = ChoiceMode::kAuto;
  std::string named;
  if (const json::value* tc = Field(o, "tool_choice")) {
    if (const auto* s = tc->if_string()) {
      if (*s == "none") mode = ChoiceMode::kNone;
      if (*s == "required") mode = ChoiceMode::kRequired;
    } else if (const auto* tco = tc->if_object()) {
      if (auto name = StringField(*tco, "name")) {
        mode = ChoiceMode::kNamed;
        named = std::string(*name);
      }
    }
  }
  if (auto s = DecideTool(tools, mode, named, weather, info); !s.ok()) return s;
  return info;
}

core::Result<RequestInfo> ParseCompletions(const json::object& o) {
  RequestInfo info;
  if (auto s = ParseCommon(o, {"max_tokens"}, info); !s.ok()) return s;
  if (auto s = ParseIncludeUsage(o, info); !s.ok()) return s;
  // The legacy endpoint's default budget is 16 tokens.
  if (Field(o, "max_tokens") == nullptr) info.max_tokens = 16;
  const json::value* prompt = Field(o, "prompt");
  if (prompt == nullptr) return Missing("prompt");
  int64_t tokens = 0;
  if (const auto* s = prompt->if_string()) {
    tokens = TextTokens(View(*s));
  } else if (const auto* arr = prompt->if_array()) {
    if (arr->empty()) return WrongType("prompt", "a string or a non-empty array");
    for (const auto& p : *arr) {
      if (const auto* ps = p.if_string()) {
        tokens += TextTokens(View(*ps));
      } else if (const auto* pa = p.if_array()) {
        tokens += static_cast<int64_t>(pa->size());
      } else if (AsInt(p)) {
        tokens += 1;
      } else {
        return WrongType("prompt", "a string, an array of strings, or token arrays");
      }
    }
  } else {
    return WrongType("prompt", "a string or an array");
  }
  info.prompt_tokens = tokens;
  return info;
}

core::Result<RequestInfo> ParseEmbeddings(const json::object& o) {
  RequestInfo info;
  if (auto s = ParseCommon(o, {}, info); !s.ok()) return s;
  info.stream = false;
  const json::value* input = Field(o, "input");
  if (input == nullptr) return Missing("input");
  const auto bad_input = [] {
    return WrongType("input", "a string, an array of strings, or token arrays (non-empty)");
  };
  if (const auto* s = input->if_string()) {
    info.embedding_inputs.push_back({std::string(View(*s)), TextTokens(View(*s))});
  } else if (const auto* arr = input->if_array()) {
    if (arr->empty()) return bad_input();
    if (AsInt(arr->front())) {  // one input given as tokens
      info.embedding_inputs.push_back({json::serialize(*input), static_cast<int64_t>(arr->size())});
    } else {
      for (const auto& item : *arr) {
        if (const auto* is = item.if_string()) {
          info.embedding_inputs.push_back({std::string(View(*is)), TextTokens(View(*is))});
        } else if (const auto* ia = item.if_array()) {
          info.embedding_inputs.push_back(
              {json::serialize(item), static_cast<int64_t>(ia->size())});
        } else {
          return bad_input();
        }
      }
    }
  } else {
    return bad_input();
  }
  for (const auto& in : info.embedding_inputs) info.prompt_tokens += in.tokens;
  if (const json::value* d = Field(o, "dimensions"); d != nullptr && !d->is_null()) {
    auto n = AsInt(*d);
    if (!n || *n < 1 || *n > 65536) return WrongType("dimensions", "an integer in 1..65536");
    info.dimensions = static_cast<int>(*n);
  }
  if (auto fmt = StringField(o, "encoding_format")) {
    if (*fmt != "float" && *fmt != "base64") {
      return WrongType("encoding_format", "\"float\" or \"base64\"");
    }
    info.base64 = *fmt == "base64";
  }
  return info;
}

}  // namespace

int64_t TextTokens(std::string_view s) {
  int64_t code_points = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++code_points;
  }
  return (code_points + 3) / 4;
}

core::Result<RequestInfo> ParseRequest(core::Endpoint endpoint, std::string_view body) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) return core::InvalidArgument("request body is not valid JSON: " + ec.message());
  const auto* o = v.if_object();
  if (o == nullptr) return core::InvalidArgument("request body must be a JSON object");
  switch (endpoint) {
    case core::Endpoint::kChatCompletions:
      return ParseChat(*o);
    case core::Endpoint::kCompletions:
      return ParseCompletions(*o);
    case core::Endpoint::kEmbeddings:
      return ParseEmbeddings(*o);
    case core::Endpoint::kResponses:
      return ParseResponses(*o);
    case core::Endpoint::kMessages:
      return ParseMessages(*o);
    case core::Endpoint::kModels:
      break;
  }
  return core::InvalidArgument("endpoint takes no request body");
}

}  // namespace llmscope::simulator::internal
