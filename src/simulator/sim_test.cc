#include "simulator/sim.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <map>
#include <string>
#include <vector>

namespace llmscope::simulator {
namespace {
namespace json = boost::json;
using core::Endpoint;
using std::chrono::milliseconds;

// One SSE event parsed from a frame. A frame holds exactly one event.
struct Event {
  std::string name;  // from "event:", empty when absent
  std::string data;
};

Event ParseFrame(const std::string& bytes) {
  Event e;
  EXPECT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes.substr(bytes.size() - 2), "\n\n") << bytes;
  EXPECT_EQ(bytes.find("\n\n"), bytes.size() - 2) << "more than one event: " << bytes;
  std::string rest = bytes.substr(0, bytes.size() - 2);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t nl = rest.find('\n', pos);
    std::string line = rest.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.rfind("event: ", 0) == 0) {
      e.name = line.substr(7);
    } else if (line.rfind("data: ", 0) == 0) {
      e.data = line.substr(6);
    } else {
      ADD_FAILURE() << "unexpected SSE line: " << line;
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return e;
}

json::value Parse(const std::string& s) {
  json::error_code ec;
  json::value v = json::parse(s, ec);
  EXPECT_FALSE(ec) << "invalid JSON: " << s;
  return v;
}

// Every frame as an event with its JSON payload ([DONE] gives null).
struct ParsedEvent {
  std::string name;
  json::value data;
  bool done = false;
  core::Nanos at{0};
};

std::vector<ParsedEvent> Events(const SimResponse& r) {
  std::vector<ParsedEvent> out;
  for (const auto& f : r.frames) {
    Event e = ParseFrame(f.bytes);
    ParsedEvent pe;
    pe.name = e.name;
    pe.at = f.at;
    if (e.data == "[DONE]") {
      pe.done = true;
    } else {
      pe.data = Parse(e.data);
      if (!e.name.empty()) {
        // Named events carry their name as "type" too.
        EXPECT_EQ(json::value_to<std::string>(pe.data.at("type")), e.name);
      }
    }
    out.push_back(std::move(pe));
  }
  return out;
}

std::string Str(const json::value& v) { return json::value_to<std::string>(v); }
int64_t Int(const json::value& v) { return v.to_number<int64_t>(); }

SimOptions Opts() {
  SimOptions o;
  o.latency = milliseconds(10);
  o.ttft = milliseconds(100);
  o.tokens_per_second = 20;  // 50 ms apart
  o.min_output_tokens = 5;
  o.max_output_tokens = 12;
  return o;
}

SimResponse Sim(Endpoint e, const std::string& body, const SimOptions& o = Opts(),
                uint64_t seq = 1) {
  auto r = Simulate(e, body, o, seq);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SimResponse{};
}

const char* kChat = R"({"model":"sim/gpt-4o","messages":[{"role":"user","content":"hello"}]})";
const char* kChatStream =
    R"({"model":"sim/gpt-4o","stream":true,"stream_options":{"include_usage":true},)"
    R"("messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello"}]})";
const char* kMessagesStream = R"({"model":"sim/claude-sonnet-4-5","max_tokens":1000,"stream":true,)"
                              R"("messages":[{"role":"user","content":"hello"}]})";
const char* kResponsesStream = R"({"model":"sim/gpt-4o","input":"hello","stream":true})";

// Bodies of every endpoint, streaming and not.
std::vector<std::pair<Endpoint, std::string>> AllBodies() {
  return {
      {Endpoint::kChatCompletions, kChat},
      {Endpoint::kChatCompletions, kChatStream},
      {Endpoint::kCompletions, R"({"model":"sim/davinci","prompt":"hi","max_tokens":50})"},
      {Endpoint::kCompletions,
       R"({"model":"sim/davinci","prompt":"hi","stream":true,"max_tokens":50})"},
      {Endpoint::kResponses, R"({"model":"sim/gpt-4o","input":"hello"})"},
      {Endpoint::kResponses, kResponsesStream},
      {Endpoint::kMessages,
       R"({"model":"claude","max_tokens":99,"messages":[{"role":"user","content":"hi"}]})"},
      {Endpoint::kMessages, kMessagesStream},
      {Endpoint::kEmbeddings, R"({"model":"text-embedding-3-small","input":"hi"})"},
      {Endpoint::kModels, ""},
  };
}

bool SameResponse(const SimResponse& a, const SimResponse& b) {
  if (a.frames.size() != b.frames.size()) return false;
  for (size_t i = 0; i < a.frames.size(); ++i) {
    if (a.frames[i].at != b.frames[i].at || a.frames[i].bytes != b.frames[i].bytes) return false;
  }
  return a.status == b.status && a.headers == b.headers && a.headers_at == b.headers_at &&
         a.usage.input == b.usage.input && a.usage.output == b.usage.output;
}

// ---- Determinism ----

TEST(SimulateTest, SameInputsGiveByteIdenticalResponses) {
  for (const auto& [endpoint, body] : AllBodies()) {
    SimResponse a = Sim(endpoint, body, Opts(), 7);
    SimResponse b = Sim(endpoint, body, Opts(), 7);
    EXPECT_TRUE(SameResponse(a, b)) << body;
    EXPECT_FALSE(a.frames.empty()) << body;
  }
}

TEST(SimulateTest, DifferentRequestSeqOrSeedGivesDifferentDraws) {
  SimResponse a = Sim(Endpoint::kChatCompletions, kChat, Opts(), 1);
  SimResponse b = Sim(Endpoint::kChatCompletions, kChat, Opts(), 2);
  EXPECT_NE(a.frames[0].bytes, b.frames[0].bytes);
  EXPECT_NE(a.output_text, b.output_text);
  SimOptions other = Opts();
  other.seed = 43;
  SimResponse c = Sim(Endpoint::kChatCompletions, kChat, other, 1);
  EXPECT_NE(a.output_text, c.output_text);
}

TEST(SimulateTest, ErrorRateDoesNotChangeGeneratedText) {
  SimOptions flaky = Opts();
  flaky.error_rate = 0.5;
  int same = 0;
  for (uint64_t seq = 0; seq < 50; ++seq) {
    SimResponse a = Sim(Endpoint::kChatCompletions, kChat, Opts(), seq);
    SimResponse b = Sim(Endpoint::kChatCompletions, kChat, flaky, seq);
    if (b.status == 200 && !b.close_without_terminator && b.finish_reason == "stop") {
      EXPECT_EQ(a.output_text, b.output_text);
      ++same;
    }
  }
  EXPECT_GT(same, 10);
}

// ---- Streaming shape and token accounting ----

TEST(ChatStreamTest, OneTokenPerContentEventAndUsageChunk) {
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/event-stream");
  EXPECT_EQ(r.model, "gpt-4o-2024-08-06");
  auto events = Events(r);
  ASSERT_GE(events.size(), 4u);
  // First chunk: the role, with empty content.
  const auto& first = events[0].data.at("choices").at(0).at("delta");
  EXPECT_EQ(Str(first.at("role")), "assistant");
  EXPECT_EQ(Str(first.at("content")), "");
  int content_events = 0;
  std::string text;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].done) continue;
    const auto& o = events[i].data.as_object();
    EXPECT_EQ(Str(o.at("object")), "chat.completion.chunk");
    EXPECT_EQ(Str(o.at("id")), Str(events[0].data.at("id")));
    const auto& choices = o.at("choices").as_array();
    if (choices.empty()) continue;
    const auto* content = choices[0].at("delta").as_object().if_contains("content");
    if (content != nullptr) {
      ++content_events;
      text += Str(*content);
    }
  }
  // Then the finish chunk, the usage chunk with no choices, and [DONE].
  ASSERT_TRUE(events.back().done);
  const auto& usage_chunk = events[events.size() - 2].data;
  EXPECT_TRUE(usage_chunk.at("choices").as_array().empty());
  const auto& usage = usage_chunk.at("usage");
  const auto& finish = events[events.size() - 3].data.at("choices").at(0);
  EXPECT_EQ(Str(finish.at("finish_reason")), "stop");
  EXPECT_EQ(Int(usage.at("completion_tokens")), content_events);
  EXPECT_EQ(r.usage.output, content_events);
  EXPECT_EQ(Int(usage.at("prompt_tokens")), r.usage.input);
  EXPECT_EQ(Int(usage.at("total_tokens")), r.usage.input + r.usage.output);
  EXPECT_EQ(text, r.output_text);
  EXPECT_GE(content_events, 5);
  EXPECT_LE(content_events, 12);
  EXPECT_TRUE(r.usage_on_wire);
  // Every other chunk carries "usage": null, as OpenAI does under include_usage.
  EXPECT_TRUE(events[0].data.at("usage").is_null());
}

TEST(ChatStreamTest, NoUsageChunkWithoutIncludeUsage) {
  SimResponse r = Sim(Endpoint::kChatCompletions,
                      R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  auto events = Events(r);
  ASSERT_TRUE(events.back().done);
  for (const auto& e : events) {
    if (e.done) continue;
    EXPECT_FALSE(e.data.as_object().contains("usage"));
    EXPECT_FALSE(e.data.at("choices").as_array().empty());
  }
  EXPECT_EQ(Str(events[events.size() - 2].data.at("choices").at(0).at("finish_reason")), "stop");
}

TEST(ChatStreamTest, ZeroOutputTokens) {
  SimOptions o = Opts();
  o.min_output_tokens = o.max_output_tokens = 0;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  auto events = Events(r);
  ASSERT_EQ(events.size(), 4u);  // role, finish, usage, [DONE]
  EXPECT_EQ(Int(events[2].data.at("usage").at("completion_tokens")), 0);
  EXPECT_EQ(events[1].at, o.ttft);
}

TEST(MessagesStreamTest, EventSequenceAndUsage) {
  SimResponse r = Sim(Endpoint::kMessages, kMessagesStream);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.model, "claude-sonnet-4-5");
  auto events = Events(r);
  std::vector<std::string> names;
  for (const auto& e : events) names.push_back(e.name);
  ASSERT_GE(names.size(), 7u);
  EXPECT_EQ(names[0], "message_start");
  EXPECT_EQ(names[1], "content_block_start");
  EXPECT_EQ(names[2], "ping");
  EXPECT_EQ(names[names.size() - 3], "content_block_stop");
  EXPECT_EQ(names[names.size() - 2], "message_delta");
  EXPECT_EQ(names.back(), "message_stop");
  int deltas = 0;
  std::string text;
  for (const auto& e : events) {
    if (e.name != "content_block_delta") continue;
    ++deltas;
    EXPECT_EQ(Str(e.data.at("delta").at("type")), "text_delta");
    text += Str(e.data.at("delta").at("text"));
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(deltas) + 6);
  const auto& start_usage = events[0].data.at("message").at("usage");
  EXPECT_EQ(Int(start_usage.at("input_tokens")), r.usage.input);
  const auto& md = events[events.size() - 2].data;
  EXPECT_EQ(Str(md.at("delta").at("stop_reason")), "end_turn");
  EXPECT_EQ(Int(md.at("usage").at("output_tokens")), deltas);
  EXPECT_EQ(r.usage.output, deltas);
  EXPECT_EQ(text, r.output_text);
  EXPECT_EQ(r.finish_reason, "end_turn");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "request-id");
}

TEST(ResponsesStreamTest, CompletedEventCarriesUsage) {
  SimResponse r = Sim(Endpoint::kResponses, kResponsesStream);
  auto events = Events(r);
  ASSERT_GE(events.size(), 9u);
  EXPECT_EQ(events[0].name, "response.created");
  EXPECT_EQ(events[1].name, "response.in_progress");
  EXPECT_EQ(events[2].name, "response.output_item.added");
  EXPECT_EQ(events[3].name, "response.content_part.added");
  int deltas = 0;
  std::string text;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(Int(events[i].data.at("sequence_number")), static_cast<int64_t>(i));
    if (events[i].name == "response.output_text.delta") {
      ++deltas;
      text += Str(events[i].data.at("delta"));
    }
  }
  ASSERT_EQ(events[events.size() - 4].name, "response.output_text.done");
  EXPECT_EQ(Str(events[events.size() - 4].data.at("text")), text);
  EXPECT_EQ(events[events.size() - 3].name, "response.content_part.done");
  EXPECT_EQ(events[events.size() - 2].name, "response.output_item.done");
  const auto& done = events.back();
  ASSERT_EQ(done.name, "response.completed");
  const auto& resp = done.data.at("response");
  EXPECT_EQ(Str(resp.at("status")), "completed");
  EXPECT_EQ(Int(resp.at("usage").at("output_tokens")), deltas);
  EXPECT_EQ(Int(resp.at("usage").at("input_tokens")), r.usage.input);
  EXPECT_EQ(Int(resp.at("usage").at("total_tokens")), r.usage.input + deltas);
  EXPECT_EQ(Str(resp.at("output").at(0).at("content").at(0).at("text")), text);
  EXPECT_TRUE(events[0].data.at("response").at("usage").is_null());
}

TEST(CompletionsTest, StreamAndNonStreamShapes) {
  SimResponse s =
      Sim(Endpoint::kCompletions, R"({"model":"sim/davinci-002","prompt":"Say this","stream":true,)"
                                  R"("stream_options":{"include_usage":true}})");
  auto events = Events(s);
  int content = 0;
  for (const auto& e : events) {
    if (e.done) continue;
    EXPECT_EQ(Str(e.data.at("object")), "text_completion");
    const auto& choices = e.data.at("choices").as_array();
    if (!choices.empty() && choices[0].at("finish_reason").is_null()) ++content;
  }
  EXPECT_EQ(content, s.usage.output);
  // Without max_tokens the legacy default budget is 16, above the 5..12 draw: "stop".
  EXPECT_EQ(Str(events[events.size() - 3].data.at("choices").at(0).at("finish_reason")), "stop");
  EXPECT_EQ(Int(events[events.size() - 2].data.at("usage").at("completion_tokens")), content);

  SimResponse n = Sim(Endpoint::kCompletions, R"({"model":"m","prompt":["ab","cdefg"]})");
  json::value body = Parse(n.frames[0].bytes);
  EXPECT_EQ(Str(body.at("object")), "text_completion");
  EXPECT_EQ(Str(body.at("choices").at(0).at("text")), n.output_text);
  EXPECT_EQ(Int(body.at("usage").at("prompt_tokens")), 1 + 2);  // ceil(2/4) + ceil(5/4)

  SimOptions o = Opts();
  o.min_output_tokens = o.max_output_tokens = 30;
  SimResponse capped = Sim(Endpoint::kCompletions, R"({"model":"m","prompt":"x"})", o);
  EXPECT_EQ(capped.usage.output, 16);
  EXPECT_EQ(capped.finish_reason, "length");
}

// ---- Timing ----

TEST(TimingTest, StreamScheduleFollowsTtftAndTps) {
  SimOptions o = Opts();
  o.latency = milliseconds(10);
  o.ttft = milliseconds(100);
  o.tokens_per_second = 20;
  o.min_output_tokens = o.max_output_tokens = 6;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_EQ(r.headers_at, milliseconds(10));
  ASSERT_EQ(r.frames.size(), 1u + 6 + 3);
  EXPECT_EQ(r.frames[0].at, milliseconds(10));  // the role chunk comes with the headers
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r.frames[1 + i].at, milliseconds(100 + 50 * i)) << i;
  for (size_t i = 7; i < r.frames.size(); ++i) EXPECT_EQ(r.frames[i].at, milliseconds(350));

  SimResponse a = Sim(Endpoint::kMessages, kMessagesStream, o);
  auto events = Events(a);
  for (const auto& e : events) {
    if (e.name == "message_start" || e.name == "ping") {
      EXPECT_EQ(e.at, milliseconds(10));
    }
  }
  EXPECT_EQ(events[3].at, milliseconds(100));
  EXPECT_EQ(events[8].at, milliseconds(350));
  EXPECT_EQ(events.back().at, milliseconds(350));
}

TEST(TimingTest, FractionalIntervalsDoNotAccumulateRounding) {
  SimOptions o = Opts();
  o.ttft = milliseconds(0);
  o.latency = milliseconds(0);
  o.tokens_per_second = 3;  // 333,333,333.33 ns apart
  o.min_output_tokens = o.max_output_tokens = 4;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_EQ(r.frames[1].at.count(), 0);
  EXPECT_EQ(r.frames[2].at.count(), 333'333'333);
  EXPECT_EQ(r.frames[3].at.count(), 666'666'667);
  EXPECT_EQ(r.frames[4].at.count(), 1'000'000'000);
}

TEST(TimingTest, TtftShorterThanLatencyStartsContentAtLatency) {
  SimOptions o = Opts();
  o.latency = milliseconds(200);
  o.ttft = milliseconds(50);
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_EQ(r.frames[0].at, milliseconds(200));
  EXPECT_EQ(r.frames[1].at, milliseconds(200));
  for (size_t i = 1; i < r.frames.size(); ++i) EXPECT_GE(r.frames[i].at, r.frames[i - 1].at);
}

TEST(TimingTest, NonStreamBodyAtLatencyPlusTtftPlusTokensOverTps) {
  SimOptions o = Opts();
  o.min_output_tokens = o.max_output_tokens = 8;
  for (Endpoint e : {Endpoint::kChatCompletions, Endpoint::kMessages, Endpoint::kResponses}) {
    std::string body =
        e == Endpoint::kMessages
            ? R"({"model":"c","max_tokens":50,"messages":[{"role":"user","content":"x"}]})"
        : e == Endpoint::kResponses ? R"({"model":"m","input":"x"})"
                                    : kChat;
    SimResponse r = Sim(e, body, o);
    ASSERT_EQ(r.frames.size(), 1u);
    EXPECT_EQ(r.content_type, "application/json");
    // 10 ms + 100 ms + 8 / 20 s.
    EXPECT_EQ(r.frames[0].at, milliseconds(510));
    EXPECT_EQ(r.headers_at, milliseconds(510));
  }
}

// ---- Errors ----

TEST(ErrorTest, StatusAndBodyPerKindAndDialect) {
  struct Case {
    ErrorKind kind;
    int openai_status;
    std::string openai_type;
    int anthropic_status;
    std::string anthropic_type;
  };
  const std::vector<Case> cases = {
      {ErrorKind::kRateLimit, 429, "requests", 429, "rate_limit_error"},
      {ErrorKind::kServerError, 500, "server_error", 500, "api_error"},
      {ErrorKind::kOverloaded, 503, "server_error", 529, "overloaded_error"},
      {ErrorKind::kBadRequest, 400, "invalid_request_error", 400, "invalid_request_error"},
  };
  for (const auto& c : cases) {
    SimOptions o = Opts();
    o.forced_error = c.kind;
    SimResponse oa = Sim(Endpoint::kChatCompletions, kChatStream, o);
    EXPECT_EQ(oa.status, c.openai_status);
    EXPECT_EQ(oa.content_type, "application/json");
    ASSERT_EQ(oa.frames.size(), 1u);
    EXPECT_EQ(oa.frames[0].at, o.latency);
    json::value ob = Parse(oa.frames[0].bytes);
    EXPECT_EQ(Str(ob.at("error").at("type")), c.openai_type);
    EXPECT_FALSE(Str(ob.at("error").at("message")).empty());
    EXPECT_TRUE(ob.at("error").as_object().contains("code"));
    EXPECT_EQ(oa.usage.input + oa.usage.output, 0);

    SimResponse an = Sim(Endpoint::kMessages, kMessagesStream, o);
    EXPECT_EQ(an.status, c.anthropic_status);
    json::value ab = Parse(an.frames[0].bytes);
    EXPECT_EQ(Str(ab.at("type")), "error");
    EXPECT_EQ(Str(ab.at("error").at("type")), c.anthropic_type);
    EXPECT_FALSE(Str(ab.at("error").at("message")).empty());

    for (const SimResponse* r : {&oa, &an}) {
      bool retry_after = false;
      for (const auto& [k, v] : r->headers) {
        if (k == "retry-after") retry_after = v == "1";
      }
      EXPECT_EQ(retry_after, c.kind == ErrorKind::kRateLimit);
    }
  }
}

TEST(ErrorTest, TimeoutHangsWithoutSendingAnything) {
  SimOptions o = Opts();
  o.forced_error = ErrorKind::kTimeout;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_TRUE(r.hang);
  EXPECT_TRUE(r.frames.empty());
  EXPECT_EQ(r.status, 0);
}

TEST(ErrorTest, TruncatedStreamStopsHalfWayWithoutTerminator) {
  SimOptions o = Opts();
  o.forced_error = ErrorKind::kTruncated;
  o.min_output_tokens = o.max_output_tokens = 10;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.close_without_terminator);
  auto events = Events(r);
  EXPECT_EQ(events.size(), 1u + 5);  // role chunk and half the tokens
  for (const auto& e : events) {
    EXPECT_FALSE(e.done);
    EXPECT_TRUE(e.data.at("choices").at(0).at("finish_reason").is_null());
  }
  EXPECT_EQ(r.usage.output, 5);
  EXPECT_FALSE(r.usage_on_wire);
  EXPECT_TRUE(r.finish_reason.empty());

  SimResponse a = Sim(Endpoint::kMessages, kMessagesStream, o);
  EXPECT_TRUE(a.close_without_terminator);
  for (const auto& e : Events(a)) {
    EXPECT_NE(e.name, "message_stop");
    EXPECT_NE(e.name, "message_delta");
  }
  SimResponse resp = Sim(Endpoint::kResponses, kResponsesStream, o);
  for (const auto& e : Events(resp)) EXPECT_NE(e.name, "response.completed");

  // Non-streaming: half a JSON body.
  SimResponse n = Sim(Endpoint::kChatCompletions, kChat, o);
  EXPECT_TRUE(n.close_without_terminator);
  json::error_code ec;
  json::parse(n.frames[0].bytes, ec);
  EXPECT_TRUE(ec);
}

TEST(ErrorTest, ContentFilterStopsAfterAFewTokens) {
  SimOptions o = Opts();
  o.forced_error = ErrorKind::kContentFilter;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream, o);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.finish_reason, "content_filter");
  auto events = Events(r);
  EXPECT_EQ(Str(events[events.size() - 3].data.at("choices").at(0).at("finish_reason")),
            "content_filter");
  EXPECT_EQ(r.usage.output, 3);

  SimResponse a = Sim(Endpoint::kMessages, kMessagesStream, o);
  auto ae = Events(a);
  EXPECT_EQ(Str(ae[ae.size() - 2].data.at("delta").at("stop_reason")), "refusal");

  SimResponse resp = Sim(Endpoint::kResponses, kResponsesStream, o);
  auto re = Events(resp);
  EXPECT_EQ(re.back().name, "response.incomplete");
  EXPECT_EQ(Str(re.back().data.at("response").at("incomplete_details").at("reason")),
            "content_filter");
}

TEST(ErrorTest, ErrorRateIsDeterministicAndFollowsTheMix) {
  SimOptions o = Opts();
  o.error_rate = 0.3;
  o.error_mix = {{ErrorKind::kServerError, 1.0}, {ErrorKind::kRateLimit, 0.0}};
  int failures = 0;
  for (uint64_t seq = 0; seq < 1000; ++seq) {
    SimResponse a = Sim(Endpoint::kChatCompletions, kChat, o, seq);
    SimResponse b = Sim(Endpoint::kChatCompletions, kChat, o, seq);
    EXPECT_EQ(a.status, b.status);
    if (a.status != 200) {
      EXPECT_EQ(a.status, 500);
      ++failures;
    }
  }
  EXPECT_GT(failures, 240);
  EXPECT_LT(failures, 360);
}

TEST(ErrorTest, InvalidRequestsNameTheProblem) {
  struct Case {
    Endpoint endpoint;
    std::string body;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {Endpoint::kChatCompletions, "{not json", "not valid JSON"},
      {Endpoint::kChatCompletions, "[1]", "JSON object"},
      {Endpoint::kChatCompletions, R"({"messages":[{"role":"user","content":"x"}]})", "'model'"},
      {Endpoint::kChatCompletions, R"({"model":"m"})", "'messages'"},
      {Endpoint::kChatCompletions, R"({"model":"m","messages":[]})", "'messages'"},
      {Endpoint::kChatCompletions,
       R"({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]})", "'stream'"},
      {Endpoint::kChatCompletions,
       R"({"model":"m","max_tokens":0,"messages":[{"role":"user","content":"x"}]})",
       "'max_tokens'"},
      {Endpoint::kMessages, R"({"model":"c","messages":[{"role":"user","content":"x"}]})",
       "'max_tokens'"},
      {Endpoint::kResponses, R"({"model":"m"})", "'input'"},
      {Endpoint::kCompletions, R"({"model":"m"})", "'prompt'"},
      {Endpoint::kEmbeddings, R"({"model":"m","input":[]})", "'input'"},
      {Endpoint::kEmbeddings, R"({"model":"m","input":"x","dimensions":0})", "'dimensions'"},
      {Endpoint::kEmbeddings, R"({"model":"m","input":"x","encoding_format":"hex"})",
       "'encoding_format'"},
  };
  for (const auto& c : cases) {
    auto r = Simulate(c.endpoint, c.body, Opts(), 1);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos)
        << r.status().message() << " for " << c.body;
  }
}

TEST(ErrorTest, BadRequestResponseUsesTheDialect) {
  SimResponse o =
      BadRequestResponse(Endpoint::kChatCompletions, "field 'model' is required", Opts(), 3);
  EXPECT_EQ(o.status, 400);
  json::value ob = Parse(o.frames[0].bytes);
  EXPECT_EQ(Str(ob.at("error").at("message")), "field 'model' is required");
  EXPECT_EQ(Str(ob.at("error").at("type")), "invalid_request_error");
  SimResponse a = BadRequestResponse(Endpoint::kMessages, "bad", Opts(), 3);
  json::value ab = Parse(a.frames[0].bytes);
  EXPECT_EQ(Str(ab.at("type")), "error");
  EXPECT_EQ(Str(ab.at("error").at("type")), "invalid_request_error");
}

TEST(ErrorTest, InvalidOptionsAreRefused) {
  SimOptions o = Opts();
  o.tokens_per_second = 0;
  o.min_output_tokens = 10;
  o.max_output_tokens = 5;
  o.error_rate = 2;
  core::Status s = ValidateOptions(o);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("tokens_per_second"), std::string::npos);
  EXPECT_NE(s.message().find("min_output_tokens"), std::string::npos);
  EXPECT_NE(s.message().find("error_rate"), std::string::npos);
  auto r = Simulate(Endpoint::kChatCompletions, kChat, o, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), core::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ValidateOptions(SimOptions{}).ok());
}

// ---- Overrides ----

auto Headers(std::map<std::string, std::string> h) {
  return [h = std::move(h)](std::string_view name) -> std::optional<std::string_view> {
    auto it = h.find(std::string(name));
    if (it == h.end()) return std::nullopt;
    return std::string_view(it->second);
  };
}

TEST(OverridesTest, AppliesEveryHeader) {
  auto r = ApplyOverrides(Opts(), Headers({{"x-sim-latency-ms", "5"},
                                           {"x-sim-ttft-ms", "12.5"},
                                           {"x-sim-tokens-per-second", "100"},
                                           {"x-sim-output-tokens", "7"},
                                           {"x-sim-error", "truncated"},
                                           {"x-sim-usage", "none"},
                                           {"x-sim-seed", "99"},
                                           {"x-sim-cached-tokens", "3"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->latency, milliseconds(5));
  EXPECT_EQ(r->ttft.count(), 12'500'000);
  EXPECT_EQ(r->tokens_per_second, 100);
  EXPECT_EQ(r->min_output_tokens, 7);
  EXPECT_EQ(r->max_output_tokens, 7);
  EXPECT_EQ(r->forced_error, ErrorKind::kTruncated);
  EXPECT_FALSE(r->report_usage);
  EXPECT_EQ(r->seed, 99u);
  EXPECT_EQ(r->cached_tokens, 3);

  auto none = ApplyOverrides(Opts(), Headers({}));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->seed, Opts().seed);
  EXPECT_FALSE(none->forced_error.has_value());
}

TEST(OverridesTest, ErrorNoneDisablesRandomFailures) {
  SimOptions base = Opts();
  base.error_rate = 1.0;
  auto r = ApplyOverrides(base, Headers({{"x-sim-error", "none"}}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Sim(Endpoint::kChatCompletions, kChat, *r).status, 200);
}

TEST(OverridesTest, RejectsBadValuesNamingHeaderAndValue) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"x-sim-latency-ms", "-1"},       {"x-sim-latency-ms", "abc"},
      {"x-sim-ttft-ms", "1e12"},        {"x-sim-ttft-ms", ""},
      {"x-sim-tokens-per-second", "0"}, {"x-sim-tokens-per-second", "nan"},
      {"x-sim-output-tokens", "1.5"},   {"x-sim-output-tokens", "-3"},
      {"x-sim-error", "explode"},       {"x-sim-usage", "some"},
      {"x-sim-seed", "0x10"},           {"x-sim-cached-tokens", "many"},
  };
  for (const auto& [name, value] : bad) {
    auto r = ApplyOverrides(Opts(), Headers({{name, value}}));
    ASSERT_FALSE(r.ok()) << name << ": " << value;
    EXPECT_EQ(r.status().code(), core::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("\"" + value + "\""), std::string::npos)
        << r.status().message();
  }
}

TEST(OverridesTest, ExactOutputTokensAndUsageNone) {
  auto o = ApplyOverrides(Opts(), Headers({{"x-sim-output-tokens", "9"}, {"x-sim-usage", "none"}}));
  ASSERT_TRUE(o.ok());
  for (const auto& [endpoint, body] : AllBodies()) {
    SimResponse r = Sim(endpoint, body, *o);
    for (const auto& f : r.frames) {
      EXPECT_EQ(f.bytes.find("\"usage\":{"), std::string::npos) << f.bytes;
      EXPECT_EQ(f.bytes.find("input_tokens\":"), std::string::npos) << f.bytes;
    }
    EXPECT_FALSE(r.usage_on_wire);
    if (endpoint != Endpoint::kEmbeddings && endpoint != Endpoint::kModels &&
        endpoint != Endpoint::kCompletions) {
      EXPECT_EQ(r.usage.output, 9) << body;
    }
  }
}

// ---- Tool calls ----

const char* kWeatherTool =
    R"([{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",)"
    R"("properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["c","f"]},)"
    R"("days":{"type":"integer"}},"required":["location"]}}},)"
    R"({"type":"function","function":{"name":"search","parameters":{"type":"object",)"
    R"("properties":{"q":{"type":"string"}}}}}])";

std::string ChatWithTools(const std::string& user, const std::string& extra, bool stream) {
  return std::string(R"({"model":"sim/gpt-4o","stream":)") + (stream ? "true" : "false") +
         R"(,"tools":)" + kWeatherTool + extra + R"(,"messages":[{"role":"user","content":")" +
         user + R"("}]})";
}

TEST(ToolCallTest, OpenAiStreamArgumentsConcatenateToJson) {
  SimResponse r =
      Sim(Endpoint::kChatCompletions, ChatWithTools("What's the weather in Paris?", "", true));
  auto events = Events(r);
  const auto& first = events[0].data.at("choices").at(0).at("delta");
  EXPECT_TRUE(first.at("content").is_null());
  const auto& call = first.at("tool_calls").at(0);
  EXPECT_EQ(Str(call.at("function").at("name")), "get_weather");
  EXPECT_EQ(Str(call.at("type")), "function");
  EXPECT_EQ(Str(call.at("id")).rfind("call_", 0), 0u);
  std::string args;
  int pieces = 0;
  for (size_t i = 1; i < events.size(); ++i) {
    if (events[i].done) continue;
    const auto& delta = events[i].data.at("choices").at(0).at("delta").as_object();
    if (const auto* tc = delta.if_contains("tool_calls")) {
      args += Str(tc->at(0).at("function").at("arguments"));
      ++pieces;
    }
  }
  EXPECT_GT(pieces, 2);
  EXPECT_EQ(r.usage.output, pieces);
  json::value parsed = Parse(args);
  EXPECT_TRUE(parsed.at("location").is_string());
  EXPECT_EQ(Str(parsed.at("unit")), "c");
  EXPECT_TRUE(parsed.at("days").is_int64());
  EXPECT_EQ(args, r.output_text);
  EXPECT_EQ(Str(events[events.size() - 2].data.at("choices").at(0).at("finish_reason")),
            "tool_calls");
}

TEST(ToolCallTest, OpenAiNonStreamAndToolChoiceRules) {
  SimResponse named =
      Sim(Endpoint::kChatCompletions, ChatWithTools("hi",
                                                    R"(,"tool_choice":{"type":"function",)"
                                                    R"("function":{"name":"search"}})",
                                                    false));
  json::value body = Parse(named.frames[0].bytes);
  const auto& choice = body.at("choices").at(0);
  EXPECT_EQ(Str(choice.at("finish_reason")), "tool_calls");
  const auto& call = choice.at("message").at("tool_calls").at(0);
  EXPECT_EQ(Str(call.at("function").at("name")), "search");
  EXPECT_TRUE(Parse(Str(call.at("function").at("arguments"))).at("q").is_string());

  SimResponse required =
      Sim(Endpoint::kChatCompletions, ChatWithTools("hi", R"(,"tool_choice":"required")", false));
  EXPECT_EQ(required.finish_reason, "tool_calls");
  SimResponse plain = Sim(Endpoint::kChatCompletions, ChatWithTools("hi", "", false));
  EXPECT_EQ(plain.finish_reason, "stop");
  SimResponse none =
      Sim(Endpoint::kChatCompletions, ChatWithTools("weather?", R"(,"tool_choice":"none")", false));
  EXPECT_EQ(none.finish_reason, "stop");

  // After the tool's result comes back, the model answers in text.
  std::string follow_up =
      std::string(R"({"model":"m","tools":)") + kWeatherTool +
      R"(,"messages":[{"role":"user","content":"weather in Paris?"},)"
      R"({"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",)"
      R"("function":{"name":"get_weather","arguments":"{}"}}]},)"
      R"({"role":"tool","tool_call_id":"call_1","content":"sunny"}]})";
  EXPECT_EQ(Sim(Endpoint::kChatCompletions, follow_up).finish_reason, "stop");

  auto unknown = Simulate(Endpoint::kChatCompletions,
                          ChatWithTools("hi",
                                        R"(,"tool_choice":{"type":"function",)"
                                        R"("function":{"name":"nope"}})",
                                        false),
                          Opts(), 1);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("nope"), std::string::npos);
}

const char* kAnthropicTools =
    R"({"model":"claude-sonnet-4-5","max_tokens":500,"stream":STREAM,)"
    R"("tools":[{"name":"get_weather","description":"d","input_schema":{"type":"object",)"
    R"("properties":{"city":{"type":"string"}}}}],)"
    R"("messages":[{"role":"user","content":[{"type":"text","text":"Weather in Rome?"}]}]})";

std::string AnthropicTools(bool stream) {
  std::string s = kAnthropicTools;
  s.replace(s.find("STREAM"), 6, stream ? "true" : "false");
  return s;
}

TEST(ToolCallTest, AnthropicToolUseWithInputJsonDelta) {
  SimResponse r = Sim(Endpoint::kMessages, AnthropicTools(true));
  auto events = Events(r);
  const auto& block = events[1].data.at("content_block");
  EXPECT_EQ(Str(block.at("type")), "tool_use");
  EXPECT_EQ(Str(block.at("name")), "get_weather");
  EXPECT_EQ(Str(block.at("id")).rfind("toolu_", 0), 0u);
  EXPECT_TRUE(block.at("input").as_object().empty());
  std::string json_text;
  int deltas = 0;
  for (const auto& e : events) {
    if (e.name != "content_block_delta") continue;
    EXPECT_EQ(Str(e.data.at("delta").at("type")), "input_json_delta");
    json_text += Str(e.data.at("delta").at("partial_json"));
    ++deltas;
  }
  EXPECT_TRUE(Parse(json_text).at("city").is_string());
  const auto& md = events[events.size() - 2].data;
  EXPECT_EQ(Str(md.at("delta").at("stop_reason")), "tool_use");
  EXPECT_EQ(Int(md.at("usage").at("output_tokens")), deltas);

  SimResponse n = Sim(Endpoint::kMessages, AnthropicTools(false));
  json::value body = Parse(n.frames[0].bytes);
  EXPECT_EQ(Str(body.at("stop_reason")), "tool_use");
  const auto& content = body.at("content").at(0);
  EXPECT_EQ(Str(content.at("type")), "tool_use");
  EXPECT_EQ(json::serialize(content.at("input")), json_text);
}

TEST(ToolCallTest, ResponsesFunctionCall) {
  std::string body = R"({"model":"gpt-4o","stream":true,"tool_choice":"required","input":"hi",)"
                     R"("tools":[{"type":"function","name":"lookup","parameters":{"type":"object",)"
                     R"("properties":{"id":{"type":"integer"}}}}]})";
  SimResponse r = Sim(Endpoint::kResponses, body);
  auto events = Events(r);
  EXPECT_EQ(Str(events[2].data.at("item").at("type")), "function_call");
  std::string args;
  for (const auto& e : events) {
    if (e.name == "response.function_call_arguments.delta") args += Str(e.data.at("delta"));
  }
  EXPECT_TRUE(Parse(args).at("id").is_int64());
  ASSERT_EQ(events.back().name, "response.completed");
  const auto& item = events.back().data.at("response").at("output").at(0);
  EXPECT_EQ(Str(item.at("name")), "lookup");
  EXPECT_EQ(Str(item.at("arguments")), args);
}

// ---- Usage formulas ----

TEST(UsageTest, PromptTokensFormula) {
  // 3 + (4 + ceil(9/4)) + (4 + ceil(5/4)) = 3 + 7 + 6 = 16.
  SimResponse r = Sim(Endpoint::kChatCompletions, kChatStream);
  EXPECT_EQ(r.usage.input, 16);
  // Code points, not bytes: "héllo" is 5 code points -> 2 tokens; 3 + 4 + 2 = 9.
  SimResponse u = Sim(Endpoint::kChatCompletions,
                      R"({"model":"m","messages":[{"role":"user","content":"h\u00e9llo"}]})");
  EXPECT_EQ(u.usage.input, 9);
}

TEST(UsageTest, AnthropicCacheControlWritesOnFirstTurnAndReadsLater) {
  const std::string system =
      R"("system":[{"type":"text","text":"0123456789012345678901234567890123456789",)"
      R"("cache_control":{"type":"ephemeral"}}])";
  // Prefix: 3 + 4 + ceil(40/4) = 17.
  std::string first = R"({"model":"c","max_tokens":50,)" + system +
                      R"(,"messages":[{"role":"user","content":"abcd"}]})";
  SimResponse w = Sim(Endpoint::kMessages, first);
  EXPECT_EQ(w.usage.cache_write, 17);
  EXPECT_EQ(w.usage.cache_read, 0);
  EXPECT_EQ(w.usage.input, 17 + 4 + 1);
  json::value body = Parse(w.frames[0].bytes);
  EXPECT_EQ(Int(body.at("usage").at("cache_creation_input_tokens")), 17);
  EXPECT_EQ(Int(body.at("usage").at("cache_read_input_tokens")), 0);
  EXPECT_EQ(Int(body.at("usage").at("input_tokens")), 5);

  std::string later = R"({"model":"c","max_tokens":50,)" + system +
                      R"(,"messages":[{"role":"user","content":"abcd"},)"
                      R"({"role":"assistant","content":"ok"},{"role":"user","content":"more"}]})";
  SimResponse rd = Sim(Endpoint::kMessages, later);
  EXPECT_EQ(rd.usage.cache_read, 17);
  EXPECT_EQ(rd.usage.cache_write, 0);
  json::value rb = Parse(rd.frames[0].bytes);
  EXPECT_EQ(Int(rb.at("usage").at("cache_read_input_tokens")), 17);
  EXPECT_EQ(Int(rb.at("usage").at("input_tokens")), rd.usage.input - 17);

  // Streaming reports the cache fields in message_start.
  std::string streamed = first;
  streamed.insert(1, R"("stream":true,)");
  auto events = Events(Sim(Endpoint::kMessages, streamed));
  EXPECT_EQ(Int(events[0].data.at("message").at("usage").at("cache_creation_input_tokens")), 17);

  // No cache_control: no cache usage.
  SimResponse plain = Sim(Endpoint::kMessages, kMessagesStream);
  EXPECT_EQ(plain.usage.cache_read + plain.usage.cache_write, 0);
}

TEST(UsageTest, CachedTokensHeader) {
  SimOptions o = Opts();
  o.cached_tokens = 4;
  SimResponse r = Sim(Endpoint::kChatCompletions, kChat, o);
  json::value body = Parse(r.frames[0].bytes);
  EXPECT_EQ(Int(body.at("usage").at("prompt_tokens_details").at("cached_tokens")), 4);
  EXPECT_EQ(r.usage.cache_read, 4);
  o.cached_tokens = 1000;  // capped at the prompt
  SimResponse capped = Sim(Endpoint::kMessages, kMessagesStream, o);
  EXPECT_EQ(capped.usage.cache_read, capped.usage.input);
  EXPECT_EQ(Int(Events(capped)[0].data.at("message").at("usage").at("input_tokens")), 0);
}

TEST(UsageTest, MaxTokensCapsOutputWithLengthFinish) {
  SimOptions o = Opts();
  o.min_output_tokens = o.max_output_tokens = 50;
  SimResponse r =
      Sim(Endpoint::kChatCompletions,
          R"({"model":"m","max_tokens":7,"messages":[{"role":"user","content":"x"}]})", o);
  EXPECT_EQ(r.usage.output, 7);
  EXPECT_EQ(r.finish_reason, "length");
  SimResponse a =
      Sim(Endpoint::kMessages,
          R"({"model":"c","max_tokens":7,"messages":[{"role":"user","content":"x"}]})", o);
  EXPECT_EQ(a.finish_reason, "max_tokens");
  SimResponse resp =
      Sim(Endpoint::kResponses, R"({"model":"m","max_output_tokens":7,"input":"x"})", o);
  EXPECT_EQ(resp.finish_reason, "max_output_tokens");
}

TEST(UsageTest, ReasoningModelsReportHiddenTokens) {
  SimOptions o = Opts();
  o.min_output_tokens = o.max_output_tokens = 10;
  SimResponse r = Sim(Endpoint::kChatCompletions,
                      R"({"model":"sim/o3-mini","stream":true,"stream_options":)"
                      R"({"include_usage":true},"messages":[{"role":"user","content":"x"}]})",
                      o);
  auto events = Events(r);
  int content = 0;
  for (const auto& e : events) {
    if (e.done || e.data.at("choices").as_array().empty()) continue;
    if (e.data.at("choices").at(0).at("delta").as_object().contains("content")) ++content;
  }
  --content;  // the role chunk's empty content
  const auto& usage = events[events.size() - 2].data.at("usage");
  EXPECT_EQ(content, 10);
  EXPECT_EQ(Int(usage.at("completion_tokens_details").at("reasoning_tokens")), 5);
  EXPECT_EQ(Int(usage.at("completion_tokens")), 15);
  EXPECT_EQ(r.usage.reasoning, 5);
  EXPECT_EQ(r.usage.output, 15);

  // The budget covers reasoning too.
  SimResponse capped = Sim(
      Endpoint::kChatCompletions,
      R"({"model":"gpt-5","max_completion_tokens":9,"messages":[{"role":"user","content":"x"}]})",
      o);
  EXPECT_LE(capped.usage.output, 9);
  EXPECT_EQ(capped.finish_reason, "length");
}

// ---- Embeddings, models, naming ----

TEST(EmbeddingsTest, DimensionsUsageAndStableVectors) {
  SimResponse r = Sim(Endpoint::kEmbeddings,
                      R"({"model":"sim/text-embedding-3-small","input":["hello","world!!"]})");
  json::value body = Parse(r.frames[0].bytes);
  EXPECT_EQ(Str(body.at("object")), "list");
  EXPECT_EQ(Str(body.at("model")), "text-embedding-3-small");
  const auto& data = body.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(Int(data[i].at("index")), static_cast<int64_t>(i));
    const auto& v = data[i].at("embedding").as_array();
    EXPECT_EQ(v.size(), 1536u);
    double norm = 0;
    for (const auto& x : v) norm += x.to_number<double>() * x.to_number<double>();
    EXPECT_NEAR(norm, 1.0, 1e-4);
  }
  EXPECT_EQ(Int(body.at("usage").at("prompt_tokens")), 2 + 2);
  EXPECT_EQ(Int(body.at("usage").at("total_tokens")), 4);
  EXPECT_EQ(r.usage.input, 4);

  SimResponse small =
      Sim(Endpoint::kEmbeddings, R"({"model":"e","input":"hello","dimensions":8})", Opts(), 99);
  json::value sb = Parse(small.frames[0].bytes);
  const auto& sv = sb.at("data").at(0).at("embedding").as_array();
  EXPECT_EQ(sv.size(), 8u);
  // Same text, same vector, whatever the request number.
  SimResponse again =
      Sim(Endpoint::kEmbeddings, R"({"model":"e","input":"hello","dimensions":8})", Opts(), 5);
  EXPECT_EQ(small.frames[0].bytes, again.frames[0].bytes);

  SimResponse b64 =
      Sim(Endpoint::kEmbeddings,
          R"({"model":"e","input":"hello","dimensions":8,"encoding_format":"base64"})");
  std::string encoded = Str(Parse(b64.frames[0].bytes).at("data").at(0).at("embedding"));
  EXPECT_EQ(encoded.size(), 44u);  // 32 bytes -> 44 base64 characters
}

TEST(ModelsTest, ListsSimModels) {
  SimResponse r = Sim(Endpoint::kModels, "ignored");
  json::value body = Parse(r.frames[0].bytes);
  EXPECT_EQ(Str(body.at("object")), "list");
  const auto& data = body.at("data").as_array();
  ASSERT_GE(data.size(), 3u);
  for (const auto& m : data) {
    EXPECT_EQ(Str(m.at("id")).rfind("sim/", 0), 0u);
    EXPECT_EQ(Str(m.at("object")), "model");
  }
}

TEST(NamingTest, ResponseModelDropsSimPrefixAndDatesOpenAi) {
  auto model_of = [](Endpoint e, const std::string& body) { return Sim(e, body).model; };
  EXPECT_EQ(model_of(Endpoint::kChatCompletions,
                     R"({"model":"sim/gpt-4o-mini","messages":[{"role":"user","content":"x"}]})"),
            "gpt-4o-mini-2024-08-06");
  EXPECT_EQ(model_of(Endpoint::kChatCompletions,
                     R"({"model":"gpt-4o-2024-05-13","messages":[{"role":"user","content":"x"}]})"),
            "gpt-4o-2024-05-13");
  EXPECT_EQ(model_of(Endpoint::kMessages, R"({"model":"sim/claude-haiku-4-5","max_tokens":5,)"
                                          R"("messages":[{"role":"user","content":"x"}]})"),
            "claude-haiku-4-5");
  SimResponse r = Sim(Endpoint::kChatCompletions, kChat);
  EXPECT_EQ(Str(Parse(r.frames[0].bytes).at("model")), r.model);
}

TEST(ErrorKindTest, NamesRoundTrip) {
  for (ErrorKind k :
       {ErrorKind::kRateLimit, ErrorKind::kServerError, ErrorKind::kOverloaded, ErrorKind::kTimeout,
        ErrorKind::kTruncated, ErrorKind::kContentFilter, ErrorKind::kBadRequest}) {
    EXPECT_EQ(ParseErrorKind(ErrorKindName(k)), k);
  }
  EXPECT_FALSE(ParseErrorKind("nope").has_value());
}

}  // namespace
}  // namespace llmscope::simulator
