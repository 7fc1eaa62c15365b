#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// Number and text formatting as Go's standard library does it, so rendered templates and
// API JSON read byte for byte like Prometheus'. Thread-safety: pure functions.
namespace llmscope::alerts {

// strconv.FormatFloat(v, fmt, prec, 64) for fmt 'e', 'E', 'f', 'g', 'G'; prec -1 is the
// shortest representation that round-trips. Infinities are "+Inf"/"-Inf", NaN is "NaN".
std::string GoFormatFloat(double v, char fmt, int prec);

// fmt.Sprint(float64) (the %v verb): shortest 'g' with an exponent from 1e+06 and below
// 1e-04, e.g. "0.5", "100000", "1e+06", "1.234567e+06".
inline std::string GoFloatString(double v) { return GoFormatFloat(v, 'g', -1); }

// encoding/json's rendering of a float64: shortest, 'e' form below 1e-6 or from 1e21
// ("1e-7", "1e+21"). REQUIRES: finite v (JSON has no NaN or Inf).
std::string GoJsonFloat(double v);

// An argument of GoSprintf: Go's int, float64, string or bool.
using GoArg = std::variant<int64_t, double, std::string, bool>;

// fmt.Sprintf for the verbs templates use: %v %s %q %d %f %F %e %E %g %G %x %X %o %b %t %c
// %%, with flags (+ - space 0 #), width and precision, both also as `*`. Mismatches render
// as Go does: "%!d(float64=1.5)", "%!d(MISSING)", "%!(EXTRA int=1)".
std::string GoSprintf(std::string_view format, const std::vector<GoArg>& args);

// The Go type name of an argument ("int", "float64", "string", "bool").
const char* GoTypeName(const GoArg& a);

// RFC 3339 with fractional seconds and trailing zeros dropped, in UTC, as Go's
// time.Time.MarshalJSON: "2023-11-14T22:13:20.5Z". Milliseconds since the Unix epoch.
std::string FormatRfc3339Millis(int64_t unix_ms);

// Go's time.Time.String() of a UTC time: "2023-11-14 22:13:20.5 +0000 UTC".
std::string FormatGoTimeString(int64_t unix_ms);

}  // namespace llmscope::alerts
