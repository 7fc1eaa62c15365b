#include "pipeline/pipeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "metrics/registry.h"
#include "pricing/price_catalog.h"
#include "testing/fake_clock.h"

namespace llmscope::pipeline {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr core::Nanos kWait = seconds(10);  // generous upper bound on waits that succeed

// A one-shot event a test thread can wait on with a deadline (never a sleep).
class Event {
 public:
  void Set() {
    std::lock_guard lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool WaitFor(core::Nanos timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// Keeps every record it is given, and the order of Consume and Flush calls.
class CollectingSink final : public core::BatchSink {
 public:
  void Consume(const std::vector<core::LlmCall>& batch) override {
    std::lock_guard lock(mu_);
    calls_.insert(calls_.end(), batch.begin(), batch.end());
    events_.push_back("consume " + std::to_string(batch.size()));
  }
  void Flush() override {
    std::lock_guard lock(mu_);
    events_.push_back("flush");
  }
  std::vector<core::LlmCall> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<core::LlmCall> calls_;
  std::vector<std::string> events_;
};

// Blocks inside its first Consume until Release(); `entered` fires when it gets there.
class BlockingSink final : public core::BatchSink {
 public:
  void Consume(const std::vector<core::LlmCall>& batch) override {
    {
      std::unique_lock lock(mu_);
      count_ += batch.size();
      if (blocked_once_) return;
      blocked_once_ = true;
    }
    entered.Set();
    release_.WaitFor(std::chrono::minutes(1));
  }
  void Release() { release_.Set(); }
  size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  Event entered;

 private:
  mutable std::mutex mu_;
  size_t count_ = 0;
  bool blocked_once_ = false;
  Event release_;
};

// Keeps warnings and errors for inspection.
class CapturingLogger final : public core::Logger {
 public:
  void Log(core::LogLevel level, std::string_view message,
           std::initializer_list<Field> fields) override {
    std::string line(message);
    for (const Field& f : fields) line += " " + std::string(f.first) + "=" + std::string(f.second);
    std::lock_guard lock(mu_);
    if (level == core::LogLevel::kWarn) warnings_.push_back(line);
    if (level == core::LogLevel::kError) errors_.push_back(line);
  }
  std::vector<std::string> warnings() const {
    std::lock_guard lock(mu_);
    return warnings_;
  }
  std::vector<std::string> errors() const {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> warnings_;
  std::vector<std::string> errors_;
};

std::shared_ptr<const pricing::PriceCatalog> TestCatalog() {
  auto catalog = pricing::PriceCatalog::FromYaml(R"(
version: test
models:
  - name: test-model
    prices:
      - input: 1.0
        output: 2.0
  - name: test-big
    prices:
      - input: 10.0
        output: 20.0
)",
                                                 "test");
  EXPECT_TRUE(catalog.ok()) << catalog.status().ToString();
  return std::make_shared<const pricing::PriceCatalog>(std::move(*catalog));
}

core::LlmCall Call(std::string id, std::string requested = "test-model",
                   std::string response = "") {
  core::LlmCall c;
  c.request_id = std::move(id);
  c.requested_model = std::move(requested);
  c.response_model = std::move(response);
  c.start_unix_nanos = 1'700'000'000'000'000'000;
  c.usage.input = 1000;
  c.usage.output = 500;
  return c;
}

// The value of one sample from a fresh Collect; -1 when absent.
double SampleValue(const metrics::Registry& r, std::string_view family, std::string_view suffix,
                   const std::vector<metrics::Label>& labels) {
  std::vector<metrics::FamilySnapshot> all;
  r.Collect(all);
  for (const metrics::FamilySnapshot& f : all) {
    if (f.name != family) continue;
    for (const metrics::Sample& s : f.samples) {
      if (s.suffix == suffix && s.labels == labels) return s.value;
    }
  }
  return -1;
}

double Dropped(const metrics::Registry& r, std::string reason) {
  return SampleValue(r, "llmscope_pipeline_records_dropped", "", {{"reason", std::move(reason)}});
}

PipelineOptions SmallOptions() {
  PipelineOptions o;
  o.queue_capacity = 1000;
  o.max_batch = 16;
  o.max_batch_delay = milliseconds(1);
  return o;
}

TEST(PriceCallTest, PricesResponseModelThenRequestedElseFlagsUnpriced) {
  auto catalog = TestCatalog();
  core::LlmCall by_response = Call("a", "test-model", "test-big");
  PriceCall(*catalog, by_response);
  ASSERT_TRUE(by_response.cost_usd.has_value());
  EXPECT_DOUBLE_EQ(*by_response.cost_usd, (1000 * 10.0 + 500 * 20.0) / 1e6);
  EXPECT_FALSE(by_response.unpriced);

  core::LlmCall fallback = Call("b", "test-model", "test-model-unknown-variant");
  PriceCall(*catalog, fallback);
  ASSERT_TRUE(fallback.cost_usd.has_value());
  EXPECT_DOUBLE_EQ(*fallback.cost_usd, (1000 * 1.0 + 500 * 2.0) / 1e6);

  core::LlmCall unknown = Call("c", "mystery-model", "");
  PriceCall(*catalog, unknown);
  EXPECT_FALSE(unknown.cost_usd.has_value());  // never a silent $0
  EXPECT_TRUE(unknown.unpriced);

  core::LlmCall preset = Call("d", "mystery-model", "");
  preset.cost_usd = 0.5;
  PriceCall(*catalog, preset);
  EXPECT_EQ(preset.cost_usd, 0.5);
  EXPECT_FALSE(preset.unpriced);

  core::LlmCall no_model = Call("e", "", "");
  PriceCall(*catalog, no_model);
  EXPECT_FALSE(no_model.cost_usd.has_value());
  EXPECT_FALSE(no_model.unpriced);  // nothing to look up is not "unpriced"
}

TEST(PipelineTest, RecordsFlowToEverySinkPricedInOrder) {
  metrics::Registry registry;
  core::NullLogger logger;
  CollectingSink a, b;
  Pipeline p(SmallOptions(), TestCatalog(), registry, logger);
  p.AddSink(&a);
  p.AddSink(&b);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Submit(Call("1", "test-model", "test-model-2024-01-01")));
  ASSERT_TRUE(p.Submit(Call("2", "mystery-model")));
  ASSERT_TRUE(p.Submit(Call("3", "test-model", "test-big")));
  ASSERT_TRUE(p.Flush(kWait));
  for (const CollectingSink* sink : {&a, &b}) {
    std::vector<core::LlmCall> got = sink->calls();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].request_id, "1");
    ASSERT_TRUE(got[0].cost_usd.has_value());
    EXPECT_DOUBLE_EQ(*got[0].cost_usd, 0.002);  // dated suffix stripped by the catalog
    EXPECT_EQ(got[1].request_id, "2");
    EXPECT_FALSE(got[1].cost_usd.has_value());
    EXPECT_TRUE(got[1].unpriced);
    EXPECT_EQ(got[2].request_id, "3");
    EXPECT_DOUBLE_EQ(*got[2].cost_usd, 0.02);
  }
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_records_processed", "", {}), 3);
  p.Stop();
}

TEST(PipelineTest, TransformRunsAfterPricingBeforeEverySink) {
  metrics::Registry registry;
  core::NullLogger logger;
  CollectingSink sink;
  Pipeline p(SmallOptions(), TestCatalog(), registry, logger);
  p.AddSink(&sink);
  p.SetTransform([](core::LlmCall& c) {
    EXPECT_TRUE(c.cost_usd.has_value());  // priced first
    c.request_body = "[redacted]";
  });
  ASSERT_TRUE(p.Start().ok());
  p.SetTransform([](core::LlmCall& c) { c.request_body = "late"; });  // ignored after Start
  core::LlmCall call = Call("1", "test-model");
  call.request_body = "secret";
  ASSERT_TRUE(p.Submit(std::move(call)));
  ASSERT_TRUE(p.Flush(kWait));
  ASSERT_EQ(sink.calls().size(), 1u);
  EXPECT_EQ(sink.calls()[0].request_body, "[redacted]");
  p.Stop();
}

TEST(PipelineTest, NullCatalogPassesRecordsThroughUnpriced) {
  metrics::Registry registry;
  core::NullLogger logger;
  CollectingSink sink;
  Pipeline p(SmallOptions(), nullptr, registry, logger);
  p.AddSink(&sink);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Submit(Call("1")));
  ASSERT_TRUE(p.Flush(kWait));
  ASSERT_EQ(sink.calls().size(), 1u);
  EXPECT_FALSE(sink.calls()[0].cost_usd.has_value());
  EXPECT_FALSE(sink.calls()[0].unpriced);
}

TEST(PipelineTest, FullQueueDropsCountsAndWarnsOncePerIntervalWithoutBlocking) {
  metrics::Registry registry;
  CapturingLogger logger;
  testing::FakeClock clock;
  PipelineOptions o;
  o.queue_capacity = 4;
  o.max_batch = 1;
  BlockingSink sink;
  Pipeline p(o, nullptr, registry, logger, clock);
  p.AddSink(&sink);
  ASSERT_TRUE(p.Start().ok());

  ASSERT_TRUE(p.Submit(Call("0")));
  ASSERT_TRUE(sink.entered.WaitFor(kWait));  // the worker holds record 0 inside Consume
  for (int i = 1; i < 4; ++i) ASSERT_TRUE(p.Submit(Call(std::to_string(i))));
  EXPECT_EQ(p.depth(), 4u);  // in-flight records count toward the capacity

  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(p.Submit(Call("x")));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, seconds(1)) << "Submit must not wait on a blocked sink";
  EXPECT_EQ(Dropped(registry, "queue_full"), 100);
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_queue_depth", "", {}), 4);
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_queue_capacity", "", {}), 4);

  // One warning for the first drop, then silence for 10 s of the clock.
  ASSERT_EQ(logger.warnings().size(), 1u);
  EXPECT_THAT(logger.warnings()[0], HasSubstr("reason=queue_full"));
  EXPECT_THAT(logger.warnings()[0], HasSubstr("dropped_since_last_warning=1 "));
  clock.Advance(seconds(9));
  EXPECT_FALSE(p.Submit(Call("x")));
  EXPECT_EQ(logger.warnings().size(), 1u);
  clock.Advance(seconds(1));
  EXPECT_FALSE(p.Submit(Call("x")));
  ASSERT_EQ(logger.warnings().size(), 2u);
  EXPECT_THAT(logger.warnings()[1], HasSubstr("dropped_since_last_warning=101 "));

  sink.Release();
  ASSERT_TRUE(p.Flush(kWait));
  EXPECT_EQ(sink.count(), 4u);
  EXPECT_EQ(p.depth(), 0u);
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_queue_depth", "", {}), 0);
  EXPECT_TRUE(p.Submit(Call("after")));  // room again
}

TEST(PipelineTest, StopDrainsEverythingQueuedThenFlushesSinksOnce) {
  metrics::Registry registry;
  core::NullLogger logger;
  PipelineOptions o = SmallOptions();
  o.max_batch = 7;
  o.max_batch_delay = std::chrono::hours(1);  // only Stop can make the partial batch go
  CollectingSink sink;
  Pipeline p(o, nullptr, registry, logger);
  p.AddSink(&sink);
  ASSERT_TRUE(p.Start().ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(p.Submit(Call(std::to_string(i))));
  p.Stop();
  std::vector<core::LlmCall> got = sink.calls();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i].request_id, std::to_string(i));
  std::vector<std::string> events = sink.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "flush");
  EXPECT_EQ(std::count(events.begin(), events.end(), "flush"), 1);
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_NE(events[i], "consume 0");
    EXPECT_NE(events[i], "flush");
  }

  EXPECT_FALSE(p.Submit(Call("late")));
  EXPECT_EQ(Dropped(registry, "stopped"), 1);
  EXPECT_EQ(Dropped(registry, "abandoned"), 0);
  p.Stop();  // idempotent
  events = sink.events();
  EXPECT_EQ(std::count(events.begin(), events.end(), "flush"), 1);
  EXPECT_FALSE(p.Start().ok());
}

TEST(PipelineTest, StopAbandonsWhatIsLeftAtTheStopTimeout) {
  metrics::Registry registry;
  CapturingLogger logger;
  testing::FakeClock clock;
  PipelineOptions o;
  o.max_batch = 1;
  o.stop_timeout = seconds(5);
  BlockingSink sink;
  Pipeline p(o, nullptr, registry, logger, clock);
  p.AddSink(&sink);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Submit(Call("0")));
  ASSERT_TRUE(sink.entered.WaitFor(kWait));
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(p.Submit(Call(std::to_string(i))));

  std::thread stopper([&] { p.Stop(); });
  // Stop has begun (and set its deadline) once Submit is refused. Probes accepted before
  // that are queued like the others.
  const auto give_up = std::chrono::steady_clock::now() + kWait;
  int accepted_probes = 0;
  while (p.Submit(Call("probe"))) {
    ++accepted_probes;
    ASSERT_LT(std::chrono::steady_clock::now(), give_up);
    std::this_thread::yield();
  }
  clock.Advance(seconds(6));
  sink.Release();
  stopper.join();

  EXPECT_EQ(sink.count(), 1u);
  EXPECT_EQ(Dropped(registry, "abandoned"), 10 + accepted_probes);
  EXPECT_EQ(p.depth(), 0u);
  ASSERT_FALSE(logger.errors().empty());
  EXPECT_THAT(logger.errors().back(),
              HasSubstr("abandoned=" + std::to_string(10 + accepted_probes) + " "));
  EXPECT_FALSE(p.Flush(kWait));  // returns at once: the worker is gone
}

TEST(PipelineTest, StopWithoutStartAbandonsQueuedRecords) {
  metrics::Registry registry;
  core::NullLogger logger;
  Pipeline p(SmallOptions(), nullptr, registry, logger);
  ASSERT_TRUE(p.Submit(Call("0")));
  ASSERT_TRUE(p.Submit(Call("1")));
  p.Stop();
  EXPECT_EQ(Dropped(registry, "abandoned"), 2);
  EXPECT_FALSE(p.Flush(kWait));
}

TEST(PipelineTest, FlushWaitsForEarlierRecordsAndCutsTheBatchDelay) {
  metrics::Registry registry;
  core::NullLogger logger;
  PipelineOptions o = SmallOptions();
  o.max_batch_delay = std::chrono::hours(1);
  CollectingSink sink;
  Pipeline p(o, nullptr, registry, logger);
  p.AddSink(&sink);
  EXPECT_TRUE(p.Flush(milliseconds(1)));  // nothing submitted: done at once
  ASSERT_TRUE(p.Submit(Call("early")));
  EXPECT_FALSE(p.Flush(milliseconds(20)));  // not started: nobody consumes
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Submit(Call("1")));
  ASSERT_TRUE(p.Flush(kWait));  // would take an hour without the flush wake-up
  EXPECT_EQ(sink.calls().size(), 2u);
}

TEST(PipelineTest, FlushTimesOutWhileASinkIsBlocked) {
  metrics::Registry registry;
  core::NullLogger logger;
  BlockingSink sink;
  Pipeline p(SmallOptions(), nullptr, registry, logger);
  p.AddSink(&sink);
  ASSERT_TRUE(p.Start().ok());
  ASSERT_TRUE(p.Submit(Call("0")));
  ASSERT_TRUE(sink.entered.WaitFor(kWait));
  EXPECT_FALSE(p.Flush(milliseconds(20)));
  sink.Release();
  EXPECT_TRUE(p.Flush(kWait));
}

TEST(PipelineTest, ConcurrentProducersEverySinkSeesExactlyTheTotal) {
  metrics::Registry registry;
  core::NullLogger logger;
  PipelineOptions o;
  o.max_batch = 64;
  o.max_batch_delay = milliseconds(1);
  CollectingSink a, b;
  Pipeline p(o, nullptr, registry, logger);
  p.AddSink(&a);
  p.AddSink(&b);
  ASSERT_TRUE(p.Start().ok());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE(p.Submit(Call(std::to_string(t) + "-" + std::to_string(i))));
      }
    });
  }
  for (std::thread& t : producers) t.join();
  ASSERT_TRUE(p.Flush(kWait));
  for (const CollectingSink* sink : {&a, &b}) {
    std::vector<core::LlmCall> got = sink->calls();
    ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kPerThread));
    std::set<std::string> ids;
    for (const core::LlmCall& c : got) ids.insert(c.request_id);
    EXPECT_EQ(ids.size(), got.size());
  }
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_records_processed", "", {}),
            kThreads * kPerThread);
  EXPECT_GE(SampleValue(registry, "llmscope_pipeline_batch_size", "_count", {}),
            kThreads * kPerThread / 64.0);
  EXPECT_EQ(SampleValue(registry, "llmscope_pipeline_batch_size", "_sum", {}),
            kThreads * kPerThread);
  EXPECT_EQ(Dropped(registry, "queue_full"), 0);
}

TEST(PipelineTest, ExposesItsMetricsWithEveryDropReasonAtZero) {
  metrics::Registry registry;
  core::NullLogger logger;
  Pipeline p(SmallOptions(), nullptr, registry, logger);
  const std::string text = registry.Render(metrics::Format::kPrometheusText);
  EXPECT_THAT(text, HasSubstr("llmscope_pipeline_records_processed_total 0\n"));
  EXPECT_THAT(text,
              HasSubstr("llmscope_pipeline_records_dropped_total{reason=\"queue_full\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("llmscope_pipeline_records_dropped_total{reason=\"stopped\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("llmscope_pipeline_records_dropped_total{reason=\"abandoned\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE llmscope_pipeline_queue_depth gauge\n"
                              "llmscope_pipeline_queue_depth 0\n"));
  EXPECT_THAT(text, HasSubstr("llmscope_pipeline_queue_capacity 1000\n"));
  EXPECT_THAT(text, HasSubstr("llmscope_pipeline_batch_size_bucket{le=\"512\"} 0\n"));
}

TEST(PipelineTest, StartReportsRegistrationFailureAndBadOptions) {
  metrics::Registry registry;
  core::NullLogger logger;
  Pipeline first(SmallOptions(), nullptr, registry, logger);
  Pipeline second(SmallOptions(), nullptr, registry, logger);
  core::Status s = second.Start();
  EXPECT_EQ(s.code(), core::StatusCode::kAlreadyExists) << s.ToString();

  ASSERT_TRUE(first.Start().ok());
  EXPECT_EQ(first.Start().code(), core::StatusCode::kFailedPrecondition);

  metrics::Registry other;
  PipelineOptions bad = SmallOptions();
  bad.max_batch = 0;
  Pipeline zero(bad, nullptr, other, logger);
  EXPECT_EQ(zero.Start().code(), core::StatusCode::kInvalidArgument);
}

TEST(PipelineTest, SinkAddedAfterStartIsIgnoredAndLogged) {
  metrics::Registry registry;
  CapturingLogger logger;
  CollectingSink late;
  Pipeline p(SmallOptions(), nullptr, registry, logger);
  ASSERT_TRUE(p.Start().ok());
  p.AddSink(&late);
  ASSERT_TRUE(p.Submit(Call("1")));
  ASSERT_TRUE(p.Flush(kWait));
  EXPECT_TRUE(late.calls().empty());
  EXPECT_EQ(logger.errors().size(), 1u);
}

}  // namespace
}  // namespace llmscope::pipeline
