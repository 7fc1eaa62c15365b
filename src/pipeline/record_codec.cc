#include "pipeline/record_codec.h"

#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

namespace llmscope::pipeline {
namespace {

// The fewest bytes one element of each kind can take (every string empty, every varint one
// byte, every optional absent). A count larger than remaining / minimum cannot be honest,
// so it is refused before anything is allocated. record_codec_test checks these against
// the encoder.
constexpr size_t kMinCallBytes = 65;
constexpr size_t kMinSpanBytes = 44;
constexpr size_t kMinAttributeBytes = 3;
constexpr size_t kMinEventBytes = 3;
constexpr size_t kMinLinkBytes = 25;
constexpr size_t kMinTagBytes = 2;
constexpr size_t kMinStringBytes = 1;

enum AttributeType : uint8_t { kString = 0, kBool = 1, kInt = 2, kDouble = 3, kJson = 4 };

// ---------------------------------------------------------------------------------------
// Encoding

class Encoder {
 public:
  explicit Encoder(RecordKind kind, size_t count) {
    out_.reserve(64 + count * 96);
    PutU8(kRecordCodecVersion);
    PutU8(static_cast<uint8_t>(kind));
    PutVarint(count);
  }

  void PutU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutBool(bool v) { PutU8(v ? 1 : 0); }
  void PutVarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void PutSigned(int64_t v) {
    PutVarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void PutDouble(double v) {
    uint64_t bits = std::bit_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  }
  void PutString(std::string_view s) {
    PutVarint(s.size());
    out_.append(s);
  }
  template <size_t N>
  void PutId(const std::array<uint8_t, N>& id) {
    out_.append(reinterpret_cast<const char*>(id.data()), N);
  }
  void PutOptionalSigned(const std::optional<int64_t>& v) {
    PutBool(v.has_value());
    if (v) PutSigned(*v);
  }
  void PutOptionalDouble(const std::optional<double>& v) {
    PutBool(v.has_value());
    if (v) PutDouble(*v);
  }

  void PutAttributes(const core::Attributes& attributes) {
    PutVarint(attributes.size());
    for (const core::Attribute& a : attributes) {
      PutString(a.key);
      if (const auto* s = std::get_if<std::string>(&a.value)) {
        PutU8(kString);
        PutString(*s);
      } else if (const auto* b = std::get_if<bool>(&a.value)) {
        PutU8(kBool);
        PutBool(*b);
      } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
        PutU8(kInt);
        PutSigned(*i);
      } else if (const auto* d = std::get_if<double>(&a.value)) {
        PutU8(kDouble);
        PutDouble(*d);
      } else {
        PutU8(kJson);
        PutString(std::get<core::JsonText>(a.value).text);
      }
    }
  }

  void PutCall(const core::LlmCall& c) {
    PutString(c.request_id);
    PutId(c.trace_id);
    PutId(c.span_id);
    PutId(c.parent_span_id);
    PutSigned(c.start_unix_nanos);
    PutSigned(c.first_byte_nanos);
    PutSigned(c.first_content_nanos);
    PutSigned(c.end_nanos);
    PutSigned(c.overhead_nanos);
    PutU8(static_cast<uint8_t>(c.endpoint));
    PutBool(c.stream);
    PutString(c.requested_model);
    PutString(c.response_model);
    PutString(c.provider);
    PutString(c.provider_kind);
    PutSigned(c.http_status);
    PutU8(static_cast<uint8_t>(c.error));
    PutString(c.error_message);
    PutBool(c.client_cancelled);
    PutOptionalSigned(c.max_tokens);
    PutOptionalDouble(c.temperature);
    PutOptionalDouble(c.top_p);
    PutVarint(c.finish_reasons.size());
    for (const std::string& r : c.finish_reasons) PutString(r);
    PutSigned(c.usage.input);
    PutSigned(c.usage.output);
    PutSigned(c.usage.cache_read);
    PutSigned(c.usage.cache_write);
    PutSigned(c.usage.reasoning);
    PutU8(static_cast<uint8_t>(c.usage_source));
    PutOptionalDouble(c.cost_usd);
    PutBool(c.unpriced);
    PutString(c.user);
    PutString(c.session);
    PutVarint(c.tags.size());
    for (const auto& [key, value] : c.tags) {
      PutString(key);
      PutString(value);
    }
    PutString(c.request_body);
    PutString(c.response_text);
  }

  void PutSpan(const core::Span& s) {
    PutId(s.trace_id);
    PutId(s.span_id);
    PutId(s.parent_span_id);
    PutString(s.name);
    PutU8(static_cast<uint8_t>(s.kind));
    PutString(s.service);
    PutString(s.scope);
    PutSigned(s.start_unix_nanos);
    PutSigned(s.end_unix_nanos);
    PutU8(static_cast<uint8_t>(s.status));
    PutString(s.status_message);
    PutAttributes(s.resource_attributes);
    PutAttributes(s.attributes);
    PutVarint(s.events.size());
    for (const core::SpanEvent& e : s.events) {
      PutSigned(e.time_unix_nanos);
      PutString(e.name);
      PutAttributes(e.attributes);
    }
    PutVarint(s.links.size());
    for (const core::SpanLink& l : s.links) {
      PutId(l.trace_id);
      PutId(l.span_id);
      PutAttributes(l.attributes);
    }
  }

  std::string Take() && { return std::move(out_); }

 private:
  std::string out_;
};

// ---------------------------------------------------------------------------------------
// Decoding

// Reads fields in order with every access bounds-checked. The first failure is kept (its
// message names the field and offset) and every later read fails at once, so callers may
// read a whole record and check ok() once.
class Decoder {
 public:
  explicit Decoder(std::string_view in) : in_(in) {}

  bool ok() const { return error_.ok(); }
  const core::Status& error() const { return error_; }
  size_t remaining() const { return in_.size() - pos_; }
  size_t pos() const { return pos_; }

  bool Fail(std::string_view field, std::string_view problem) {
    if (error_.ok()) {
      error_ = core::InvalidArgument("record codec: " + std::string(problem) + " reading " +
                                     std::string(field) + " at offset " + std::to_string(pos_));
    }
    return false;
  }

  bool GetU8(std::string_view field, uint8_t& v) {
    if (!ok()) return false;
    if (remaining() < 1) return Fail(field, "truncated input");
    v = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  bool GetBool(std::string_view field, bool& v) {
    uint8_t b = 0;
    if (!GetU8(field, b)) return false;
    if (b > 1) {
      pos_ -= 1;  // point at the byte
      return Fail(field, "invalid bool " + std::to_string(b));
    }
    v = b == 1;
    return true;
  }
  bool GetVarint(std::string_view field, uint64_t& v) {
    if (!ok()) return false;
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (remaining() < 1) return Fail(field, "truncated varint");
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      // The tenth byte may only carry the top bit of a 64-bit value.
      if (shift == 63 && byte > 1) return Fail(field, "varint overflows 64 bits");
      result |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        v = result;
        return true;
      }
    }
    return Fail(field, "varint longer than 10 bytes");
  }
  bool GetSigned(std::string_view field, int64_t& v) {
    uint64_t u = 0;
    if (!GetVarint(field, u)) return false;
    v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
    return true;
  }
  bool GetInt(std::string_view field, int& v) {
    int64_t wide = 0;
    if (!GetSigned(field, wide)) return false;
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      return Fail(field, "value out of range for int");
    }
    v = static_cast<int>(wide);
    return true;
  }
  bool GetDouble(std::string_view field, double& v) {
    if (!ok()) return false;
    if (remaining() < 8) return Fail(field, "truncated double");
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) {
      bits |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
    }
    pos_ += 8;
    v = std::bit_cast<double>(bits);
    return true;
  }
  bool GetString(std::string_view field, std::string& s) {
    uint64_t n = 0;
    if (!GetVarint(field, n)) return false;
    if (n > remaining()) {
      return Fail(field, "length " + std::to_string(n) + " exceeds the " +
                             std::to_string(remaining()) + " bytes left");
    }
    s.assign(in_.substr(pos_, n));
    pos_ += n;
    return true;
  }
  template <size_t N>
  bool GetId(std::string_view field, std::array<uint8_t, N>& id) {
    if (!ok()) return false;
    if (remaining() < N) return Fail(field, "truncated id");
    std::memcpy(id.data(), in_.data() + pos_, N);
    pos_ += N;
    return true;
  }
  // A count of elements that take at least `min_bytes` each.
  bool GetCount(std::string_view field, size_t min_bytes, size_t& count) {
    uint64_t n = 0;
    if (!GetVarint(field, n)) return false;
    if (n > remaining() / min_bytes) {
      return Fail(field, "count " + std::to_string(n) + " cannot fit in the " +
                             std::to_string(remaining()) + " bytes left");
    }
    count = static_cast<size_t>(n);
    return true;
  }
  // An enum stored as one byte whose valid values are 0..max.
  template <typename E>
  bool GetEnum(std::string_view field, uint8_t max, E& e) {
    uint8_t v = 0;
    if (!GetU8(field, v)) return false;
    if (v > max) {
      pos_ -= 1;  // point at the byte
      return Fail(field, "invalid value " + std::to_string(v));
    }
    e = static_cast<E>(v);
    return true;
  }
  bool GetOptionalSigned(std::string_view field, std::optional<int64_t>& v) {
    bool present = false;
    if (!GetBool(field, present)) return false;
    if (!present) {
      v.reset();
      return true;
    }
    int64_t x = 0;
    if (!GetSigned(field, x)) return false;
    v = x;
    return true;
  }
  bool GetOptionalDouble(std::string_view field, std::optional<double>& v) {
    bool present = false;
    if (!GetBool(field, present)) return false;
    if (!present) {
      v.reset();
      return true;
    }
    double x = 0;
    if (!GetDouble(field, x)) return false;
    v = x;
    return true;
  }

  bool GetAttributes(std::string_view field, core::Attributes& out) {
    size_t n = 0;
    if (!GetCount(field, kMinAttributeBytes, n)) return false;
    out.clear();
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      core::Attribute& a = out.emplace_back();
      uint8_t type = 0;
      if (!GetString("attribute key", a.key) || !GetU8("attribute type", type)) return false;
      switch (type) {
        case kString: {
          std::string s;
          if (!GetString("attribute string", s)) return false;
          a.value = std::move(s);
          break;
        }
        case kBool: {
          bool b = false;
          if (!GetBool("attribute bool", b)) return false;
          a.value = b;
          break;
        }
        case kInt: {
          int64_t v = 0;
          if (!GetSigned("attribute int", v)) return false;
          a.value = v;
          break;
        }
        case kDouble: {
          double d = 0;
          if (!GetDouble("attribute double", d)) return false;
          a.value = d;
          break;
        }
        case kJson: {
          core::JsonText j;
          if (!GetString("attribute json", j.text)) return false;
          a.value = std::move(j);
          break;
        }
        default:
          pos_ -= 1;  // point at the type byte
          return Fail("attribute type", "invalid value " + std::to_string(type));
      }
    }
    return true;
  }

  bool GetCall(core::LlmCall& c) {
    GetString("request_id", c.request_id);
    GetId("trace_id", c.trace_id);
    GetId("span_id", c.span_id);
    GetId("parent_span_id", c.parent_span_id);
    GetSigned("start_unix_nanos", c.start_unix_nanos);
    GetSigned("first_byte_nanos", c.first_byte_nanos);
    GetSigned("first_content_nanos", c.first_content_nanos);
    GetSigned("end_nanos", c.end_nanos);
    GetSigned("overhead_nanos", c.overhead_nanos);
    GetEnum("endpoint", static_cast<uint8_t>(core::Endpoint::kModels), c.endpoint);
    GetBool("stream", c.stream);
    GetString("requested_model", c.requested_model);
    GetString("response_model", c.response_model);
    GetString("provider", c.provider);
    GetString("provider_kind", c.provider_kind);
    GetInt("http_status", c.http_status);
    GetEnum("error", static_cast<uint8_t>(core::ErrorClass::kCancelled), c.error);
    GetString("error_message", c.error_message);
    GetBool("client_cancelled", c.client_cancelled);
    GetOptionalSigned("max_tokens", c.max_tokens);
    GetOptionalDouble("temperature", c.temperature);
    GetOptionalDouble("top_p", c.top_p);
    size_t n = 0;
    if (GetCount("finish_reasons", kMinStringBytes, n)) {
      c.finish_reasons.resize(n);
      for (std::string& r : c.finish_reasons) GetString("finish_reason", r);
    }
    GetSigned("usage.input", c.usage.input);
    GetSigned("usage.output", c.usage.output);
    GetSigned("usage.cache_read", c.usage.cache_read);
    GetSigned("usage.cache_write", c.usage.cache_write);
    GetSigned("usage.reasoning", c.usage.reasoning);
    GetEnum("usage_source", static_cast<uint8_t>(core::UsageSource::kMissing), c.usage_source);
    GetOptionalDouble("cost_usd", c.cost_usd);
    GetBool("unpriced", c.unpriced);
    GetString("user", c.user);
    GetString("session", c.session);
    if (GetCount("tags", kMinTagBytes, n)) {
      c.tags.resize(n);
      for (auto& [key, value] : c.tags) {
        GetString("tag key", key);
        GetString("tag value", value);
      }
    }
    GetString("request_body", c.request_body);
    GetString("response_text", c.response_text);
    return ok();
  }

  bool GetSpan(core::Span& s) {
    GetId("trace_id", s.trace_id);
    GetId("span_id", s.span_id);
    GetId("parent_span_id", s.parent_span_id);
    GetString("name", s.name);
    GetEnum("kind", static_cast<uint8_t>(core::SpanKind::kConsumer), s.kind);
    GetString("service", s.service);
    GetString("scope", s.scope);
    GetSigned("start_unix_nanos", s.start_unix_nanos);
    GetSigned("end_unix_nanos", s.end_unix_nanos);
    GetEnum("status", static_cast<uint8_t>(core::SpanStatus::kError), s.status);
    GetString("status_message", s.status_message);
    GetAttributes("resource_attributes", s.resource_attributes);
    GetAttributes("attributes", s.attributes);
    size_t n = 0;
    if (GetCount("events", kMinEventBytes, n)) {
      s.events.resize(n);
      for (core::SpanEvent& e : s.events) {
        GetSigned("event time_unix_nanos", e.time_unix_nanos);
        GetString("event name", e.name);
        GetAttributes("event attributes", e.attributes);
        if (!ok()) break;
      }
    }
    if (GetCount("links", kMinLinkBytes, n)) {
      s.links.resize(n);
      for (core::SpanLink& l : s.links) {
        GetId("link trace_id", l.trace_id);
        GetId("link span_id", l.span_id);
        GetAttributes("link attributes", l.attributes);
        if (!ok()) break;
      }
    }
    return ok();
  }

  // Reads and checks the batch header; `count` is the number of records that follow.
  bool GetHeader(RecordKind expected, size_t min_record_bytes, size_t& count) {
    uint8_t version = 0;
    uint8_t kind = 0;
    if (!GetU8("version", version)) return false;
    if (version != kRecordCodecVersion) {
      pos_ -= 1;
      return Fail("version", "unsupported version " + std::to_string(version) +
                                 " (this build reads " + std::to_string(kRecordCodecVersion) + ")");
    }
    if (!GetU8("kind", kind)) return false;
    if (kind != static_cast<uint8_t>(expected)) {
      pos_ -= 1;
      return Fail("kind", "kind " + std::to_string(kind) + " is not " +
                              std::string(RecordKindName(expected)));
    }
    return GetCount("count", min_record_bytes, count);
  }

  bool CheckEnd() {
    if (!ok()) return false;
    if (remaining() != 0) return Fail("end", std::to_string(remaining()) + " trailing bytes");
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  core::Status error_;
};

}  // namespace

std::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kCalls:
      return "calls";
    case RecordKind::kSpans:
      return "spans";
  }
  return "unknown";
}

std::string EncodeCalls(std::span<const core::LlmCall> calls) {
  Encoder e(RecordKind::kCalls, calls.size());
  for (const core::LlmCall& c : calls) e.PutCall(c);
  return std::move(e).Take();
}

std::string EncodeSpans(std::span<const core::Span> spans) {
  Encoder e(RecordKind::kSpans, spans.size());
  for (const core::Span& s : spans) e.PutSpan(s);
  return std::move(e).Take();
}

core::Result<RecordKind> PeekRecordKind(std::string_view bytes) {
  if (bytes.size() < 2) return core::InvalidArgument("record codec: truncated header");
  const auto version = static_cast<uint8_t>(bytes[0]);
  const auto kind = static_cast<uint8_t>(bytes[1]);
  if (version != kRecordCodecVersion) {
    return core::InvalidArgument("record codec: unsupported version " + std::to_string(version));
  }
  if (kind != static_cast<uint8_t>(RecordKind::kCalls) &&
      kind != static_cast<uint8_t>(RecordKind::kSpans)) {
    return core::InvalidArgument("record codec: unknown kind " + std::to_string(kind));
  }
  return static_cast<RecordKind>(kind);
}

core::Result<std::vector<core::LlmCall>> DecodeCalls(std::string_view bytes) {
  Decoder d(bytes);
  size_t count = 0;
  if (!d.GetHeader(RecordKind::kCalls, kMinCallBytes, count)) return d.error();
  std::vector<core::LlmCall> calls(count);
  for (core::LlmCall& c : calls) {
    if (!d.GetCall(c)) return d.error();
  }
  if (!d.CheckEnd()) return d.error();
  return calls;
}

core::Result<std::vector<core::Span>> DecodeSpans(std::string_view bytes) {
  Decoder d(bytes);
  size_t count = 0;
  if (!d.GetHeader(RecordKind::kSpans, kMinSpanBytes, count)) return d.error();
  std::vector<core::Span> spans(count);
  for (core::Span& s : spans) {
    if (!d.GetSpan(s)) return d.error();
  }
  if (!d.CheckEnd()) return d.error();
  return spans;
}

}  // namespace llmscope::pipeline
