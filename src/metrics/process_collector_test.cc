#include "metrics/process_collector.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace llmscope::metrics {
namespace {

struct Collected {
  std::map<std::string, double> values;
  std::map<std::string, MetricType> types;
  std::map<std::string, std::string> help;
};

Collected CollectAll(const ProcessCollector& c) {
  std::vector<FamilySnapshot> out;
  c.Collect(out);
  Collected r;
  for (const FamilySnapshot& f : out) {
    EXPECT_EQ(f.samples.size(), 1u) << f.name;
    if (f.samples.empty()) continue;
    EXPECT_TRUE(f.samples[0].labels.empty());
    r.values[f.name] = f.samples[0].value;
    r.types[f.name] = f.type;
    r.help[f.name] = f.help;
  }
  return r;
}

TEST(ProcessCollectorTest, ReportsPlausibleValuesForThisProcess) {
  const Collected c = CollectAll(ProcessCollector());
  ASSERT_EQ(c.values.size(), 6u);
  EXPECT_GE(c.values.at("process_cpu_seconds"), 0);
  EXPECT_EQ(c.types.at("process_cpu_seconds"), MetricType::kCounter);  // exposed with _total
  EXPECT_GT(c.values.at("process_resident_memory_bytes"), 0);
  EXPECT_GT(c.values.at("process_virtual_memory_bytes"),
            c.values.at("process_resident_memory_bytes"));
  EXPECT_GE(c.values.at("process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GE(c.values.at("process_max_fds"), c.values.at("process_open_fds"));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(c.values.at("process_start_time_seconds"), 1e9);
  EXPECT_LE(c.values.at("process_start_time_seconds"), now + 5);
  EXPECT_EQ(c.help.at("process_open_fds"), "Number of open file descriptors.");
}

class FakeProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::path(::testing::TempDir()) /
            ("fake_proc_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "42" / "fd");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  void Write(const std::filesystem::path& rel, const std::string& text) {
    std::ofstream(root_ / rel, std::ios::binary) << text;
  }
  std::filesystem::path root_;
};

TEST_F(FakeProcTest, ParsesStatLimitsAndFds) {
  // comm with spaces and a ')' inside: fields must be counted from the last ')'.
  // Fields 14/15 utime/stime = 250/150 ticks, 22 starttime = 1000 ticks, 23 vsize, 24 rss pages.
  Write("42/stat",
        "42 (my (weird) proc) S 1 42 42 0 -1 4194304 100 0 0 0 250 150 0 0 20 0 1 0 1000 "
        "123456789 300 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
  Write("stat", "cpu  1 2 3 4\nintr 1 2\nbtime 1700000000\nprocesses 5\n");
  Write("42/limits",
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max processes             96365                96365                processes \n"
        "Max open files            4096                 1048576              files     \n");
  for (const char* fd : {"0", "1", "2", "7"}) Write(std::filesystem::path("42/fd") / fd, "");

  const Collected c = CollectAll(ProcessCollector({root_.string(), "42"}));
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  EXPECT_DOUBLE_EQ(c.values.at("process_cpu_seconds"), 400 / hz);
  EXPECT_EQ(c.values.at("process_virtual_memory_bytes"), 123456789);
  EXPECT_EQ(c.values.at("process_resident_memory_bytes"), 300 * page);
  EXPECT_DOUBLE_EQ(c.values.at("process_start_time_seconds"), 1700000000 + 1000 / hz);
  EXPECT_EQ(c.values.at("process_max_fds"), 4096);
  EXPECT_EQ(c.values.at("process_open_fds"), 4);
}

TEST_F(FakeProcTest, LeavesOutWhatCannotBeRead) {
  Write("42/stat", "garbage");
  Write("42/limits", "Max open files            unlimited            unlimited            files\n");
  const Collected c = CollectAll(ProcessCollector({root_.string(), "42"}));
  EXPECT_EQ(c.values.size(), 1u);  // only the (empty) fd directory
  EXPECT_EQ(c.values.at("process_open_fds"), 0);

  const Collected none = CollectAll(ProcessCollector({(root_ / "missing").string(), "self"}));
  EXPECT_TRUE(none.values.empty());
}

}  // namespace
}  // namespace llmscope::metrics
