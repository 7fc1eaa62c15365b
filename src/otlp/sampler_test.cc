#include "otlp/sampler.h"

#include <gtest/gtest.h>

#include "metrics/registry.h"
#include "testing/fake_clock.h"

namespace llmscope::otlp {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT0 = 1'718'000'000'000'000'000;
constexpr int64_t kMs = 1'000'000;

core::TraceId TraceNo(uint64_t low) {
  core::TraceId id{};
  id[0] = 0xab;
  for (int i = 0; i < 8; ++i) id[15 - i] = static_cast<uint8_t>(low >> (8 * i));
  return id;
}

core::Span SpanOf(const core::TraceId& trace, uint8_t id, uint8_t parent = 0) {
  core::Span s;
  s.trace_id = trace;
  s.span_id = {1, 1, 1, 1, 1, 1, 1, id};
  if (parent != 0) s.parent_span_id = {1, 1, 1, 1, 1, 1, 1, parent};
  s.name = "span";
  s.start_unix_nanos = kT0;
  s.end_unix_nanos = kT0 + 100 * kMs;
  return s;
}

double Value(const metrics::Registry& r, const std::string& series) {
  const std::string text = r.Render(metrics::Format::kPrometheusText);
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

std::string Kept(const std::string& reason) {
  return R"(llmscope_otlp_sampled_traces_total{decision="kept",reason=")" + reason + "\"}";
}
const std::string kDropped =
    R"(llmscope_otlp_sampled_traces_total{decision="dropped",reason="not_sampled"})";

class TailSamplerTest : public ::testing::Test {
 protected:
  TailSamplerTest() { options_.ratio = 0; }
  std::unique_ptr<TailSampler> Make() {
    return std::make_unique<TailSampler>(
        options_, [this](std::vector<core::Span>&& spans) { out_.push_back(std::move(spans)); },
        clock_, &registry_);
  }
  SamplerOptions options_;
  testing::FakeClock clock_;
  metrics::Registry registry_;
  std::vector<std::vector<core::Span>> out_;  // one entry per kept trace (or late spans)
};

TEST(TraceIdSampledTest, ComparesTheLowEightBytesWithRatioTimesTwoToThe64) {
  EXPECT_TRUE(TraceIdSampled(TraceNo(0), 0.5));
  EXPECT_TRUE(TraceIdSampled(TraceNo((1ull << 63) - 1), 0.5));
  EXPECT_FALSE(TraceIdSampled(TraceNo(1ull << 63), 0.5));
  EXPECT_FALSE(TraceIdSampled(TraceNo(~0ull), 0.999));
  EXPECT_TRUE(TraceIdSampled(TraceNo(~0ull), 1.0));
  EXPECT_FALSE(TraceIdSampled(TraceNo(0), 0.0));
  // The high bytes play no part.
  core::TraceId id = TraceNo(1ull << 62);
  id[0] = 0xff;
  id[7] = 0x12;
  EXPECT_TRUE(TraceIdSampled(id, 0.5));
  EXPECT_FALSE(TraceIdSampled(id, 0.25));
}

TEST(TraceIdSampledTest, KeepsAboutTheRatioOfRandomIds) {
  int kept = 0;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < 10'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    kept += TraceIdSampled(TraceNo(x), 0.1) ? 1 : 0;
  }
  EXPECT_NEAR(kept, 1000, 150);
}

TEST_F(TailSamplerTest, RatioIsDeterministicOnTheTraceId) {
  options_.ratio = 0.5;
  auto s = Make();
  const core::TraceId in = TraceNo(1ull << 62), out = TraceNo(3ull << 62);
  for (int round = 0; round < 2; ++round) {  // the same ids, the same decisions
    core::TraceId a = in, b = out;
    a[0] = static_cast<uint8_t>(round);  // fresh traces with the same low bytes
    b[0] = static_cast<uint8_t>(round);
    s->Add({SpanOf(a, 2, 1), SpanOf(a, 1)});
    s->Add({SpanOf(b, 1)});
  }
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].size(), 2u);
  EXPECT_EQ(out_[0][0].trace_id[15], in[15]);
  EXPECT_EQ(Value(registry_, Kept("ratio")), 2);
  EXPECT_EQ(Value(registry_, kDropped), 2);
  EXPECT_EQ(s->pending(), 0u);
}

TEST_F(TailSamplerTest, ErrorKeptAtRatioZero) {
  auto s = Make();
  core::Span child = SpanOf(TraceNo(1), 2, 1);
  child.status = core::SpanStatus::kError;
  s->Add({child});
  EXPECT_TRUE(out_.empty());  // waiting for the root
  s->Add({SpanOf(TraceNo(1), 1)});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].size(), 2u);  // the whole trace, not just the error span
  EXPECT_EQ(Value(registry_, Kept("error")), 1);

  s->Add({SpanOf(TraceNo(2), 1)});  // an ordinary trace at ratio 0
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, ErrorsNotKeptWhenSwitchedOff) {
  options_.keep_errors = false;
  auto s = Make();
  core::Span root = SpanOf(TraceNo(1), 1);
  root.status = core::SpanStatus::kError;
  s->Add({root});
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, SlowKept) {
  options_.slow = 2s;
  auto s = Make();
  core::Span slow = SpanOf(TraceNo(1), 1);
  slow.end_unix_nanos = slow.start_unix_nanos + 2001 * kMs;
  core::Span quick = SpanOf(TraceNo(2), 1);
  quick.end_unix_nanos = quick.start_unix_nanos + 2000 * kMs;  // not over
  s->Add({slow, quick});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0][0].trace_id, TraceNo(1));
  EXPECT_EQ(Value(registry_, Kept("slow")), 1);
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, ExpensiveKept) {
  options_.expensive_usd = 0.5;
  auto s = Make();
  core::Span call = SpanOf(TraceNo(1), 2, 1);
  call.attributes = {{"llmscope.cost_usd", 0.75}};
  core::Span cheap = SpanOf(TraceNo(2), 1);
  cheap.attributes = {{"llmscope.cost_usd", 0.5}};
  s->Add({call, SpanOf(TraceNo(1), 1), cheap});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].size(), 2u);
  EXPECT_EQ(Value(registry_, Kept("expensive")), 1);
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, DecidedWhenTheRootEndsAndLateSpansFollow) {
  options_.ratio = 1;
  auto s = Make();
  s->Add({SpanOf(TraceNo(1), 2, 1), SpanOf(TraceNo(1), 3, 2)});
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(s->pending(), 1u);
  s->Add({SpanOf(TraceNo(1), 1)});
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0].size(), 3u);
  EXPECT_EQ(s->pending(), 0u);
  s->Add({SpanOf(TraceNo(1), 4, 1)});  // late: sent on at once, alone
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[1].size(), 1u);
  EXPECT_EQ(Value(registry_, Kept("ratio")), 1);  // one trace, one decision
}

TEST_F(TailSamplerTest, LateSpansOfADroppedTraceAreDropped) {
  auto s = Make();
  s->Add({SpanOf(TraceNo(1), 1)});
  s->Add({SpanOf(TraceNo(1), 2, 1)});
  EXPECT_TRUE(out_.empty());
  EXPECT_EQ(s->pending(), 0u);
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, DecidedAfterDecisionWaitWithoutARoot) {
  options_.decision_wait = 5s;
  auto s = Make();
  core::Span err = SpanOf(TraceNo(1), 2, 1);
  err.status = core::SpanStatus::kError;
  s->Add({err});
  clock_.Advance(2s);
  s->Add({SpanOf(TraceNo(2), 2, 1)});
  clock_.Advance(2999ms);
  s->Tick();
  EXPECT_TRUE(out_.empty());  // 4.999 s: not yet
  clock_.Advance(1ms);
  s->Tick();
  ASSERT_EQ(out_.size(), 1u);  // the first trace, kept for its error
  EXPECT_EQ(s->pending(), 1u);
  clock_.Advance(2s);
  s->Tick();
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(s->pending(), 0u);
  EXPECT_EQ(Value(registry_, Kept("error")), 1);
  EXPECT_EQ(Value(registry_, kDropped), 1);
}

TEST_F(TailSamplerTest, MemoryBoundDecidesTheOldestEarly) {
  options_.max_traces = 2;
  options_.ratio = 1;
  auto s = Make();
  s->Add({SpanOf(TraceNo(1), 2, 1)});
  s->Add({SpanOf(TraceNo(2), 2, 1)});
  EXPECT_TRUE(out_.empty());
  s->Add({SpanOf(TraceNo(3), 2, 1)});  // a third: the first is decided now
  ASSERT_EQ(out_.size(), 1u);
  EXPECT_EQ(out_[0][0].trace_id, TraceNo(1));
  EXPECT_EQ(s->pending(), 2u);
  EXPECT_EQ(Value(registry_, "llmscope_otlp_sampler_early_decisions_total"), 1);
  s->Add({SpanOf(TraceNo(2), 3, 1)});  // a span of a pending trace adds no trace
  EXPECT_EQ(s->pending(), 2u);
  s->Flush();
  EXPECT_EQ(out_.size(), 3u);
  EXPECT_EQ(out_[1].size(), 2u);
  EXPECT_EQ(s->pending(), 0u);
}

TEST_F(TailSamplerTest, StopFlushes) {
  options_.ratio = 1;
  auto s = Make();
  s->Start();
  s->Add({SpanOf(TraceNo(1), 2, 1)});
  s->Stop();
  EXPECT_EQ(out_.size(), 1u);
  EXPECT_EQ(s->pending(), 0u);
}

}  // namespace
}  // namespace llmscope::otlp
