#include "storage_sqlite/span_codec.h"

#include <cstdint>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "storage/store.h"

namespace llmscope::storage_sqlite::internal {
namespace {

constexpr char kBinaryFormat = '\x01';

// Attribute keys written as their index here: the OpenTelemetry semantic-convention names
// that GenAI instrumentations put on every span, so that a typical span's keys cost a byte
// each instead of about 20. Part of the file format: entries are only ever appended.
constexpr std::string_view kKnownKeys[] = {
    "service.name",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "telemetry.sdk.version",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.response.id",
    "gen_ai.response.finish_reasons",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
    "gen_ai.request.top_k",
    "gen_ai.request.frequency_penalty",
    "gen_ai.request.presence_penalty",
    "gen_ai.request.stop_sequences",
    "gen_ai.request.seed",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.server.time_to_first_token",
    "gen_ai.output.type",
    "gen_ai.conversation.id",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.prompt",
    "gen_ai.completion",
    "gen_ai.agent.name",
    "gen_ai.agent.id",
    "gen_ai.tool.name",
    "gen_ai.tool.call.id",
    "server.address",
    "server.port",
    "http.request.method",
    "http.response.status_code",
    "url.full",
    "error.type",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "user.id",
    "session.id",
    "process.pid",
    "host.name",
    "deployment.environment",
    "deployment.environment.name",
    "service.version",
    "service.namespace",
    "service.instance.id",
    "llm.model_name",
    "llm.provider",
    "llm.system",
    "llm.request.type",
    "llm.is_streaming",
    "llm.usage.total_tokens",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
};
constexpr size_t kKnownKeyCount = sizeof kKnownKeys / sizeof kKnownKeys[0];

// The index of `key` in kKnownKeys, or -1.
int KnownKeyIndex(std::string_view key) {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, int>();
    for (size_t i = 0; i < kKnownKeyCount; ++i) m->emplace(kKnownKeys[i], static_cast<int>(i));
    return m;
  }();
  auto it = index->find(key);
  return it == index->end() ? -1 : it->second;
}

enum Kind : uint8_t { kString = 0, kFalse = 1, kTrue = 2, kInt = 3, kDouble = 4, kComposite = 5 };

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void PutZigzag(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void PutBytes(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

void PutAttributeList(const core::Attributes& attributes, std::string& out) {
  // Spans of one instrumentation carry their keys in the same order: the key found at a
  // position last time is compared first, which saves hashing most keys.
  thread_local std::vector<int> last_known;
  if (last_known.size() < attributes.size()) last_known.resize(attributes.size(), -1);
  PutVarint(out, attributes.size());
  for (size_t i = 0; i < attributes.size(); ++i) {
    const core::Attribute& a = attributes[i];
    int known = last_known[i];
    if (known < 0 || kKnownKeys[known] != a.key) known = last_known[i] = KnownKeyIndex(a.key);
    // The key's header: (index << 1) | 1 for a known key, (length << 1) then the bytes.
    if (known >= 0) {
      PutVarint(out, (static_cast<uint64_t>(known) << 1) | 1);
    } else {
      PutVarint(out, static_cast<uint64_t>(a.key.size()) << 1);
      out.append(a.key);
    }
    if (const auto* s = std::get_if<std::string>(&a.value)) {
      out += static_cast<char>(kString);
      PutBytes(out, *s);
    } else if (const auto* b = std::get_if<bool>(&a.value)) {
      out += static_cast<char>(*b ? kTrue : kFalse);
    } else if (const auto* i = std::get_if<int64_t>(&a.value)) {
      out += static_cast<char>(kInt);
      PutZigzag(out, *i);
    } else if (const auto* d = std::get_if<double>(&a.value)) {
      out += static_cast<char>(kDouble);
      uint64_t bits;
      std::memcpy(&bits, d, sizeof bits);
      for (int k = 0; k < 8; ++k) out += static_cast<char>(bits >> (8 * k));
    } else {
      out += static_cast<char>(kComposite);
      PutBytes(out, std::get<core::JsonText>(a.value).text);
    }
  }
}

// Reads the binary layout; every read is bounds-checked, so a damaged row fails cleanly.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool Varint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) return false;
      const auto byte = static_cast<uint8_t>(in_[pos_++]);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }
  bool Zigzag(int64_t& v) {
    uint64_t u;
    if (!Varint(u)) return false;
    v = static_cast<int64_t>(u >> 1) ^ -static_cast<int64_t>(u & 1);
    return true;
  }
  bool Bytes(size_t n, std::string_view& out) {
    if (n > in_.size() - pos_) return false;
    out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool String(std::string& out) {
    uint64_t n;
    std::string_view bytes;
    if (!Varint(n) || !Bytes(n, bytes)) return false;
    out.assign(bytes);
    return true;
  }
  bool Byte(uint8_t& b) {
    if (pos_ >= in_.size()) return false;
    b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  // A count of items that each take at least one byte: never more than the bytes left.
  bool Count(uint64_t& n) { return Varint(n) && n <= in_.size() - pos_; }
  bool AtEnd() const { return pos_ == in_.size(); }

  bool Attributes(core::Attributes& out) {
    uint64_t n;
    if (!Count(n)) return false;
    out.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      core::Attribute& a = out.emplace_back();
      uint64_t header;
      std::string_view key;
      if (!Varint(header)) return false;
      if ((header & 1) != 0) {
        if ((header >> 1) >= kKnownKeyCount) return false;
        key = kKnownKeys[header >> 1];
      } else if (!Bytes(header >> 1, key)) {
        return false;
      }
      a.key.assign(key);
      uint8_t kind;
      if (!Byte(kind)) return false;
      switch (kind) {
        case kString: {
          std::string s;
          if (!String(s)) return false;
          a.value = std::move(s);
          break;
        }
        case kFalse:
        case kTrue:
          a.value = kind == kTrue;
          break;
        case kInt: {
          int64_t v;
          if (!Zigzag(v)) return false;
          a.value = v;
          break;
        }
        case kDouble: {
          std::string_view bytes;
          if (!Bytes(8, bytes)) return false;
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits |= static_cast<uint64_t>(uint8_t(bytes[k])) << (8 * k);
          double d;
          std::memcpy(&d, &bits, sizeof d);
          a.value = d;
          break;
        }
        case kComposite: {
          core::JsonText j;
          if (!String(j.text)) return false;
          a.value = std::move(j);
          break;
        }
        default:
          return false;
      }
    }
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

bool IsBinary(std::string_view stored) { return !stored.empty() && stored[0] == kBinaryFormat; }

core::Status Damaged(const char* what) {
  return core::Internal(std::string("stored span ") + what +
                        " are neither the binary encoding nor JSON (a damaged row)");
}

}  // namespace

void EncodeAttributes(const core::Attributes& attributes, std::string& out) {
  out.clear();
  if (attributes.empty()) return;
  out += kBinaryFormat;
  PutAttributeList(attributes, out);
}

void EncodeEvents(const std::vector<core::SpanEvent>& events, std::string& out) {
  out.clear();
  if (events.empty()) return;
  out += kBinaryFormat;
  PutVarint(out, events.size());
  for (const core::SpanEvent& e : events) {
    PutZigzag(out, e.time_unix_nanos);
    PutBytes(out, e.name);
    PutAttributeList(e.attributes, out);
  }
}

void EncodeLinks(const std::vector<core::SpanLink>& links, std::string& out) {
  out.clear();
  if (links.empty()) return;
  out += kBinaryFormat;
  PutVarint(out, links.size());
  for (const core::SpanLink& l : links) {
    out.append(reinterpret_cast<const char*>(l.trace_id.data()), l.trace_id.size());
    out.append(reinterpret_cast<const char*>(l.span_id.data()), l.span_id.size());
    PutAttributeList(l.attributes, out);
  }
}

core::Result<core::Attributes> DecodeAttributes(std::string_view stored) {
  if (stored.empty()) return core::Attributes{};
  if (!IsBinary(stored)) return storage::ParseAttributesJson(stored);
  Reader r(stored.substr(1));
  core::Attributes out;
  if (!r.Attributes(out) || !r.AtEnd()) return Damaged("attributes");
  return out;
}

core::Result<std::vector<core::SpanEvent>> DecodeEvents(std::string_view stored) {
  if (stored.empty()) return std::vector<core::SpanEvent>{};
  if (!IsBinary(stored)) return storage::ParseEventsJson(stored);
  Reader r(stored.substr(1));
  std::vector<core::SpanEvent> out;
  uint64_t n;
  if (!r.Count(n)) return Damaged("events");
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    core::SpanEvent& e = out.emplace_back();
    if (!r.Zigzag(e.time_unix_nanos) || !r.String(e.name) || !r.Attributes(e.attributes)) {
      return Damaged("events");
    }
  }
  if (!r.AtEnd()) return Damaged("events");
  return out;
}

core::Result<std::vector<core::SpanLink>> DecodeLinks(std::string_view stored) {
  if (stored.empty()) return std::vector<core::SpanLink>{};
  if (!IsBinary(stored)) return storage::ParseLinksJson(stored);
  Reader r(stored.substr(1));
  std::vector<core::SpanLink> out;
  uint64_t n;
  if (!r.Count(n)) return Damaged("links");
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    core::SpanLink& l = out.emplace_back();
    std::string_view trace, span;
    if (!r.Bytes(l.trace_id.size(), trace) || !r.Bytes(l.span_id.size(), span) ||
        !r.Attributes(l.attributes)) {
      return Damaged("links");
    }
    std::memcpy(l.trace_id.data(), trace.data(), trace.size());
    std::memcpy(l.span_id.data(), span.data(), span.size());
  }
  if (!r.AtEnd()) return Damaged("links");
  return out;
}

}  // namespace llmscope::storage_sqlite::internal
