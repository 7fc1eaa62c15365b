#include "otlp/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "otlp/convert.h"

namespace llmscope::otlp {
namespace {

using internal::pb_collector_trace::ExportTraceServiceRequest;
using internal::pb_collector_trace::ExportTraceServiceResponse;

constexpr char kTraceExport[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
constexpr char kLogsExport[] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

// A valid request with `spans` spans (all alike, so that it compresses well).
std::string TraceRequest(int spans) {
  ExportTraceServiceRequest req;
  auto* rs = req.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("svc");
  auto* ss = rs->add_scope_spans();
  for (int i = 0; i < spans; ++i) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(15, '\1') + '\2');
    span->set_span_id(std::string(7, '\1') + static_cast<char>(i % 100 + 1));
    span->set_name("work");
    span->set_start_time_unix_nano(1'718'000'000'000'000'000);
    span->set_end_time_unix_nano(1'718'000'000'000'001'000);
  }
  return req.SerializeAsString();
}

struct CallResult {
  grpc::Status status;
  std::string response;
};

// Unary calls over loopback with gRPC's generic stub and a completion queue of its own:
// Next() waits for the next call to complete (no callbacks on gRPC's threads, so every
// ClientContext outlives its call).
class Client {
 public:
  explicit Client(uint16_t port)
      : stub_(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials())) {}
  ~Client() {
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  void Start(const std::string& method, const std::string& request, bool gzip = false) {
    auto call = std::make_unique<Pending>();
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (gzip) call->ctx.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    grpc::Slice slice(request);
    call->request = grpc::ByteBuffer(&slice, 1);
    call->reader = stub_.PrepareUnaryCall(&call->ctx, method, call->request, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call.get());
    calls_.push_back(std::move(call));
  }

  // The result of the next call to complete.
  CallResult Next() {
    void* tag = nullptr;
    bool ok = false;
    if (!cq_.Next(&tag, &ok))
      return {grpc::Status(grpc::StatusCode::INTERNAL, "queue shut down"), {}};
    auto* call = static_cast<Pending*>(tag);
    CallResult r{call->status, {}};
    std::vector<grpc::Slice> slices;
    if (r.status.ok() && call->response.Dump(&slices).ok()) {
      for (const auto& s : slices) {
        r.response.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
    return r;
  }

  CallResult Call(const std::string& method, const std::string& request, bool gzip = false) {
    Start(method, request, gzip);
    return Next();
  }

 private:
  struct Pending {
    grpc::ClientContext ctx;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    grpc::Status status;
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  };
  grpc::GenericStub stub_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Pending>> calls_;
};

// Records what reached the handler and answers with a fixed reply.
struct Recorder {
  std::mutex mu;
  std::vector<std::pair<Signal, std::string>> calls;
  GrpcReply reply;
  GrpcServer::Handler Handler() {
    return [this](Signal signal, std::string_view bytes) {
      std::lock_guard lock(mu);
      calls.emplace_back(signal, std::string(bytes));
      return reply;
    };
  }
};

std::unique_ptr<GrpcServer> StartServer(GrpcServer::Handler handler,
                                        GrpcServerOptions options = {}) {
  auto server = GrpcServer::Start(options, std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().message();
  if (!server.ok()) return nullptr;
  EXPECT_NE((*server)->port(), 0);
  return std::move(server).value();
}

TEST(GrpcServerTest, ExportReachesTheHandlerAndItsReplyComesBack) {
  Recorder rec;
  ExportTraceServiceResponse response;
  response.mutable_partial_success()->set_rejected_spans(1);
  response.mutable_partial_success()->set_error_message("one span had no name");
  rec.reply.response_bytes = response.SerializeAsString();
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);

  const std::string request = TraceRequest(3);
  CallResult r = Client(server->port()).Call(kTraceExport, request);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.response, rec.reply.response_bytes);
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].first, Signal::kTraces);
  EXPECT_EQ(rec.calls[0].second, request);  // the exact bytes
}

TEST(GrpcServerTest, EachServiceMapsToItsSignal) {
  Recorder rec;
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  ASSERT_TRUE(client.Call(kLogsExport, "").status.ok());
  ASSERT_TRUE(client.Call("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "")
                  .status.ok());
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].first, Signal::kLogs);
  EXPECT_EQ(rec.calls[1].first, Signal::kMetrics);
}

TEST(GrpcServerTest, TheHandlersErrorCodeAndMessageEndTheCall) {
  Recorder rec;
  rec.reply = {kGrpcInvalidArgument, "not an ExportTraceServiceRequest", "ignored"};
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);
  CallResult r = Client(server->port()).Call(kTraceExport, "\xff\xff");
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(r.status.error_message(), "not an ExportTraceServiceRequest");
}

TEST(GrpcServerTest, UnknownMethodIsUnimplemented) {
  Recorder rec;
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  EXPECT_EQ(client.Call("/opentelemetry.proto.collector.trace.v1.TraceService/Other", "x")
                .status.error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(client.Call("/grpc.health.v1.Health/Check", "").status.error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(rec.calls.empty());
}

TEST(GrpcServerTest, OversizedMessageIsResourceExhausted) {
  Recorder rec;
  GrpcServerOptions options;
  options.max_receive_bytes = 1024;
  auto server = StartServer(rec.Handler(), options);
  ASSERT_NE(server, nullptr);
  const std::string request = TraceRequest(100);
  ASSERT_GT(request.size(), 1024u);
  CallResult r = Client(server->port()).Call(kTraceExport, request);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << r.status.error_message();
  EXPECT_TRUE(rec.calls.empty());
}

TEST(GrpcServerTest, GzipCompressedRequestArrivesDecompressed) {
  Recorder rec;
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);
  const std::string request = TraceRequest(200);
  CallResult r = Client(server->port()).Call(kTraceExport, request, /*gzip=*/true);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].second, request);
}

// With one handler thread busy and a queue of one, a third concurrent call is refused with
// UNAVAILABLE (retryable) at once, while the others are answered once the handler returns.
TEST(GrpcServerTest, SaturatedServerAnswersUnavailable) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  auto handler = [&](Signal, std::string_view) {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return GrpcReply{};
  };
  GrpcServerOptions options;
  options.threads = 1;
  options.max_queued = 1;
  auto server = StartServer(handler, options);
  ASSERT_NE(server, nullptr);
  Client client(server->port());
  client.Start(kTraceExport, "");
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });  // the only handler thread is now busy
  }
  client.Start(kTraceExport, "");
  client.Start(kTraceExport, "");
  // One of the two is queued and cannot complete before the release; the other finds the
  // queue full, so the first completion must be that refusal.
  CallResult first = client.Next();
  EXPECT_EQ(first.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << first.status.error_message();
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (int i = 0; i < 2; ++i) {
    CallResult r = client.Next();
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  }
}

TEST(GrpcServerTest, AnAddressInUseIsAnError) {
  Recorder rec;
  auto first = StartServer(rec.Handler());
  ASSERT_NE(first, nullptr);
  GrpcServerOptions options;
  options.port = first->port();
  auto second = GrpcServer::Start(options, rec.Handler());
  EXPECT_FALSE(second.ok());
}

TEST(GrpcServerTest, StopIsIdempotentAndRefusesNewCalls) {
  Recorder rec;
  auto server = StartServer(rec.Handler());
  ASSERT_NE(server, nullptr);
  const uint16_t port = server->port();
  ASSERT_TRUE(Client(port).Call(kTraceExport, "").status.ok());
  server->Stop();
  server->Stop();
  EXPECT_FALSE(Client(port).Call(kTraceExport, "").status.ok());
  EXPECT_EQ(rec.calls.size(), 1u);
}

TEST(GrpcServerTest, CodeNames) {
  EXPECT_EQ(GrpcCodeName(kGrpcOk), "OK");
  EXPECT_EQ(GrpcCodeName(kGrpcInvalidArgument), "INVALID_ARGUMENT");
  EXPECT_EQ(GrpcCodeName(kGrpcResourceExhausted), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(GrpcCodeName(kGrpcUnavailable), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(17), "UNKNOWN");
}

}  // namespace
}  // namespace llmscope::otlp
