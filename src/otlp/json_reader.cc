#include "otlp/json_reader.h"

// Why Boost.JSON plus a descriptor walk rather than protobuf's JsonStringToMessage: OTLP/JSON
// departs from the protobuf JSON mapping (ids are hex, not base64), and OTLP wants one bad
// span rejected, not the whole request; the walk also gives error messages a JSON path.

#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

namespace llmscope::otlp::internal {
namespace {

namespace json = boost::json;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// One step of the JSON path to the value being read, kept on the stack and rendered only
// when an error names it.
struct PathFrame {
  const PathFrame* parent = nullptr;
  std::string_view key;  // empty for an array element
  int index = -1;
};

std::string Render(const PathFrame* f) {
  if (f == nullptr) return "$";
  std::string s = f->parent ? Render(f->parent) : std::string();
  if (f->index >= 0) {
    s += "[" + std::to_string(f->index) + "]";
  } else {
    if (!s.empty()) s += '.';
    s += f->key;
  }
  return s;
}

// The item collections: a malformed element is rejected alone (OTLP partial success).
bool IsItemField(const FieldDescriptor* f) {
  return f->is_repeated() && f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
         (f->name() == "spans" || f->name() == "log_records" || f->name() == "data_points");
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Hex of any even length to bytes: the converter judges the length, as for protobuf.
bool HexDecode(std::string_view hex, std::string& out) {
  if (hex.size() % 2 != 0) return false;
  out.resize(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexDigit(hex[2 * i]), lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return true;
}

class Reader {
 public:
  explicit Reader(Rejections& rejections) : rejections_(rejections) {}

  // Returns false with `err_` set (path included) on a value of the wrong shape.
  bool ReadMessage(const json::value& v, Message& msg, const PathFrame* path) {
    if (!v.is_object()) return Fail(path, "expected an object");
    const Descriptor* d = msg.GetDescriptor();
    for (const auto& [key, value] : v.get_object()) {
      std::string_view k(key.data(), key.size());
      const FieldDescriptor* f = d->FindFieldByCamelcaseName(std::string(k));
      if (f == nullptr) f = d->FindFieldByName(std::string(k));
      if (f == nullptr || value.is_null()) continue;  // unknown keys are ignored (OTLP/JSON)
      PathFrame frame{path, k};
      if (!ReadField(value, msg, f, &frame)) return false;
    }
    return true;
  }

  const std::string& error() const { return err_; }

 private:
  bool ReadField(const json::value& v, Message& msg, const FieldDescriptor* f,
                 const PathFrame* path) {
    const Reflection* r = msg.GetReflection();
    if (!f->is_repeated()) return ReadSingle(v, msg, f, path);
    if (!v.is_array()) return Fail(path, "expected an array");
    const json::array& a = v.get_array();
    const bool items = IsItemField(f);
    for (size_t i = 0; i < a.size(); ++i) {
      PathFrame frame{path, {}, static_cast<int>(i)};
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        Message* m = r->AddMessage(&msg, f);
        if (!ReadMessage(a[i], *m, &frame)) {
          if (!items) return false;
          r->RemoveLast(&msg, f);  // reject this item alone, keep reading the others
          rejections_.Add(1, err_);
          err_.clear();
        }
        continue;
      }
      if (!ReadRepeatedScalar(a[i], msg, f, &frame)) return false;
    }
    return true;
  }

  bool ReadSingle(const json::value& v, Message& msg, const FieldDescriptor* f,
                  const PathFrame* path) {
    const Reflection* r = msg.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return ReadMessage(v, *r->MutableMessage(&msg, f), path);
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string s;
        if (!ReadText(v, f, s, path)) return false;
        r->SetString(&msg, f, std::move(s));
        return true;
      }
      case FieldDescriptor::CPPTYPE_BOOL:
        if (!v.is_bool()) return Fail(path, "expected true or false");
        r->SetBool(&msg, f, v.get_bool());
        return true;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: {
        double d = 0;
        if (!ReadDouble(v, d, path)) return false;
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
          r->SetDouble(&msg, f, d);
        } else {
          r->SetFloat(&msg, f, static_cast<float>(d));
        }
        return true;
      }
      case FieldDescriptor::CPPTYPE_ENUM: {
        int n = 0;
        if (!ReadEnum(v, f, n, path)) return false;
        r->SetEnumValue(&msg, f, n);
        return true;
      }
      default:
        return ReadInteger(v, msg, f, path, false);
    }
  }

  // Repeated scalars in our subset: histogram bucket_counts (fixed64) and bounds (double).
  bool ReadRepeatedScalar(const json::value& v, Message& msg, const FieldDescriptor* f,
                          const PathFrame* path) {
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
      double d = 0;
      if (!ReadDouble(v, d, path)) return false;
      msg.GetReflection()->AddDouble(&msg, f, d);
      return true;
    }
    return ReadInteger(v, msg, f, path, true);
  }

  bool ReadText(const json::value& v, const FieldDescriptor* f, std::string& out,
                const PathFrame* path) {
    if (!v.is_string()) return Fail(path, "expected a string");
    std::string_view s(v.get_string().data(), v.get_string().size());
    const std::string& name = f->name();
    if (name == "trace_id" || name == "span_id" || name == "parent_span_id") {
      if (!HexDecode(s, out)) return Fail(path, "expected a hex string");
      return true;
    }
    if (name == "bytes_value") {
      if (!Base64Decode(s, out)) return Fail(path, "expected a base64 string");
      return true;
    }
    out.assign(s);
    return true;
  }

  bool ReadDouble(const json::value& v, double& out, const PathFrame* path) {
    if (v.is_double()) {
      out = v.get_double();
    } else if (v.is_int64()) {
      out = static_cast<double>(v.get_int64());
    } else if (v.is_uint64()) {
      out = static_cast<double>(v.get_uint64());
    } else if (v.is_string()) {
      std::string_view s(v.get_string().data(), v.get_string().size());
      if (s == "NaN") {
        out = std::numeric_limits<double>::quiet_NaN();
      } else if (s == "Infinity") {
        out = std::numeric_limits<double>::infinity();
      } else if (s == "-Infinity") {
        out = -std::numeric_limits<double>::infinity();
      } else {
        auto res = std::from_chars(s.data(), s.data() + s.size(), out);
        if (res.ec != std::errc() || res.ptr != s.data() + s.size()) {
          return Fail(path, "expected a number");
        }
      }
    } else {
      return Fail(path, "expected a number");
    }
    return true;
  }

  bool ReadEnum(const json::value& v, const FieldDescriptor* f, int& out, const PathFrame* path) {
    if (v.is_int64() && v.get_int64() >= std::numeric_limits<int32_t>::min() &&
        v.get_int64() <= std::numeric_limits<int32_t>::max()) {
      out = static_cast<int>(v.get_int64());  // proto3 enums are open: any int32 is kept
      return true;
    }
    if (v.is_string()) {
      const auto* e = f->enum_type()->FindValueByName(std::string(v.get_string()));
      if (e == nullptr) return Fail(path, "unknown " + f->enum_type()->name() + " name");
      out = e->number();
      return true;
    }
    return Fail(path, "expected an enum number or name");
  }

  bool ReadInteger(const json::value& v, Message& msg, const FieldDescriptor* f,
                   const PathFrame* path, bool repeated) {
    // Read into the widest types, then check the field's own range.
    bool is_signed = f->cpp_type() == FieldDescriptor::CPPTYPE_INT32 ||
                     f->cpp_type() == FieldDescriptor::CPPTYPE_INT64;
    int64_t i = 0;
    uint64_t u = 0;
    bool negative = false;
    if (v.is_int64()) {
      i = v.get_int64();
      negative = i < 0;
      u = negative ? 0 : static_cast<uint64_t>(i);
    } else if (v.is_uint64()) {
      u = v.get_uint64();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        if (is_signed) return Fail(path, "integer out of range");
      } else {
        i = static_cast<int64_t>(u);
      }
    } else if (v.is_double()) {
      double d = v.get_double();
      if (!(d == std::floor(d)) || d < -9.2e18 || d > 1.8e19) {
        return Fail(path, "expected an integer");
      }
      negative = d < 0;
      if (negative) {
        i = static_cast<int64_t>(d);
      } else {
        u = static_cast<uint64_t>(d);
        i = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                ? 0
                : static_cast<int64_t>(u);
        if (is_signed && u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          return Fail(path, "integer out of range");
        }
      }
    } else if (v.is_string()) {
      std::string_view s(v.get_string().data(), v.get_string().size());
      const char* end = s.data() + s.size();
      if (!s.empty() && s[0] == '-') {
        auto res = std::from_chars(s.data(), end, i);
        if (res.ec != std::errc() || res.ptr != end) return Fail(path, "expected an integer");
        negative = i < 0;
        u = negative ? 0 : static_cast<uint64_t>(i);
      } else {
        auto res = std::from_chars(s.data(), end, u);
        if (res.ec != std::errc() || res.ptr != end) return Fail(path, "expected an integer");
        if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          if (is_signed) return Fail(path, "integer out of range");
        } else {
          i = static_cast<int64_t>(u);
        }
      }
    } else {
      return Fail(path, "expected an integer");
    }
    const Reflection* r = msg.GetReflection();
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        if (i < std::numeric_limits<int32_t>::min() || i > std::numeric_limits<int32_t>::max()) {
          return Fail(path, "integer out of range");
        }
        repeated ? r->AddInt32(&msg, f, static_cast<int32_t>(i))
                 : r->SetInt32(&msg, f, static_cast<int32_t>(i));
        return true;
      case FieldDescriptor::CPPTYPE_INT64:
        repeated ? r->AddInt64(&msg, f, i) : r->SetInt64(&msg, f, i);
        return true;
      case FieldDescriptor::CPPTYPE_UINT32:
        if (negative || u > std::numeric_limits<uint32_t>::max()) {
          return Fail(path, "integer out of range");
        }
        repeated ? r->AddUInt32(&msg, f, static_cast<uint32_t>(u))
                 : r->SetUInt32(&msg, f, static_cast<uint32_t>(u));
        return true;
      case FieldDescriptor::CPPTYPE_UINT64:
        if (negative) return Fail(path, "integer out of range");
        repeated ? r->AddUInt64(&msg, f, u) : r->SetUInt64(&msg, f, u);
        return true;
      default:
        return Fail(path, "unsupported field type");
    }
  }

  bool Fail(const PathFrame* path, std::string_view what) {
    err_ = Render(path) + ": " + std::string(what);
    return false;
  }

  Rejections& rejections_;
  std::string err_;
};

}  // namespace

core::Status ReadOtlpJson(std::string_view body, google::protobuf::Message& out,
                          Rejections& rejections) {
  json::parse_options opts;
  opts.max_depth = 128;            // deeper nesting is refused by the parser, not by us
  opts.allow_invalid_utf8 = true;  // as for protobuf: renderers replace invalid UTF-8
  json::monotonic_resource mr;
  boost::system::error_code ec;
  json::value root = json::parse(body, ec, &mr, opts);
  if (ec) {
    return core::InvalidArgument("body is not JSON: " + ec.message() + " (OTLP/JSON expected)");
  }
  Reader reader(rejections);
  if (!reader.ReadMessage(root, out, nullptr)) {
    return core::InvalidArgument("OTLP/JSON " + reader.error());
  }
  return core::Status::Ok();
}

}  // namespace llmscope::otlp::internal
