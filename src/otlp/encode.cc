#include "otlp/encode.h"

#include <boost/json.hpp>
#include <limits>
#include <utility>

#include "otlp/convert.h"

namespace llmscope::otlp {
namespace {

namespace json = boost::json;
namespace pb_common = internal::pb_common;
namespace pb_trace = internal::pb_trace;

void FromJson(const json::value& v, pb_common::AnyValue& out) {
  switch (v.kind()) {
    case json::kind::null:
      return;  // an empty AnyValue, as the decoder read it
    case json::kind::bool_:
      out.set_bool_value(v.get_bool());
      return;
    case json::kind::int64:
      out.set_int_value(v.get_int64());
      return;
    case json::kind::uint64:
      if (v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out.set_int_value(static_cast<int64_t>(v.get_uint64()));
      } else {
        out.set_double_value(static_cast<double>(v.get_uint64()));
      }
      return;
    case json::kind::double_:
      out.set_double_value(v.get_double());
      return;
    case json::kind::string:
      out.set_string_value(std::string(v.get_string()));
      return;
    case json::kind::array: {
      auto* arr = out.mutable_array_value();
      for (const json::value& e : v.get_array()) FromJson(e, *arr->add_values());
      return;
    }
    case json::kind::object: {
      auto* kvs = out.mutable_kvlist_value();
      for (const auto& kv : v.get_object()) {
        auto* e = kvs->add_values();
        e->set_key(std::string(kv.key()));
        FromJson(kv.value(), *e->mutable_value());
      }
      return;
    }
  }
}

void Value(const core::AttributeValue& v, pb_common::AnyValue& out) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    out.set_string_value(*s);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    out.set_bool_value(*b);
  } else if (const auto* i = std::get_if<int64_t>(&v)) {
    out.set_int_value(*i);
  } else if (const auto* d = std::get_if<double>(&v)) {
    out.set_double_value(*d);
  } else {
    const std::string& text = std::get<core::JsonText>(v).text;
    boost::system::error_code ec;
    json::value parsed = json::parse(text, ec);
    if (ec || !(parsed.is_array() || parsed.is_object())) {
      out.set_string_value(text);
    } else {
      FromJson(parsed, out);
    }
  }
}

void Attributes(const core::Attributes& in,
                google::protobuf::RepeatedPtrField<pb_common::KeyValue>& out) {
  out.Reserve(static_cast<int>(in.size()));
  for (const core::Attribute& a : in) {
    auto* kv = out.Add();
    kv->set_key(a.key);
    Value(a.value, *kv->mutable_value());
  }
}

template <size_t N>
std::string Bytes(const std::array<uint8_t, N>& id) {
  return std::string(reinterpret_cast<const char*>(id.data()), N);
}

void FillSpan(const core::Span& s, pb_trace::Span& out) {
  out.set_trace_id(Bytes(s.trace_id));
  out.set_span_id(Bytes(s.span_id));
  if (core::IsValid(s.parent_span_id)) out.set_parent_span_id(Bytes(s.parent_span_id));
  out.set_name(s.name);
  out.set_kind(static_cast<pb_trace::Span::SpanKind>(s.kind));
  out.set_start_time_unix_nano(static_cast<uint64_t>(s.start_unix_nanos));
  out.set_end_time_unix_nano(static_cast<uint64_t>(s.end_unix_nanos));
  Attributes(s.attributes, *out.mutable_attributes());
  for (const core::SpanEvent& e : s.events) {
    auto* ev = out.add_events();
    ev->set_time_unix_nano(static_cast<uint64_t>(e.time_unix_nanos));
    ev->set_name(e.name);
    Attributes(e.attributes, *ev->mutable_attributes());
  }
  for (const core::SpanLink& l : s.links) {
    auto* link = out.add_links();
    link->set_trace_id(Bytes(l.trace_id));
    link->set_span_id(Bytes(l.span_id));
    Attributes(l.attributes, *link->mutable_attributes());
  }
  if (s.status != core::SpanStatus::kUnset || !s.status_message.empty()) {
    out.mutable_status()->set_code(static_cast<pb_trace::Status::StatusCode>(s.status));
    out.mutable_status()->set_message(s.status_message);
  }
}

bool HasServiceName(const core::Attributes& resource) {
  for (const auto& a : resource) {
    if (a.key == "service.name") return true;
  }
  return false;
}

}  // namespace

std::string EncodeTraces(const std::vector<core::Span>& spans) {
  internal::pb_collector_trace::ExportTraceServiceRequest request;
  // Group keys: a resource is its service and attributes; a scope is its name within it.
  // Linear searches: a batch holds a handful of resources and scopes.
  struct Resource {
    const core::Span* first;  // the span whose service and resource attributes it carries
    pb_trace::ResourceSpans* out;
    std::vector<std::pair<const std::string*, pb_trace::ScopeSpans*>> scopes;
  };
  std::vector<Resource> resources;
  for (const core::Span& s : spans) {
    Resource* r = nullptr;
    for (Resource& candidate : resources) {
      if (candidate.first->service == s.service &&
          candidate.first->resource_attributes == s.resource_attributes) {
        r = &candidate;
        break;
      }
    }
    if (r == nullptr) {
      auto* rs = request.add_resource_spans();
      auto* attrs = rs->mutable_resource()->mutable_attributes();
      if (!s.service.empty() && !HasServiceName(s.resource_attributes)) {
        auto* kv = attrs->Add();
        kv->set_key("service.name");
        kv->mutable_value()->set_string_value(s.service);
      }
      Attributes(s.resource_attributes, *attrs);
      r = &resources.emplace_back(Resource{&s, rs, {}});
    }
    pb_trace::ScopeSpans* scope = nullptr;
    for (auto& [name, ss] : r->scopes) {
      if (*name == s.scope) {
        scope = ss;
        break;
      }
    }
    if (scope == nullptr) {
      scope = r->out->add_scope_spans();
      scope->mutable_scope()->set_name(s.scope);
      r->scopes.emplace_back(&s.scope, scope);
    }
    FillSpan(s, *scope->add_spans());
  }
  std::string out;
  request.SerializeToString(&out);
  return out;
}

}  // namespace llmscope::otlp
