#include "gateway/sse.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace llmscope::gateway {
namespace {

struct Seen {
  std::string event;
  std::string data;
  std::string raw;
};

struct TapRun {
  std::vector<Seen> events;
  std::string forwarded;
  bool partial = false;
};

using DropFn = std::function<bool(size_t index, const SseEvent&)>;

// Feeds `chunks` in order through a fresh tap; `drop` decides which events to drop.
TapRun Tap(const std::vector<std::string_view>& chunks, const DropFn& drop = nullptr) {
  SseTap tap;
  TapRun run;
  for (std::string_view chunk : chunks) {
    tap.Feed(chunk, run.forwarded, [&](const SseEvent& e) {
      const size_t index = run.events.size();
      run.events.push_back({std::string(e.event), std::string(e.data), std::string(e.raw)});
      return !(drop && drop(index, e));
    });
  }
  run.partial = tap.Finish(run.forwarded);
  return run;
}

std::vector<std::string_view> SplitAt(std::string_view s, size_t k) {
  return {s.substr(0, k), s.substr(k)};
}

std::vector<std::string_view> Bytes(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size(); ++i) out.push_back(s.substr(i, 1));
  return out;
}

std::string WithLineEnding(std::string_view lf_text, std::string_view eol) {
  std::string out;
  for (char c : lf_text) {
    if (c == '\n') {
      out.append(eol);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A feed that ends on the CR of the blank line's CRLF dispatches the event at once, so its
// raw lacks that LF (documented in sse.h). Everything else must match exactly.
void ExpectSameEvents(const std::vector<Seen>& got, const std::vector<Seen>& want,
                      const std::string& where) {
  ASSERT_EQ(got.size(), want.size()) << where;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].event, want[i].event) << where << " event #" << i;
    EXPECT_EQ(got[i].data, want[i].data) << where << " event #" << i;
    const bool same = got[i].raw == want[i].raw;
    const bool split_crlf = want[i].raw.ends_with("\r\n") && got[i].raw + "\n" == want[i].raw;
    EXPECT_TRUE(same || split_crlf)
        << where << " event #" << i << " raw [" << got[i].raw << "] want [" << want[i].raw << "]";
  }
}

constexpr std::string_view kOpenAiStream =
    "data: "
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",)"
    R"("choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],)"
    R"("usage":null})"
    "\n\n"
    "data: "
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",)"
    R"("choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}],"usage":null})"
    "\n\n"
    ": keep-alive comment\n\n"
    "data: "
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",)"
    R"("choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}],"usage":null})"
    "\n\n"
    "data: "
    R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini",)"
    R"("choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}})"
    "\n\n"
    "data: [DONE]\n\n";

constexpr std::string_view kAnthropicStream =
    "event: message_start\n"
    "data: "
    R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
    R"("content":[],"model":"claude-sonnet-4-5","stop_reason":null,"usage":{"input_tokens":25,)"
    R"("output_tokens":1}}})"
    "\n\n"
    "event: content_block_start\n"
    R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
    "\n\n"
    "event: ping\n"
    R"(data: {"type": "ping"})"
    "\n\n"
    "event: content_block_delta\n"
    R"(data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}})"
    "\n\n"
    "event: content_block_stop\n"
    R"(data: {"type":"content_block_stop","index":0})"
    "\n\n"
    "event: message_delta\n"
    R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
    R"("usage":{"output_tokens":15}})"
    "\n\n"
    "event: message_stop\n"
    R"(data: {"type":"message_stop"})"
    "\n\n";

constexpr std::string_view kStreams[] = {kOpenAiStream, kAnthropicStream};
constexpr std::string_view kLineEndings[] = {"\n", "\r\n", "\r"};

// Parameters: (index into kStreams, index into kLineEndings).
class SseSplitTest : public ::testing::TestWithParam<std::tuple<int, int>> {
 protected:
  std::string Stream() const {
    return WithLineEnding(kStreams[std::get<0>(GetParam())], kLineEndings[std::get<1>(GetParam())]);
  }
};

TEST_P(SseSplitTest, EverySplitMatchesTheWholeRun) {
  const std::string stream = Stream();
  const TapRun whole = Tap({stream});
  ASSERT_GE(whole.events.size(), 5u);
  EXPECT_EQ(whole.forwarded, stream);
  EXPECT_FALSE(whole.partial);

  for (size_t k = 0; k <= stream.size(); ++k) {
    const TapRun split = Tap(SplitAt(stream, k));
    const std::string where = "split at " + std::to_string(k);
    ExpectSameEvents(split.events, whole.events, where);
    EXPECT_EQ(split.forwarded, stream) << where;
    EXPECT_FALSE(split.partial) << where;
  }
  const TapRun bytes = Tap(Bytes(stream));
  ExpectSameEvents(bytes.events, whole.events, "byte at a time");
  EXPECT_EQ(bytes.forwarded, stream);
}

TEST_P(SseSplitTest, DroppingAnEventRemovesExactlyItsBytes) {
  const std::string stream = Stream();
  const TapRun whole = Tap({stream});
  for (size_t victim = 0; victim < whole.events.size(); ++victim) {
    const std::string& raw = whole.events[victim].raw;
    const size_t at = stream.find(raw);
    ASSERT_NE(at, std::string::npos);
    std::string expected = stream;
    expected.erase(at, raw.size());
    auto drop = [victim](size_t index, const SseEvent&) { return index == victim; };
    for (size_t k = 0; k <= stream.size(); ++k) {
      const TapRun split = Tap(SplitAt(stream, k), drop);
      ASSERT_EQ(split.forwarded, expected) << "victim " << victim << " split at " << k;
    }
    EXPECT_EQ(Tap(Bytes(stream), drop).forwarded, expected) << "victim " << victim;
  }
}

std::string SplitTestName(const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
  static constexpr std::string_view kStreamNames[] = {"OpenAi", "Anthropic"};
  static constexpr std::string_view kEolNames[] = {"Lf", "CrLf", "Cr"};
  return std::string(kStreamNames[std::get<0>(info.param)]) +
         std::string(kEolNames[std::get<1>(info.param)]);
}

INSTANTIATE_TEST_SUITE_P(Streams, SseSplitTest,
                         ::testing::Combine(::testing::Values(0, 1), ::testing::Values(0, 1, 2)),
                         SplitTestName);

TEST(SseTapTest, FieldParsingFollowsEventSourceRules) {
  const std::string stream =
      ": a comment\n"
      "event:  spaced\n"  // only one leading space is removed
      "id: 7\n"           // ignored
      "retry: 100\n"      // ignored
      "unknown: x\n"      // ignored
      "data:first\n"      // no space
      "data: second\n"
      "data\n"  // a field name alone: an empty value
      "\n"
      "event: lonely\n\n"  // no data: not dispatched, still forwarded
      "data: x:y: z\n\n";
  const TapRun run = Tap({stream});
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[0].event, " spaced");
  EXPECT_EQ(run.events[0].data, "first\nsecond\n");
  EXPECT_EQ(run.events[1].event, "");
  EXPECT_EQ(run.events[1].data, "x:y: z");
  EXPECT_EQ(run.events[1].raw, "data: x:y: z\n\n");
  EXPECT_EQ(run.forwarded, stream);
}

TEST(SseTapTest, MixedLineEndingsInOneStream) {
  const std::string stream = "data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r";
  const TapRun run = Tap({stream});
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.events[0].data, "a\nb\nc");
  EXPECT_EQ(run.events[0].raw, "data: a\r\ndata: b\rdata: c\n\r\n");
  EXPECT_EQ(run.events[1].data, "d");
  EXPECT_EQ(run.forwarded, stream);
}

TEST(SseTapTest, ByteOrderMarkIsSkippedAndForwarded) {
  const std::string stream =
      "\xEF\xBB\xBF"
      "data: one\n\ndata: two\n\n";
  for (size_t k = 0; k <= stream.size(); ++k) {
    const TapRun run = Tap(SplitAt(stream, k));
    ASSERT_EQ(run.events.size(), 2u) << k;
    EXPECT_EQ(run.events[0].data, "one") << k;
    EXPECT_EQ(run.events[0].raw,
              "\xEF\xBB\xBF"
              "data: one\n\n")
        << k;
    EXPECT_EQ(run.forwarded, stream) << k;
  }
  // A BOM later in the stream is ordinary content: "\xEF\xBB\xBFdata" is not a data field.
  const TapRun late =
      Tap({"data: one\n\n\xEF\xBB\xBF"
           "data: two\n\n"});
  ASSERT_EQ(late.events.size(), 1u);
}

TEST(SseTapTest, SplitCrLfAfterADroppedEventDropsTheLf) {
  const std::string stream = "data: a\r\n\r\ndata: b\r\n\r\n";
  const size_t cr = stream.find("\r\n\r\n") + 2;  // the blank line's CR
  const TapRun kept = Tap(SplitAt(stream, cr + 1));
  ASSERT_EQ(kept.events.size(), 2u);
  EXPECT_EQ(kept.events[0].raw, "data: a\r\n\r");  // dispatched without waiting for the LF
  EXPECT_EQ(kept.forwarded, stream);
  const TapRun dropped =
      Tap(SplitAt(stream, cr + 1), [](size_t index, const SseEvent&) { return index == 0; });
  EXPECT_EQ(dropped.forwarded, "data: b\r\n\r\n");
}

TEST(SseTapTest, EventIsDispatchedAsSoonAsItsBlankLineArrives) {
  SseTap tap;
  std::string out;
  int seen = 0;
  auto count = [&](const SseEvent&) {
    ++seen;
    return true;
  };
  tap.Feed("data: x\n", out, count);
  EXPECT_EQ(seen, 0);
  EXPECT_EQ(out, "");  // held until complete
  tap.Feed("\ndata: partial", out, count);
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(out, "data: x\n\n");
  EXPECT_TRUE(tap.Finish(out));  // the truncated event is forwarded, never dispatched
  EXPECT_EQ(out, "data: x\n\ndata: partial");
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(tap.events(), 1u);
}

TEST(SseTapTest, FinishWithoutPendingBytes) {
  SseTap tap;
  std::string out;
  tap.Feed("data: x\n\n", out, [](const SseEvent&) { return false; });
  EXPECT_EQ(out, "");
  EXPECT_FALSE(tap.Finish(out));
  EXPECT_EQ(tap.dropped_events(), 1u);
}

TEST(SseTapTest, OversizedBlockIsPassedThroughUndispatched) {
  SseTap tap(/*max_event_bytes=*/16);
  std::string out;
  int seen = 0;
  auto count = [&](const SseEvent&) {
    ++seen;
    return true;
  };
  const std::string big = "data: " + std::string(40, 'x');
  tap.Feed(big.substr(0, 20), out, count);
  EXPECT_EQ(out, big.substr(0, 20));  // no longer held
  tap.Feed(big.substr(20) + "\n\ndata: ok\n\n", out, count);
  EXPECT_EQ(out, big + "\n\ndata: ok\n\n");
  EXPECT_EQ(seen, 1);  // only the small event after it
  EXPECT_EQ(tap.oversized_events(), 1u);
  EXPECT_FALSE(tap.Finish(out));
}

TEST(SseTapTest, BlankLinesBetweenEventsAreForwarded) {
  const std::string stream = "\n\ndata: a\n\n\n\ndata: b\n\n";
  const TapRun run = Tap(Bytes(stream), [](size_t index, const SseEvent&) { return index == 0; });
  ASSERT_EQ(run.events.size(), 2u);
  EXPECT_EQ(run.forwarded, "\n\n\n\ndata: b\n\n");
}

}  // namespace
}  // namespace llmscope::gateway
