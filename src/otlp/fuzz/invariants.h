#pragma once

// Shared by the fuzz targets: decode a body as every signal and abort when a result breaks
// a promise of decode.h (so the fuzzer reports it as a crash).

#include <cstdlib>
#include <string_view>
#include <variant>

#include "otlp/decode.h"

namespace llmscope::otlp::fuzz {

inline void Check(bool ok) {
  if (!ok) std::abort();
}

inline void CheckAttributes(const core::Attributes& attrs, const DecodeLimits& limits) {
  Check(attrs.size() <= limits.max_attributes);
  for (const auto& a : attrs) {
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      Check(s->size() <= limits.max_value_bytes);
    }
    if (const auto* j = std::get_if<core::JsonText>(&a.value)) {
      Check(!j->text.empty() && j->text.size() <= limits.max_value_bytes);
    }
  }
}

inline void CheckAllSignals(std::string_view body, Encoding encoding) {
  DecodeLimits limits;
  limits.max_attributes = 16;  // small limits so that the fuzzer reaches them
  limits.max_value_bytes = 64;
  limits.max_value_depth = 3;
  limits.max_events = 4;
  limits.max_links = 4;
  limits.now_unix_nanos = 1'700'000'000'000'000'000;
  if (auto t = DecodeTraces(body, encoding, limits); t.ok()) {
    Check(static_cast<int64_t>(t->spans.size()) + t->rejected_spans == t->stats.items_received);
    Check((t->rejected_spans == 0) == t->error_message.empty());
    for (const auto& s : t->spans) {
      Check(core::IsValid(s.trace_id) && core::IsValid(s.span_id));
      Check(s.start_unix_nanos > 0 && s.end_unix_nanos >= s.start_unix_nanos);
      Check(s.events.size() <= limits.max_events && s.links.size() <= limits.max_links);
      CheckAttributes(s.attributes, limits);
      CheckAttributes(s.resource_attributes, limits);
    }
  }
  if (auto m = DecodeMetrics(body, encoding, limits); m.ok()) {
    Check(static_cast<int64_t>(m->points.size()) + m->rejected_data_points ==
          m->stats.items_received);
    for (const auto& p : m->points) {
      Check(p.time_unix_nanos > 0);
      Check(p.bucket_counts.empty() || p.bucket_counts.size() == p.bounds.size() + 1);
      CheckAttributes(p.attributes, limits);
    }
  }
  if (auto l = DecodeLogs(body, encoding, limits); l.ok()) {
    Check(static_cast<int64_t>(l->records.size()) + l->rejected_log_records ==
          l->stats.items_received);
    for (const auto& r : l->records) {
      Check(r.time_unix_nanos > 0 && r.body.size() <= limits.max_value_bytes);
      CheckAttributes(r.attributes, limits);
    }
  }
}

}  // namespace llmscope::otlp::fuzz
