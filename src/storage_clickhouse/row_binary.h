#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// ClickHouse's RowBinary format (both directions) and SQL literals. RowBinary is byte-exact:
// strings go as length-prefixed bytes, numbers as little-endian machine values, so a request
// body with invalid UTF-8 or a double such as 0.1 + 0.2 comes back exactly as written. The
// same layout is spoken by ClickHouse 18.16 and current releases.
namespace llmscope::storage_clickhouse {

// Appends values in RowBinary. The caller writes the columns of each row in the order the
// INSERT's column list names them.
// Thread-safety: a value type over a borrowed string; one thread.
class RowBinaryWriter {
 public:
  explicit RowBinaryWriter(std::string& out) : out_(out) {}

  void UInt8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void UInt16(uint16_t v) { Raw(&v, sizeof v); }
  void UInt32(uint32_t v) { Raw(&v, sizeof v); }
  void UInt64(uint64_t v) { Raw(&v, sizeof v); }
  void Int32(int32_t v) { Raw(&v, sizeof v); }
  void Int64(int64_t v) { Raw(&v, sizeof v); }
  void Float64(double v) { Raw(&v, sizeof v); }
  void Bool(bool v) { UInt8(v ? 1 : 0); }
  // Date: days since 1970-01-01 as UInt16.
  void Date(uint16_t days) { UInt16(days); }
  void String(std::string_view s);
  // FixedString(N): exactly N bytes.
  template <size_t N>
  void FixedString(const std::array<uint8_t, N>& bytes) {
    Raw(bytes.data(), N);
  }
  void NullableInt64(const std::optional<int64_t>& v);
  void NullableFloat64(const std::optional<double>& v);
  void StringArray(const std::vector<std::string>& values);
  // LEB128 length prefix of strings and arrays.
  void VarUInt(uint64_t v);

 private:
  void Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& out_;
};

// Reads RowBinary values in the order the SELECT names its columns. A read past the end or
// a malformed length sets failed() and returns a zero value; callers check failed() once per
// row (or at the end) rather than after every field.
// Thread-safety: a value type over a borrowed buffer; one thread.
class RowBinaryReader {
 public:
  explicit RowBinaryReader(std::string_view data) : data_(data) {}

  bool AtEnd() const { return pos_ >= data_.size(); }
  bool failed() const { return failed_; }

  uint8_t UInt8();
  uint16_t UInt16();
  uint32_t UInt32();
  uint64_t UInt64();
  int32_t Int32();
  int64_t Int64();
  double Float64();
  bool Bool() { return UInt8() != 0; }
  std::string String();
  template <size_t N>
  std::array<uint8_t, N> FixedString() {
    std::array<uint8_t, N> out{};
    Raw(out.data(), N);
    return out;
  }
  std::optional<int64_t> NullableInt64();
  std::optional<double> NullableFloat64();
  std::vector<std::string> StringArray();
  std::vector<int64_t> Int64Array();
  uint64_t VarUInt();

 private:
  void Raw(void* p, size_t n);
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// ----- SQL literals -------------------------------------------------------------------------

// A quoted string literal holding exactly `s`: backslash and quote escaped, control bytes
// and DEL as \xHH; other bytes (UTF-8 or not) pass through. ClickHouse 18.16 has no query
// parameters ({name:Type}), so every value put into SQL goes through this or the helpers
// below.
std::string SqlString(std::string_view s);
// A decimal Int64 literal (INT64_MIN spelled so that the parser takes it).
std::string SqlInt(int64_t v);
// A Float64 expression with exactly the bits of `v`: decimal literals are parsed with
// rounding (and 18.16 refuses a denormal such as 5e-324), so the value travels as its eight
// little-endian bytes: reinterpretAsFloat64(unhex('...')).
std::string SqlFloat64(double v);
// toFixedString(unhex('...'), N): exactly these bytes, typed like a FixedString(N) column
// so that comparisons with a key column use the primary index.
template <size_t N>
std::string SqlBytes(const std::array<uint8_t, N>& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "toFixedString(unhex('";
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  out += "'), " + std::to_string(N) + ")";
  return out;
}
// A Date literal ('YYYY-MM-DD') for days since the epoch.
std::string SqlDate(int64_t days);

// The Date partition of a Unix-nanosecond instant: the UTC day, clamped into what a Date
// holds (1970-01-01 .. 2149-06-06). Instants before 1970 all land on day 0.
uint16_t DayOf(int64_t unix_nanos);

// Percent-encodes `s` for a URL query-string value.
std::string UrlEncode(std::string_view s);

}  // namespace llmscope::storage_clickhouse
