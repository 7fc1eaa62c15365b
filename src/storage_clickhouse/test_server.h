#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/status.h"

namespace llmscope::storage_clickhouse {

// Thread-safety: owned and driven by one thread (the test binary's main thread: the server
// is started with PR_SET_PDEATHSIG, tied to the thread that started it).
//
// A private clickhouse-server for tests: a temporary directory with a generated minimal
// config.xml and users.xml, free loopback ports for HTTP and the native protocol (no
// interserver, MySQL or PostgreSQL ports), started as a child process and stopped by its
// pid. Works with Debian's clickhouse-server 18.16 and with current single-binary packages
// (`clickhouse server`).
class TestClickHouse {
 public:
  // Starts a server and waits until it answers /ping, at most `wait`. Errors name the
  // problem: the binary is missing (FAILED_PRECONDITION; scripts/setup installs it), it
  // exited early (its log's tail), or it never answered.
  static core::Result<std::unique_ptr<TestClickHouse>> Start(
      core::Nanos wait = std::chrono::seconds(60));
  // Stops the server if running and removes the directory.
  ~TestClickHouse();
  TestClickHouse(const TestClickHouse&) = delete;
  TestClickHouse& operator=(const TestClickHouse&) = delete;

  // SIGTERM, then SIGKILL when the server is still running after `grace`. Idempotent.
  void Stop(core::Nanos grace = std::chrono::seconds(30));
  // Starts the server again on the same ports and data directory; waits for /ping.
  core::Status Restart(core::Nanos wait = std::chrono::seconds(60));

  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

 private:
  TestClickHouse() = default;
  core::Status WriteConfig();
  core::Status Launch(core::Nanos wait);
  std::string LogTail() const;

  std::string dir_;
  std::string binary_;
  bool single_binary_ = false;  // `clickhouse server` rather than clickhouse-server
  uint16_t http_port_ = 0;
  uint16_t tcp_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace llmscope::storage_clickhouse
