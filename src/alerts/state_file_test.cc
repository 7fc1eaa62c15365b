#include "alerts/state_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace llmscope::alerts {
namespace {

namespace fs = std::filesystem;

std::vector<PersistedAlert> Sample() {
  Alert a;
  a.labels = promql::Labels({{"alertname", "A"}, {"instance", "h:1"}, {"q", "a\"b\n"}});
  a.annotations = {{"summary", "über 5"}};
  a.state = AlertState::kFiring;
  a.value = 0.1;
  a.active_at_ms = 1700000000000;
  a.fired_at_ms = 1700000120000;
  a.last_sent_at_ms = 1700000120000;
  a.valid_until_ms = 1700000360000;
  a.keep_firing_since_ms = 1700000180000;
  Alert b;
  b.labels = promql::Labels({{"alertname", "B"}});
  b.state = AlertState::kInactive;
  b.value = NAN;
  b.resolved_at_ms = 5;
  Alert c = b;
  c.state = AlertState::kPending;
  c.value = -INFINITY;
  return {{"g1", "A", a}, {"g 2", "B", b}, {"g 2", "B", c}};
}

TEST(StateFile, EncodeDecodeRoundTrip) {
  auto alerts = Sample();
  std::string bytes = EncodeAlertState(alerts, 42);
  EXPECT_EQ(bytes.rfind("llmscope-alert-state 1 ", 0), 0u);
  auto r = DecodeAlertState(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], alerts[0]);
  EXPECT_TRUE(std::isnan((*r)[1].alert.value));
  EXPECT_EQ((*r)[1].alert.resolved_at_ms, 5);
  EXPECT_EQ((*r)[1].alert.state, AlertState::kInactive);
  EXPECT_EQ((*r)[2].alert.value, -INFINITY);
  EXPECT_EQ((*r)[2].alert.state, AlertState::kPending);
  auto empty = DecodeAlertState(EncodeAlertState({}, 1));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(StateFile, CorruptionIsDetected) {
  std::string bytes = EncodeAlertState(Sample(), 42);
  std::string flipped = bytes;
  flipped[flipped.size() - 10] ^= 1;
  EXPECT_NE(DecodeAlertState(flipped).status().message().find("checksum"), std::string::npos);
  EXPECT_NE(DecodeAlertState(bytes.substr(0, bytes.size() - 3)).status().message().find("bytes"),
            std::string::npos);
  std::string version = bytes;
  version.replace(version.find(" 1 "), 3, " 9 ");
  EXPECT_NE(DecodeAlertState(version).status().message().find("unsupported version"),
            std::string::npos);
  EXPECT_FALSE(DecodeAlertState("garbage").ok());
  EXPECT_FALSE(DecodeAlertState("").ok());
  EXPECT_FALSE(DecodeAlertState("other-magic 1 00000000 0\n").ok());
}

TEST(StateFile, WriteReadFile) {
  fs::path dir = fs::temp_directory_path() / ("alerts_state_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "alerts.state").string();
  EXPECT_EQ(ReadAlertState(path).status().code(), core::StatusCode::kNotFound);
  ASSERT_TRUE(WriteAlertState(path, Sample(), 1).ok());
  auto r = ReadAlertState(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  // Overwrite atomically with fewer alerts.
  ASSERT_TRUE(WriteAlertState(path, {}, 2).ok());
  EXPECT_TRUE(ReadAlertState(path)->empty());
  // A corrupt file is reported as INVALID_ARGUMENT naming the file.
  std::ofstream(path, std::ios::trunc) << "llmscope-alert-state 1 deadbeef 3\nabc";
  auto bad = ReadAlertState(path);
  EXPECT_EQ(bad.status().code(), core::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find(path), std::string::npos);
  // An unwritable location fails without throwing.
  EXPECT_EQ(WriteAlertState((dir / "no/such/dir/x").string(), {}, 1).code(),
            core::StatusCode::kUnavailable);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace llmscope::alerts
