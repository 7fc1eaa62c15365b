#include "otlp/exporter.h"

#include <gtest/gtest.h>

#include <mutex>

#include "http/test_capture_server.h"
#include "metrics/registry.h"
#include "otlp/decode.h"
#include "otlp/gzip.h"

namespace llmscope::otlp {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kT0 = 1'718'000'000'000'000'000;

core::Span SpanNo(int n) {
  core::Span s;
  s.trace_id = *core::ParseTraceIdHex("5b8efff798038103d269b633813fc60c");
  s.trace_id[0] = static_cast<uint8_t>(n / 256 + 1);
  s.span_id = {1, 2, 3, 4, 5, 6, static_cast<uint8_t>(n / 256), static_cast<uint8_t>(n % 256 + 1)};
  s.name = "span-" + std::to_string(n);
  s.service = "svc";
  s.resource_attributes = {{"service.name", std::string("svc")}};
  s.start_unix_nanos = kT0;
  s.end_unix_nanos = kT0 + 1000;
  return s;
}

std::vector<core::Span> Spans(int from, int count) {
  std::vector<core::Span> out;
  for (int i = from; i < from + count; ++i) out.push_back(SpanNo(i));
  return out;
}

double Value(const metrics::Registry& r, const std::string& series) {
  const std::string text = r.Render(metrics::Format::kPrometheusText);
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

class ExporterTest : public ::testing::Test {
 protected:
  ExporterTest() {
    options_.endpoint = server_.url();
    options_.batch_delay = 1h;  // batches leave when full, on Flush, or at Stop
    options_.sleep = [this](core::Nanos d) {
      std::lock_guard lock(mu_);
      sleeps_.push_back(d);
    };
    options_.seed = 7;
  }

  // The spans of every request the server received, decoded (and gunzipped).
  std::vector<core::Span> Received() {
    std::vector<core::Span> out;
    for (const auto& r : server_.requests()) {
      std::string body = r.body;
      if (r.header("Content-Encoding") == "gzip") {
        auto g = Gunzip(body, 64 << 20);
        EXPECT_TRUE(g.ok());
        body = *g;
      }
      auto batch = DecodeTraces(body, Encoding::kProtobuf);
      EXPECT_TRUE(batch.ok()) << batch.status().ToString();
      if (batch.ok()) out.insert(out.end(), batch->spans.begin(), batch->spans.end());
    }
    return out;
  }

  std::vector<core::Nanos> sleeps() {
    std::lock_guard lock(mu_);
    return sleeps_;
  }

  http::testutil::CaptureServer server_;
  metrics::Registry registry_;
  core::NullLogger log_;
  ExporterOptions options_;
  std::mutex mu_;
  std::vector<core::Nanos> sleeps_;
};

TEST_F(ExporterTest, BatchesArriveDecodable) {
  ASSERT_TRUE(server_.started());
  options_.max_batch_spans = 4;
  options_.headers = {{"Authorization", "Bearer t0ken"}};
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 6)));
  ASSERT_TRUE(e.Enqueue(Spans(6, 4)));
  ASSERT_TRUE(e.Flush(10s));
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);  // 4 + 4 + 2
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/v1/traces");
    EXPECT_EQ(r.content_type, "application/x-protobuf");
    EXPECT_EQ(r.header("Content-Encoding"), "gzip");
    EXPECT_EQ(r.header("Authorization"), "Bearer t0ken");
  }
  EXPECT_EQ(Received(), Spans(0, 10));
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="sent"})"), 10);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_requests_total{code="200"})"), 3);
  EXPECT_EQ(Value(registry_, "llmscope_otlp_export_queue_spans"), 0);
  EXPECT_EQ(e.queued(), 0u);
}

TEST_F(ExporterTest, UncompressedUnderABasePath) {
  options_.endpoint = server_.url("/otlp");
  options_.gzip = false;
  Exporter e(options_, nullptr, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 2)));
  ASSERT_TRUE(e.Flush(10s));
  ASSERT_EQ(server_.count(), 1u);
  EXPECT_EQ(server_.requests()[0].target, "/otlp/v1/traces");
  EXPECT_FALSE(server_.requests()[0].header("Content-Encoding").has_value());
  EXPECT_EQ(Received(), Spans(0, 2));
}

TEST_F(ExporterTest, RetriesAfter503WithBackoffAndRetryAfter) {
  server_.ScriptResponses({{503, {}}, {429, {{"Retry-After", "3"}}}, {502, {}}, {200, {}}});
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 3)));
  ASSERT_TRUE(e.Flush(10s));
  EXPECT_EQ(server_.count(), 4u);
  EXPECT_EQ(Received().size(), 12u);  // the same batch, four times
  const auto waits = sleeps();
  ASSERT_EQ(waits.size(), 3u);
  // First backoff: initial_backoff with jitter in [1/2, 1]; then Retry-After; then the
  // doubled backoff with jitter.
  EXPECT_GE(waits[0], 250ms);
  EXPECT_LE(waits[0], 500ms);
  EXPECT_EQ(waits[1], 3s);
  EXPECT_GE(waits[2], 500ms);
  EXPECT_LE(waits[2], 1000ms);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="sent"})"), 3);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="failed"})"), 0);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_requests_total{code="503"})"), 1);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_requests_total{code="200"})"), 1);
}

TEST_F(ExporterTest, BadRequestIsNotRetried) {
  server_.Script({400});
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 3)));
  ASSERT_TRUE(e.Flush(10s));
  ASSERT_TRUE(e.Enqueue(Spans(3, 1)));  // the next batch goes normally
  ASSERT_TRUE(e.Flush(10s));
  EXPECT_EQ(server_.count(), 2u);
  EXPECT_TRUE(sleeps().empty());
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="failed"})"), 3);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="sent"})"), 1);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_requests_total{code="400"})"), 1);
}

TEST_F(ExporterTest, GivesUpAfterMaxRetries) {
  options_.max_retries = 2;
  server_.Script({503, 503, 503, 503});
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 2)));
  ASSERT_TRUE(e.Flush(10s));
  EXPECT_EQ(server_.count(), 3u);  // the first attempt and two retries
  EXPECT_EQ(sleeps().size(), 2u);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="failed"})"), 2);
}

TEST_F(ExporterTest, ConnectionErrorsAreRetried) {
  options_.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  options_.max_retries = 2;
  options_.timeout = 2s;
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 1)));
  ASSERT_TRUE(e.Flush(30s));
  EXPECT_EQ(sleeps().size(), 2u);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_requests_total{code="error"})"), 3);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="failed"})"), 1);
}

TEST_F(ExporterTest, QueueOverflowDropsWholeBatchesAndCounts) {
  options_.max_queue_spans = 5;
  Exporter e(options_, &registry_, log_);
  // Not started: nothing leaves the queue.
  EXPECT_TRUE(e.Enqueue(Spans(0, 3)));
  EXPECT_FALSE(e.Enqueue(Spans(3, 3)));  // 6 > 5: the whole trace is dropped
  EXPECT_TRUE(e.Enqueue(Spans(6, 2)));   // exactly full
  EXPECT_FALSE(e.Enqueue(Spans(8, 1)));
  EXPECT_EQ(e.queued(), 5u);
  EXPECT_EQ(Value(registry_, "llmscope_otlp_export_queue_spans"), 5);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="dropped_queue_full"})"),
            4);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Flush(10s));
  std::vector<core::Span> want = Spans(0, 3);
  for (auto& s : Spans(6, 2)) want.push_back(s);
  EXPECT_EQ(Received(), want);
}

TEST_F(ExporterTest, StopFlushesWhatIsQueued) {
  options_.max_batch_spans = 100;
  Exporter e(options_, &registry_, log_);
  ASSERT_TRUE(e.Start().ok());
  ASSERT_TRUE(e.Enqueue(Spans(0, 7)));  // under a batch, and batch_delay is an hour
  e.Stop();
  EXPECT_EQ(Received(), Spans(0, 7));
  EXPECT_FALSE(e.Enqueue(Spans(7, 1)));  // stopped
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="sent"})"), 7);
}

TEST_F(ExporterTest, StopGivesUpAtItsDeadline) {
  options_.shutdown_timeout = 0s;
  Exporter e(options_, &registry_, log_);
  EXPECT_TRUE(e.Enqueue(Spans(0, 2)));  // never started: Stop cannot send them
  e.Stop();
  EXPECT_EQ(server_.count(), 0u);
  EXPECT_EQ(Value(registry_, R"(llmscope_otlp_export_spans_total{outcome="failed"})"), 2);
}

TEST_F(ExporterTest, BadEndpointIsRefusedAtStart) {
  options_.endpoint = "not a url";
  Exporter e(options_, nullptr, log_);
  EXPECT_EQ(e.Start().code(), core::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace llmscope::otlp
