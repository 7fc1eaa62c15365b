#include "core/span.h"

namespace llmscope::core {

std::string_view SpanKindName(SpanKind k) {
  switch (k) {
    case SpanKind::kUnspecified:
      return "unspecified";
    case SpanKind::kInternal:
      return "internal";
    case SpanKind::kServer:
      return "server";
    case SpanKind::kClient:
      return "client";
    case SpanKind::kProducer:
      return "producer";
    case SpanKind::kConsumer:
      return "consumer";
  }
  return "unknown";
}

std::string_view SpanStatusName(SpanStatus s) {
  switch (s) {
    case SpanStatus::kUnset:
      return "unset";
    case SpanStatus::kOk:
      return "ok";
    case SpanStatus::kError:
      return "error";
  }
  return "unknown";
}

}  // namespace llmscope::core
