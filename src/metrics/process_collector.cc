#include "metrics/process_collector.h"

#include <dirent.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

namespace llmscope::metrics {
namespace {

std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(ss).str();
}

template <typename T>
std::optional<T> ParseNumber(std::string_view s) {
  T v{};
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits on runs of spaces (and newlines).
std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
    const size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\n') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

struct StatFields {
  double utime_ticks = 0;
  double stime_ticks = 0;
  double starttime_ticks = 0;
  double vsize_bytes = 0;
  double rss_pages = 0;
};

// <pid>/stat: "pid (comm) state ppid ...". comm may hold spaces and parentheses, so the
// fields are counted from the LAST ')'. After it, field 3 (state) is index 0.
std::optional<StatFields> ParseStat(std::string_view text) {
  const size_t paren = text.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  const std::vector<std::string_view> f = Fields(text.substr(paren + 1));
  constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3,
                   kRss = 24 - 3;
  if (f.size() <= kRss) return std::nullopt;
  const auto u = ParseNumber<unsigned long long>(f[kUtime]);
  const auto s = ParseNumber<unsigned long long>(f[kStime]);
  const auto st = ParseNumber<unsigned long long>(f[kStart]);
  const auto vs = ParseNumber<unsigned long long>(f[kVsize]);
  const auto rss = ParseNumber<long long>(f[kRss]);
  if (!u || !s || !st || !vs || !rss) return std::nullopt;
  return StatFields{static_cast<double>(*u), static_cast<double>(*s), static_cast<double>(*st),
                    static_cast<double>(*vs), static_cast<double>(*rss)};
}

// "btime <unix seconds>" line of <root>/stat.
std::optional<double> ParseBootTime(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (line.starts_with("btime ")) {
      const std::vector<std::string_view> f = Fields(line.substr(6));
      if (f.empty()) return std::nullopt;
      const auto v = ParseNumber<unsigned long long>(f[0]);
      if (!v) return std::nullopt;
      return static_cast<double>(*v);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

// Soft limit on the "Max open files" line of <pid>/limits; nullopt for "unlimited".
std::optional<double> ParseMaxFds(std::string_view text) {
  constexpr std::string_view kKey = "Max open files";
  const size_t at = text.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  const std::vector<std::string_view> f = Fields(text.substr(at + kKey.size()));
  if (f.empty()) return std::nullopt;
  const auto v = ParseNumber<unsigned long long>(f[0]);
  if (!v) return std::nullopt;
  return static_cast<double>(*v);
}

std::optional<double> CountOpenFds(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return std::nullopt;
  double n = 0;
  while (const dirent* e = readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  closedir(d);
  // Like the official clients, the count includes the descriptor used to list the directory.
  return n;
}

}  // namespace

ProcessCollector::ProcessCollector(ProcessCollectorOptions options)
    : options_(std::move(options)),
      ticks_per_second_(sysconf(_SC_CLK_TCK)),
      page_size_(sysconf(_SC_PAGESIZE)) {}

void ProcessCollector::Collect(std::vector<FamilySnapshot>& out) const {
  const std::string proc_dir = options_.proc_root + "/" + options_.pid;
  std::optional<StatFields> stat;
  if (auto text = ReadFile(proc_dir + "/stat")) stat = ParseStat(*text);

  if (stat && ticks_per_second_ > 0) {
    AppendSingleValueFamily(
        out, "process_cpu_seconds", "Total user and system CPU time spent in seconds.",
        MetricType::kCounter,
        (stat->utime_ticks + stat->stime_ticks) / static_cast<double>(ticks_per_second_));
  }
  if (auto fds = CountOpenFds(proc_dir + "/fd")) {
    AppendSingleValueFamily(out, "process_open_fds", "Number of open file descriptors.",
                            MetricType::kGauge, *fds);
  }
  if (auto text = ReadFile(proc_dir + "/limits")) {
    if (auto max = ParseMaxFds(*text)) {
      AppendSingleValueFamily(out, "process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::kGauge, *max);
    }
  }
  if (stat) {
    AppendSingleValueFamily(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            MetricType::kGauge, stat->vsize_bytes);
    if (page_size_ > 0) {
      AppendSingleValueFamily(out, "process_resident_memory_bytes",
                              "Resident memory size in bytes.", MetricType::kGauge,
                              stat->rss_pages * static_cast<double>(page_size_));
    }
    std::optional<double> boot;
    if (auto text = ReadFile(options_.proc_root + "/stat")) boot = ParseBootTime(*text);
    if (boot && ticks_per_second_ > 0) {
      AppendSingleValueFamily(
          out, "process_start_time_seconds",
          "Start time of the process since unix epoch in seconds.", MetricType::kGauge,
          *boot + stat->starttime_ticks / static_cast<double>(ticks_per_second_));
    }
  }
}

}  // namespace llmscope::metrics
