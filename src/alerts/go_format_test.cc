#include "alerts/go_format.h"

#include <gtest/gtest.h>

#include <cmath>

namespace llmscope::alerts {
namespace {

TEST(GoFormatFloat, ShortestGMatchesFmtSprint) {
  EXPECT_EQ(GoFloatString(0), "0");
  EXPECT_EQ(GoFloatString(0.5), "0.5");
  EXPECT_EQ(GoFloatString(1), "1");
  EXPECT_EQ(GoFloatString(100000), "100000");
  EXPECT_EQ(GoFloatString(1e6), "1e+06");
  EXPECT_EQ(GoFloatString(1234567), "1.234567e+06");
  EXPECT_EQ(GoFloatString(0.0001), "0.0001");
  EXPECT_EQ(GoFloatString(0.00001), "1e-05");
  EXPECT_EQ(GoFloatString(-2.5), "-2.5");
  EXPECT_EQ(GoFloatString(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(GoFloatString(1e21), "1e+21");
  EXPECT_EQ(GoFloatString(NAN), "NaN");
  EXPECT_EQ(GoFloatString(INFINITY), "+Inf");
  EXPECT_EQ(GoFloatString(-INFINITY), "-Inf");
}

TEST(GoFormatFloat, PrecisionG) {
  EXPECT_EQ(GoFormatFloat(1.234567, 'g', 4), "1.235");
  EXPECT_EQ(GoFormatFloat(1234.0, 'g', 4), "1234");
  EXPECT_EQ(GoFormatFloat(12345.0, 'g', 4), "1.234e+04");
  EXPECT_EQ(GoFormatFloat(10000.0, 'g', 4), "1e+04");
  EXPECT_EQ(GoFormatFloat(100.0, 'g', 4), "100");
  EXPECT_EQ(GoFormatFloat(1.5, 'g', 4), "1.5");
  EXPECT_EQ(GoFormatFloat(0.00012345, 'g', 4), "0.0001234");
  EXPECT_EQ(GoFormatFloat(0.000012345, 'g', 4), "1.234e-05");
  EXPECT_EQ(GoFormatFloat(9999.5, 'g', 4), "1e+04");
  EXPECT_EQ(GoFormatFloat(0, 'g', 4), "0");
}

TEST(GoFormatFloat, EAndF) {
  EXPECT_EQ(GoFormatFloat(1, 'e', -1), "1e+00");
  EXPECT_EQ(GoFormatFloat(1.5, 'e', -1), "1.5e+00");
  EXPECT_EQ(GoFormatFloat(123456, 'e', -1), "1.23456e+05");
  EXPECT_EQ(GoFormatFloat(0.001, 'e', -1), "1e-03");
  EXPECT_EQ(GoFormatFloat(1.5, 'e', 3), "1.500e+00");
  EXPECT_EQ(GoFormatFloat(0, 'e', -1), "0e+00");
  EXPECT_EQ(GoFormatFloat(3.14159, 'f', 2), "3.14");
  EXPECT_EQ(GoFormatFloat(2.5, 'f', -1), "2.5");
  EXPECT_EQ(GoFormatFloat(1e21, 'f', -1), "1000000000000000000000");
}

TEST(GoJsonFloat, EncodingJsonRules) {
  EXPECT_EQ(GoJsonFloat(0), "0");
  EXPECT_EQ(GoJsonFloat(60), "60");
  EXPECT_EQ(GoJsonFloat(0.000312805), "0.000312805");
  EXPECT_EQ(GoJsonFloat(1e-7), "1e-7");
  EXPECT_EQ(GoJsonFloat(1.5e-10), "1.5e-10");
  EXPECT_EQ(GoJsonFloat(1e21), "1e+21");
  EXPECT_EQ(GoJsonFloat(123456789012), "123456789012");
}

TEST(GoSprintf, Verbs) {
  EXPECT_EQ(GoSprintf("%.2f", {3.14159}), "3.14");
  EXPECT_EQ(GoSprintf("%d items", {int64_t{5}}), "5 items");
  EXPECT_EQ(GoSprintf("%s=%v", {std::string("a"), 1.5}), "a=1.5");
  EXPECT_EQ(GoSprintf("%v", {1e6}), "1e+06");
  EXPECT_EQ(GoSprintf("%g", {0.1}), "0.1");
  EXPECT_EQ(GoSprintf("%e", {1234.5}), "1.234500e+03");
  EXPECT_EQ(GoSprintf("%f", {1.0}), "1.000000");
  EXPECT_EQ(GoSprintf("%5.1f|%-5d|%05d", {2.25, int64_t{3}, int64_t{-42}}), "  2.2|3    |-0042");
  EXPECT_EQ(GoSprintf("%+d %x %X %o %b",
                      {int64_t{7}, int64_t{255}, int64_t{255}, int64_t{8}, int64_t{5}}),
            "+7 ff FF 10 101");
  EXPECT_EQ(GoSprintf("%q", {std::string("a\"b")}), "\"a\\\"b\"");
  EXPECT_EQ(GoSprintf("%t", {true}), "true");
  EXPECT_EQ(GoSprintf("100%%", {}), "100%");
  EXPECT_EQ(GoSprintf("%.3s", {std::string("abcdef")}), "abc");
  EXPECT_EQ(GoSprintf("%8s|%-8s|", {std::string("ab"), std::string("cd")}), "      ab|cd      |");
  EXPECT_EQ(GoSprintf("%.2f", {NAN}), "NaN");
  EXPECT_EQ(GoSprintf("%.2f", {INFINITY}), "+Inf");
  EXPECT_EQ(GoSprintf("%+.1f", {2.0}), "+2.0");
  EXPECT_EQ(GoSprintf("%*d", {int64_t{4}, int64_t{7}}), "   7");
}

TEST(GoSprintf, MismatchesAsGo) {
  EXPECT_EQ(GoSprintf("%d", {1.5}), "%!d(float64=1.5)");
  EXPECT_EQ(GoSprintf("%f", {std::string("x")}), "%!f(string=x)");
  EXPECT_EQ(GoSprintf("%d %d", {int64_t{1}}), "1 %!d(MISSING)");
  EXPECT_EQ(GoSprintf("%d", {int64_t{1}, int64_t{2}}), "1%!(EXTRA int=2)");
  EXPECT_EQ(GoSprintf("%", {}), "%!(NOVERB)");
}

TEST(GoTime, Rfc3339AndString) {
  EXPECT_EQ(FormatRfc3339Millis(1700000000000), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatRfc3339Millis(1700000000500), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(FormatRfc3339Millis(1700000000123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatGoTimeString(1700000000000), "2023-11-14 22:13:20 +0000 UTC");
  EXPECT_EQ(FormatGoTimeString(1700000000250), "2023-11-14 22:13:20.25 +0000 UTC");
}

}  // namespace
}  // namespace llmscope::alerts
