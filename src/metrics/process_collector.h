#pragma once

#include <string>
#include <vector>

#include "metrics/snapshot.h"

namespace llmscope::metrics {

struct ProcessCollectorOptions {
  // Where procfs is mounted; tests point this at a fake tree.
  std::string proc_root = "/proc";
  // Which process to describe: "self" or a pid.
  std::string pid = "self";
};

// Thread-safety: immutable after construction; Collect is safe from any number of threads.
// Scrape-time statistics of a process from Linux procfs, under the names and help texts of
// the official Prometheus client libraries:
//   process_cpu_seconds_total      counter  user + system CPU seconds  (<pid>/stat)
//   process_resident_memory_bytes  gauge    resident set size           (<pid>/stat)
//   process_virtual_memory_bytes   gauge    virtual memory size         (<pid>/stat)
//   process_start_time_seconds     gauge    start, Unix seconds         (<pid>/stat, stat btime)
//   process_open_fds               gauge    entries in <pid>/fd
//   process_max_fds                gauge    soft "Max open files"       (<pid>/limits)
// A value that cannot be read (no procfs, not Linux, "unlimited") is left out, family and
// all; Collect never fails.
class ProcessCollector final : public Collector {
 public:
  explicit ProcessCollector(ProcessCollectorOptions options = {});
  void Collect(std::vector<FamilySnapshot>& out) const override;

 private:
  const ProcessCollectorOptions options_;
  const long ticks_per_second_;
  const long page_size_;
};

}  // namespace llmscope::metrics
