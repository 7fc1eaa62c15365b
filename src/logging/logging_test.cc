#include <gtest/gtest.h>
#include <unistd.h>

#include "logging/logger.h"
#include "testing/fake_clock.h"

namespace llmscope::logging {
namespace {

TEST(JsonLoggerTest, WritesOneJsonLinePerMessageAboveLevel) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  testing::FakeClock clock(1'700'000'000'123'000'000);
  JsonLogger log(fds[1], core::LogLevel::kInfo, clock);
  log.Log(core::LogLevel::kDebug, "hidden", {});
  log.Warn("upstream \"x\" down\n", {{"upstream", "sim"}});
  ::close(fds[1]);
  char buf[512] = {};
  ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  ::close(fds[0]);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)),
            "{\"ts\":\"2023-11-14T22:13:20.123Z\",\"level\":\"warn\",\"msg\":\"upstream "
            "\\\"x\\\" down\\n\",\"upstream\":\"sim\"}\n");
}

TEST(JsonLoggerTest, ParsesLevels) {
  bool ok = false;
  EXPECT_EQ(ParseLevel("warn", &ok), core::LogLevel::kWarn);
  EXPECT_TRUE(ok);
  ParseLevel("loud", &ok);
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace llmscope::logging
