#include "storage_clickhouse/row_binary.h"

#include <bit>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "storage/store.h"

namespace llmscope::storage_clickhouse {

// RowBinary numbers are little-endian; we copy machine values as they are.
static_assert(std::endian::native == std::endian::little, "RowBinary needs a little-endian host");

void RowBinaryWriter::String(std::string_view s) {
  VarUInt(s.size());
  out_.append(s.data(), s.size());
}

void RowBinaryWriter::NullableInt64(const std::optional<int64_t>& v) {
  UInt8(v ? 0 : 1);  // the null flag comes first; a value follows only when not null
  if (v) Int64(*v);
}

void RowBinaryWriter::NullableFloat64(const std::optional<double>& v) {
  UInt8(v ? 0 : 1);
  if (v) Float64(*v);
}

void RowBinaryWriter::StringArray(const std::vector<std::string>& values) {
  VarUInt(values.size());
  for (const auto& s : values) String(s);
}

void RowBinaryWriter::VarUInt(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void RowBinaryReader::Raw(void* p, size_t n) {
  if (failed_ || data_.size() - pos_ < n) {
    failed_ = true;
    std::memset(p, 0, n);
    return;
  }
  std::memcpy(p, data_.data() + pos_, n);
  pos_ += n;
}

uint8_t RowBinaryReader::UInt8() {
  uint8_t v;
  Raw(&v, sizeof v);
  return v;
}
uint16_t RowBinaryReader::UInt16() {
  uint16_t v;
  Raw(&v, sizeof v);
  return v;
}
uint32_t RowBinaryReader::UInt32() {
  uint32_t v;
  Raw(&v, sizeof v);
  return v;
}
uint64_t RowBinaryReader::UInt64() {
  uint64_t v;
  Raw(&v, sizeof v);
  return v;
}
int32_t RowBinaryReader::Int32() {
  int32_t v;
  Raw(&v, sizeof v);
  return v;
}
int64_t RowBinaryReader::Int64() {
  int64_t v;
  Raw(&v, sizeof v);
  return v;
}
double RowBinaryReader::Float64() {
  double v;
  Raw(&v, sizeof v);
  return v;
}

uint64_t RowBinaryReader::VarUInt() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (failed_ || pos_ >= data_.size()) {
      failed_ = true;
      return 0;
    }
    auto b = static_cast<uint8_t>(data_[pos_++]);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  failed_ = true;  // more than ten bytes: not a length
  return 0;
}

std::string RowBinaryReader::String() {
  uint64_t n = VarUInt();
  if (failed_ || n > data_.size() - pos_) {
    failed_ = true;
    return {};
  }
  std::string s(data_.substr(pos_, n));
  pos_ += n;
  return s;
}

std::optional<int64_t> RowBinaryReader::NullableInt64() {
  if (UInt8() != 0) return std::nullopt;
  return Int64();
}

std::optional<double> RowBinaryReader::NullableFloat64() {
  if (UInt8() != 0) return std::nullopt;
  return Float64();
}

std::vector<std::string> RowBinaryReader::StringArray() {
  uint64_t n = VarUInt();
  std::vector<std::string> out;
  // Each element takes at least one byte: a larger count is corrupt, not a huge allocation.
  if (failed_ || n > data_.size() - pos_) {
    failed_ = true;
    return out;
  }
  out.reserve(n);
  for (uint64_t i = 0; i < n && !failed_; ++i) out.push_back(String());
  return out;
}

std::vector<int64_t> RowBinaryReader::Int64Array() {
  uint64_t n = VarUInt();
  std::vector<int64_t> out;
  if (failed_ || n > (data_.size() - pos_) / sizeof(int64_t)) {
    failed_ = true;
    return out;
  }
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) out.push_back(Int64());
  return out;
}

std::string SqlString(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('\'');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == '\'') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('\'');
  return out;
}

std::string SqlInt(int64_t v) {
  // "-9223372036854775808" parses as the negation of a UInt64 that does not fit Int64.
  if (v == INT64_MIN) return "(-9223372036854775807 - 1)";
  return std::to_string(v);
}

std::string SqlFloat64(double v) {
  std::array<uint8_t, sizeof(double)> bytes;
  std::memcpy(bytes.data(), &v, sizeof v);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "reinterpretAsFloat64(unhex('";
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  out += "'))";
  return out;
}

std::string SqlDate(int64_t days) {
  namespace chr = std::chrono;
  chr::year_month_day ymd{chr::sys_days{chr::days{days}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return std::string("'") + buf + "'";
}

uint16_t DayOf(int64_t unix_nanos) {
  if (unix_nanos < 0) return 0;
  int64_t day = unix_nanos / storage::kNanosPerDay;
  return day > UINT16_MAX ? UINT16_MAX : static_cast<uint16_t>(day);
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

}  // namespace llmscope::storage_clickhouse
