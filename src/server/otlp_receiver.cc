#include "server/otlp_receiver.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/ascii.h"
#include "otlp/gzip.h"

namespace llmscope::server {

namespace {

// gRPC status codes carried by google.rpc.Status in OTLP/HTTP error bodies.
constexpr int kInvalidArgument = 3;
constexpr int kResourceExhausted = 8;
constexpr int kUnimplemented = 12;
constexpr int kUnavailable = 14;

std::string_view SignalName(otlp::Signal signal) {
  switch (signal) {
    case otlp::Signal::kTraces:
      return "traces";
    case otlp::Signal::kMetrics:
      return "metrics";
    case otlp::Signal::kLogs:
      break;
  }
  return "logs";
}

}  // namespace

size_t GatewayCallIndex::TraceHash::operator()(const core::TraceId& id) const {
  uint64_t h;
  std::memcpy(&h, id.data() + 8, sizeof h);  // trace ids are random: half of one is a hash
  return static_cast<size_t>(h);
}

bool GatewayCallIndex::Submit(core::LlmCall&& c) {
  if (core::IsValid(c.parent_span_id) && core::IsValid(c.trace_id) && !otlp::IsMappedFromSpan(c)) {
    const int64_t end = c.start_unix_nanos + std::max<int64_t>(c.end_nanos, 0);
    std::lock_guard lock(mu_);
    by_trace_[c.trace_id].push_back({c.start_unix_nanos, end, c.requested_model, c.parent_span_id});
    order_.push_back(c.trace_id);
    while (order_.size() > capacity_) {
      auto it = by_trace_.find(order_.front());
      if (it != by_trace_.end()) {
        it->second.erase(it->second.begin());  // entries of a trace are in arrival order
        if (it->second.empty()) by_trace_.erase(it);
      }
      order_.pop_front();
    }
  }
  return next_.Submit(std::move(c));
}

bool GatewayCallIndex::Covers(const core::LlmCall& call) const {
  if (!core::IsValid(call.trace_id)) return false;
  const int64_t start = call.start_unix_nanos - slack_ns_;
  const int64_t end = call.start_unix_nanos + std::max<int64_t>(call.end_nanos, 0) + slack_ns_;
  std::lock_guard lock(mu_);
  auto it = by_trace_.find(call.trace_id);
  if (it == by_trace_.end()) return false;
  const Entry* match = nullptr;
  for (const Entry& e : it->second) {
    if (core::IsValid(e.claimed_by)) {
      if (e.claimed_by == call.span_id) return true;  // the same span again: an export retry
      continue;
    }
    if (core::IsValid(call.span_id) && e.parent == call.span_id) {
      match = &e;  // the gateway call continued this very span
      break;
    }
    if (match == nullptr && e.start_ns >= start && e.end_ns <= end &&
        (call.requested_model.empty() || e.model == call.requested_model)) {
      match = &e;
    }
  }
  if (match == nullptr) return false;
  match->claimed_by = call.span_id;
  return true;
}

size_t GatewayCallIndex::size() const {
  std::lock_guard lock(mu_);
  return order_.size();
}

OtlpReceiver::OtlpReceiver(OtlpReceiverOptions options, core::RecordSink& calls,
                           pipeline::StoreWriter* spans, const GatewayCallIndex* gateway_calls,
                           metrics::Registry& registry, const core::Clock& clock, core::Logger& log)
    : options_(std::move(options)),
      calls_(calls),
      spans_(spans),
      gateway_calls_(gateway_calls),
      clock_(clock),
      log_(log),
      pool_(std::max(1, options_.threads), std::max<size_t>(1, options_.max_queued)) {
  auto family = [&](const char* name, const char* help, std::vector<std::string> labels) {
    auto f = registry.AddCounter(name, help, std::move(labels));
    return f.ok() ? *f : nullptr;  // registered once per process; a second receiver shares none
  };
  requests_ = family("llmscope_otlp_requests",
                     "OTLP export requests, by transport (http, grpc), signal and response "
                     "code (HTTP status, or gRPC status code name).",
                     {"transport", "signal", "code"});
  items_ = family("llmscope_otlp_items",
                  "Spans, data points and log records received over OTLP, accepted or "
                  "rejected (partial success).",
                  {"signal", "outcome"});
  trimmed_ = family("llmscope_otlp_trimmed",
                    "Attributes, values, events and links dropped or cut to the receiver's "
                    "limits.",
                    {"what"});
  genai_points_ = family("llmscope_otlp_genai_metric_points",
                         "GenAI client histogram points received over OTLP: exposed as "
                         "otlp_gen_ai_*, or left out because their service sends GenAI spans "
                         "(counted from those) or the stream cap was reached.",
                         {"outcome"});
  llm_spans_ = family("llmscope_otlp_llm_spans",
                      "OTLP spans that describe an LLM call: mapped to a call, or the "
                      "application's view of a call the gateway already recorded.",
                      {"outcome"});
}

std::string OtlpReceiver::ConformanceJson() const { return conformance_.ToJson(); }

void OtlpReceiver::CountStats(std::string_view signal, const otlp::DecodeStats& s) {
  if (items_ != nullptr) {
    items_->WithLabels({signal, "accepted"})
        .Inc(static_cast<double>(s.items_received - s.items_rejected));
    if (s.items_rejected > 0) {
      items_->WithLabels({signal, "rejected"}).Inc(static_cast<double>(s.items_rejected));
    }
  }
  if (trimmed_ == nullptr) return;
  const std::pair<const char*, int64_t> trimmed[] = {{"attribute", s.attributes_dropped},
                                                     {"value_truncated", s.values_truncated},
                                                     {"value_too_deep", s.values_too_deep},
                                                     {"event", s.events_dropped},
                                                     {"link", s.links_dropped}};
  for (const auto& [what, n] : trimmed) {
    if (n > 0) trimmed_->WithLabels({what}).Inc(static_cast<double>(n));
  }
}

OtlpReceiver::TraceOutcome OtlpReceiver::Accept(std::vector<core::Span>&& spans) {
  TraceOutcome out;
  const otlp::MapOptions map_options{.capture_content = options_.capture_content};
  bool waited = false;
  for (auto& span : spans) {
    const otlp::Conformance conformance = otlp::DescribeDialect(span);
    if (conformance.dialect != otlp::Dialect::kNone) {
      conformance_.Add(span.service, conformance);
    }
    if (!otlp::IsGatewaySpan(span)) {
      if (auto call = otlp::MapGenAiSpan(span, map_options)) {
        if (!waited && options_.wait_for_gateway) {
          options_.wait_for_gateway();  // once per request, and only when it has LLM spans
          waited = true;
        }
        if (gateway_calls_ != nullptr && gateway_calls_->Covers(*call)) {
          ++out.gateway_duplicates;
        } else {
          ++out.calls_mapped;
          calls_.Submit(std::move(*call));  // a full queue drops and counts, never waits
        }
      }
    }
    if (!options_.capture_content) {
      otlp::StripContent(span);
    } else if (options_.redact) {
      otlp::RedactContent(span, options_.redact);
    }
  }
  if (llm_spans_ != nullptr) {
    if (out.calls_mapped > 0) {
      llm_spans_->WithLabels({"mapped"}).Inc(static_cast<double>(out.calls_mapped));
    }
    if (out.gateway_duplicates > 0) {
      llm_spans_->WithLabels({"gateway_duplicate"})
          .Inc(static_cast<double>(out.gateway_duplicates));
    }
  }
  out.spans_stored = static_cast<int64_t>(spans.size());
  if (options_.on_spans && !spans.empty()) options_.on_spans(spans);
  if (spans_ != nullptr && !spans.empty()) spans_->SubmitSpans(std::move(spans));
  return out;
}

OtlpReceiver::Response OtlpReceiver::Process(std::string_view path, std::string_view raw,
                                             otlp::Encoding encoding, bool gzip) {
  std::string inflated;
  std::string_view body = raw;
  if (gzip) {
    auto r = otlp::Gunzip(raw, options_.limits.max_body_bytes);
    if (!r.ok()) {
      const bool too_big = r.status().code() == core::StatusCode::kResourceExhausted;
      return {too_big ? 413 : 400,
              otlp::EncodeErrorStatus(encoding, too_big ? kResourceExhausted : kInvalidArgument,
                                      "gzip body: " + r.status().message())};
    }
    inflated = std::move(*r);
    body = inflated;
  }
  const otlp::Signal signal = path == "/v1/traces"    ? otlp::Signal::kTraces
                              : path == "/v1/metrics" ? otlp::Signal::kMetrics
                                                      : otlp::Signal::kLogs;
  auto response = Export(signal, body, encoding);
  if (!response.ok()) {
    const bool too_big = response.status().code() == core::StatusCode::kResourceExhausted;
    return {too_big ? 413 : 400,
            otlp::EncodeErrorStatus(encoding, too_big ? kResourceExhausted : kInvalidArgument,
                                    response.status().message())};
  }
  return {200, std::move(*response)};
}

core::Result<std::string> OtlpReceiver::Export(otlp::Signal signal, std::string_view body,
                                               otlp::Encoding encoding) {
  otlp::DecodeLimits limits = options_.limits;
  limits.now_unix_nanos = clock_.UnixNanos();
  const std::string_view name = SignalName(signal);
  switch (signal) {
    case otlp::Signal::kTraces: {
      auto batch = otlp::DecodeTraces(body, encoding, limits);
      if (!batch.ok()) return batch.status();
      CountStats(name, batch->stats);
      Accept(std::move(batch->spans));
      return otlp::EncodeExportResponse(signal, encoding, batch->rejected_spans,
                                        batch->error_message);
    }
    case otlp::Signal::kMetrics: {
      auto batch = otlp::DecodeMetrics(body, encoding, limits);
      if (!batch.ok()) return batch.status();
      CountStats(name, batch->stats);
      if (options_.genai_metrics != nullptr) {
        const auto added = options_.genai_metrics->Add(
            batch->points,
            [this](std::string_view service) { return conformance_.HasService(service); });
        if (genai_points_ != nullptr) {
          const std::pair<const char*, int64_t> outcomes[] = {
              {"exposed", added.exposed},
              {"duplicate_of_spans", added.duplicate_spans},
              {"over_cap", added.over_cap}};
          for (const auto& [outcome, n] : outcomes) {
            if (n > 0) genai_points_->WithLabels({outcome}).Inc(static_cast<double>(n));
          }
        }
      }
      return otlp::EncodeExportResponse(signal, encoding, batch->rejected_data_points,
                                        batch->error_message);
    }
    case otlp::Signal::kLogs:
      break;
  }
  auto batch = otlp::DecodeLogs(body, encoding, limits);
  if (!batch.ok()) return batch.status();
  CountStats(name, batch->stats);
  return otlp::EncodeExportResponse(signal, encoding, batch->rejected_log_records,
                                    batch->error_message);
}

otlp::GrpcReply OtlpReceiver::ProcessGrpc(otlp::Signal signal, std::string_view bytes) {
  otlp::GrpcReply reply;
  auto response = Export(signal, bytes, otlp::Encoding::kProtobuf);
  if (response.ok()) {
    reply.response_bytes = std::move(*response);
  } else {
    // RESOURCE_EXHAUSTED without RetryInfo: OTLP exporters do not retry a request that will
    // never fit; INVALID_ARGUMENT is never retried.
    reply.grpc_code = response.status().code() == core::StatusCode::kResourceExhausted
                          ? otlp::kGrpcResourceExhausted
                          : otlp::kGrpcInvalidArgument;
    reply.message = response.status().message();
    log_.Warn("otlp: grpc request rejected",
              {{"signal", std::string(SignalName(signal))},
               {"code", std::string(otlp::GrpcCodeName(reply.grpc_code))}});
  }
  CountGrpcRequest(signal, reply.grpc_code);
  return reply;
}

void OtlpReceiver::CountGrpcRequest(otlp::Signal signal, int grpc_code) {
  if (requests_ != nullptr) {
    requests_->WithLabels({"grpc", SignalName(signal), otlp::GrpcCodeName(grpc_code)}).Inc();
  }
}

const char* OtlpReceiver::Busy(size_t body_bytes) {
  if (spans_ != nullptr && options_.max_pending_spans > 0 &&
      spans_->pending_records() >= options_.max_pending_spans) {
    return "storage is behind (records waiting for the store over otlp.max_pending_spans); "
           "retry later";
  }
  const int64_t size = static_cast<int64_t>(body_bytes);
  const int64_t before = queued_bytes_.fetch_add(size, std::memory_order_relaxed);
  if (before > 0 && before + size > static_cast<int64_t>(options_.max_queued_bytes)) {
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    return "the OTLP receiver holds otlp.max_queued_bytes of requests; retry later";
  }
  return nullptr;
}

http::Task<void> OtlpReceiver::Handle(http::Request& req, http::ResponseWriter& w) {
  const std::string path(req.path());
  const std::string signal = path.substr(4);  // "traces", "metrics", "logs"
  const std::string type = core::AsciiLower(req.header("content-type").value_or(""));
  const otlp::Encoding encoding =
      type.rfind("application/json", 0) == 0 ? otlp::Encoding::kJson : otlp::Encoding::kProtobuf;
  Response r;
  const std::string content_encoding =
      core::AsciiLower(req.header("content-encoding").value_or("identity"));
  if (req.method() != "POST") {
    r = {405, otlp::EncodeErrorStatus(
                  encoding, kUnimplemented,
                  "OTLP/HTTP export requests are POST; got " + std::string(req.method()))};
  } else if (type.rfind("application/json", 0) != 0 &&
             type.rfind("application/x-protobuf", 0) != 0 &&
             type.rfind("application/protobuf", 0) != 0) {
    r = {415, otlp::EncodeErrorStatus(encoding, kInvalidArgument,
                                      "unsupported Content-Type \"" + type +
                                          "\"; OTLP/HTTP uses application/x-protobuf or "
                                          "application/json")};
  } else if (content_encoding != "gzip" && content_encoding != "identity") {
    r = {415, otlp::EncodeErrorStatus(
                  encoding, kInvalidArgument,
                  "unsupported Content-Encoding \"" + content_encoding + "\"; use gzip or none")};
  } else if (req.body_too_large()) {
    r = {413, otlp::EncodeErrorStatus(encoding, kResourceExhausted,
                                      "request body exceeds the listener's max_body_bytes")};
  } else if (const char* busy = Busy(req.body().size())) {
    r = {503, otlp::EncodeErrorStatus(encoding, kUnavailable, busy), true};
  } else {
    // The body's bytes count against max_queued_bytes until its decoding is done.
    const int64_t size = static_cast<int64_t>(req.body().size());
    const bool gzip = content_encoding == "gzip";
    const bool ran =
        co_await http::RunOnPool(pool_, [&] { r = Process(path, req.body(), encoding, gzip); });
    queued_bytes_.fetch_sub(size, std::memory_order_relaxed);
    if (!ran) {
      r = {503,
           otlp::EncodeErrorStatus(encoding, kUnavailable,
                                   "the OTLP receiver is at capacity; retry after a second"),
           true};
    }
  }
  if (requests_ != nullptr) {
    requests_->WithLabels({"http", signal, std::to_string(r.status)}).Inc();
  }
  if (r.status >= 400 && r.status != 503) {
    log_.Warn("otlp: request rejected", {{"path", path}, {"status", std::to_string(r.status)}});
  }
  http::HeaderList h{{"Content-Type", encoding == otlp::Encoding::kJson
                                          ? "application/json"
                                          : "application/x-protobuf"}};
  if (r.retry_after) h.push_back({"Retry-After", "1"});
  co_await w.Send(r.status, h, r.body);
}

}  // namespace llmscope::server
