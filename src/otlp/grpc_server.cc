#include "otlp/grpc_server.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <utility>
#include <vector>

#include "http/offload.h"

namespace llmscope::otlp {

namespace {

std::optional<Signal> SignalOfMethod(std::string_view method) {
  if (method == "/opentelemetry.proto.collector.trace.v1.TraceService/Export") {
    return Signal::kTraces;
  }
  if (method == "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export") {
    return Signal::kMetrics;
  }
  if (method == "/opentelemetry.proto.collector.logs.v1.LogsService/Export") {
    return Signal::kLogs;
  }
  return std::nullopt;
}

std::string ListenAddress(const std::string& host, uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos && host.front() != '[';
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

}  // namespace

std::string_view GrpcCodeName(int code) {
  static constexpr std::string_view kNames[] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

struct GrpcServer::Impl {
  // One export call. gRPC creates it when the call arrives and its callbacks (constructor,
  // OnReadDone, OnDone) run on gRPC's threads; Run() runs on a handler thread. Every path
  // ends in exactly one Finish (or StartWriteAndFinish), after which gRPC calls OnDone and
  // the reactor deletes itself: the call is only destroyed once it was answered.
  class ExportReactor final : public grpc::ServerGenericBidiReactor {
   public:
    ExportReactor(Impl& impl, Signal signal) : impl_(impl), signal_(signal) {
      StartRead(&request_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) {
        // The client closed without a message, or the call failed (cancelled, or over the
        // receive limit: gRPC has already sent the client its status, this one is unused).
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
      }
      // Handlers may block (decoding, waiting for the gateway's hand-overs): never on
      // gRPC's threads. The queue is bounded; a full one is an explicit, retryable answer.
      if (!impl_.pool.TrySubmit([this] { Run(); })) {
        if (impl_.on_refused) impl_.on_refused(signal_, kGrpcUnavailable);
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the OTLP receiver is at capacity; retry later"));
      }
    }

    void OnDone() override { delete this; }

   private:
    void Run() {
      std::vector<grpc::Slice> slices;
      std::string joined;
      std::string_view bytes;
      if (!request_.Dump(&slices).ok()) {
        Finish(grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the request message"));
        return;
      }
      if (slices.size() == 1) {
        bytes = {reinterpret_cast<const char*>(slices[0].begin()), slices[0].size()};
      } else {
        joined.reserve(request_.Length());
        for (const auto& s : slices)
          joined.append(reinterpret_cast<const char*>(s.begin()), s.size());
        bytes = joined;
      }
      GrpcReply reply = impl_.handler(signal_, bytes);
      if (reply.grpc_code != kGrpcOk) {
        Finish(grpc::Status(static_cast<grpc::StatusCode>(reply.grpc_code), reply.message));
        return;
      }
      grpc::Slice slice(reply.response_bytes);
      response_ = grpc::ByteBuffer(&slice, 1);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }

    Impl& impl_;
    const Signal signal_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
  };

  class Service final : public grpc::CallbackGenericService {
   public:
    explicit Service(Impl& impl) : impl_(impl) {}
    grpc::ServerGenericBidiReactor* CreateReactor(
        grpc::GenericCallbackServerContext* ctx) override {
      if (auto signal = SignalOfMethod(ctx->method())) return new ExportReactor(impl_, *signal);
      return grpc::CallbackGenericService::CreateReactor(ctx);  // answers UNIMPLEMENTED
    }

   private:
    Impl& impl_;
  };

  Impl(const GrpcServerOptions& options, Handler h)
      : handler(std::move(h)),
        on_refused(options.on_refused),
        service(*this),
        pool(std::max(1, options.threads), std::max<size_t>(1, options.max_queued)) {}

  Handler handler;
  std::function<void(Signal, int)> on_refused;
  Service service;
  http::WorkPool pool;
  std::unique_ptr<grpc::Server> server;  // destroyed first: its calls use the members above
  int port = 0;
  bool stopped = false;
};

GrpcServer::GrpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrpcServer::~GrpcServer() { Stop(); }

core::Result<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                            Handler handler) {
  if (!handler) return core::InvalidArgument("otlp grpc: no handler");
  if (options.host.empty()) return core::InvalidArgument("otlp grpc: empty host");
  auto impl = std::make_unique<Impl>(options, std::move(handler));
  const std::string addr = ListenAddress(options.host, options.port);
  grpc::ServerBuilder builder;
  // gRPC enables SO_REUSEPORT by default, which would let a second process bind a port that
  // is already serving; an address in use must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &impl->port);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<size_t>(options.max_receive_bytes, INT_MAX)));
  // Requests may arrive gzip-compressed (grpc-encoding: gzip); gRPC decompresses them
  // before the handler sees the message. Responses are not compressed: they are tiny.
  builder.SetCompressionAlgorithmSupportStatus(GRPC_COMPRESS_GZIP, true);
  builder.RegisterCallbackGenericService(&impl->service);
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || impl->port == 0) {
    impl->server.reset();
    return core::Unavailable("otlp grpc: cannot listen on " + addr);
  }
  return std::unique_ptr<GrpcServer>(new GrpcServer(std::move(impl)));
}

uint16_t GrpcServer::port() const { return static_cast<uint16_t>(impl_->port); }

void GrpcServer::Stop(std::chrono::milliseconds grace) {
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Shutdown returns once every call is destroyed, which needs its Finish: the handler
  // threads must still run while it waits (they answer the queued calls).
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->pool.Close();
  impl_->server.reset();
}

}  // namespace llmscope::otlp
