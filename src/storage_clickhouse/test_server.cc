#include "storage_clickhouse/test_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "storage_clickhouse/connection.h"

namespace llmscope::storage_clickhouse {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Free loopback ports: bound together (so they differ) and released for the server. Another
// process could take one in between; Start then fails with the server's bind error in the
// log tail, and is tried again on new ports.
core::Result<std::vector<uint16_t>> FreePorts(int n) {
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  core::Status err;
  for (int i = 0; i < n && err.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      err = core::Internal("cannot find a free loopback port");
    } else {
      ports.push_back(ntohs(addr.sin_port));
    }
    if (fd >= 0) fds.push_back(fd);
  }
  for (int fd : fds) ::close(fd);
  if (!err.ok()) return err;
  return ports;
}

std::string FindBinary(bool& single_binary) {
  std::vector<std::string> dirs = {"/usr/sbin", "/usr/bin", "/usr/local/bin"};
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  for (const char* name : {"clickhouse-server", "clickhouse"}) {
    for (const auto& d : dirs) {
      fs::path p = fs::path(d) / name;
      if (::access(p.c_str(), X_OK) == 0) {
        single_binary = std::string_view(name) == "clickhouse";
        return p.string();
      }
    }
  }
  return "";
}

}  // namespace

core::Result<std::unique_ptr<TestClickHouse>> TestClickHouse::Start(core::Nanos wait) {
  bool single = false;
  std::string binary = FindBinary(single);
  if (binary.empty()) {
    return core::FailedPrecondition(
        "clickhouse-server is not installed (scripts/setup installs it), and "
        "LLMSCOPE_CLICKHOUSE_URL does not name a running server");
  }
  core::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto server = std::unique_ptr<TestClickHouse>(new TestClickHouse());
    server->binary_ = binary;
    server->single_binary_ = single;
    std::string tmpl = (fs::temp_directory_path() / "llmscope-clickhouse-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return core::Internal("cannot make a temporary directory under " +
                            fs::temp_directory_path().string());
    }
    server->dir_ = tmpl;
    auto ports = FreePorts(2);
    if (!ports.ok()) return ports.status();
    server->http_port_ = (*ports)[0];
    server->tcp_port_ = (*ports)[1];
    if (auto s = server->WriteConfig(); !s.ok()) return s;
    last = server->Launch(wait);
    if (last.ok()) return server;
    // Only a server that exited (a port taken in between, say) is worth another try.
    if (last.code() != core::StatusCode::kUnavailable) break;
  }
  return last;
}

TestClickHouse::~TestClickHouse() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

core::Status TestClickHouse::WriteConfig() {
  std::error_code ec;
  for (const char* sub : {"data", "tmp", "user_files", "format_schemas", "log"}) {
    fs::create_directories(fs::path(dir_) / sub, ec);
    if (ec) return core::Internal("cannot create " + dir_ + "/" + sub + ": " + ec.message());
  }
  const std::string d = dir_;
  std::ofstream config(d + "/config.xml");
  config << "<?xml version=\"1.0\"?>\n<yandex>\n"
         << "  <logger><level>warning</level><log>" << d << "/log/server.log</log><errorlog>" << d
         << "/log/error.log</errorlog><console>0</console></logger>\n"
         << "  <listen_host>127.0.0.1</listen_host>\n"
         << "  <http_port>" << http_port_ << "</http_port>\n"
         << "  <tcp_port>" << tcp_port_ << "</tcp_port>\n"
         << "  <path>" << d << "/data/</path>\n"
         << "  <tmp_path>" << d << "/tmp/</tmp_path>\n"
         << "  <user_files_path>" << d << "/user_files/</user_files_path>\n"
         << "  <format_schema_path>" << d << "/format_schemas/</format_schema_path>\n"
         << "  <users_config>" << d << "/users.xml</users_config>\n"
         << "  <default_profile>default</default_profile>\n"
         << "  <default_database>default</default_database>\n"
         << "  <mark_cache_size>268435456</mark_cache_size>\n"
         << "  <max_concurrent_queries>200</max_concurrent_queries>\n"
         << "  <mlock_executable>false</mlock_executable>\n"
         << "  <timezone>UTC</timezone>\n"
         << "</yandex>\n";
  std::ofstream users(d + "/users.xml");
  users << "<?xml version=\"1.0\"?>\n<yandex>\n"
        // The block size the calls table is laid out for (schema.h kCallsBlockBytes), as
        // README.md ("Server settings") asks of an 18.16 server.
        << "  <profiles><default><min_compress_block_size>4096</min_compress_block_size>"
        << "</default></profiles>\n"
        << "  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip>"
        << "</networks><profile>default</profile><quota>default</quota></default></users>\n"
        << "  <quotas><default></default></quotas>\n"
        << "</yandex>\n";
  config.close();
  users.close();
  if (!config || !users) return core::Internal("cannot write the configuration in " + d);
  return core::Status::Ok();
}

core::Status TestClickHouse::Launch(core::Nanos wait) {
  const std::string config = "--config-file=" + dir_ + "/config.xml";
  const std::string out = dir_ + "/log/stdout.log";
  std::vector<std::string> args = {binary_};
  if (single_binary_) args.push_back("server");
  args.push_back(config);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return core::Internal("fork failed");
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec. The server dies with this thread,
    // so a crashed test leaves nothing running.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    if (::chdir(dir_.c_str()) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = pid;
  auto conn = Connection::Create(url(), "default", "");
  if (!conn.ok()) return conn.status();
  // Waiting on an external process's start-up: poll /ping, bounded by `wait`.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return core::Unavailable("clickhouse-server exited during start-up: " + LogTail());
    }
    if ((*conn)->Ping(1s).ok()) return core::Status::Ok();
    std::this_thread::sleep_for(100ms);
  }
  Stop();
  return core::Status(
      core::StatusCode::kDeadlineExceeded,
      "clickhouse-server did not answer /ping within the start-up bound: " + LogTail());
}

core::Status TestClickHouse::Restart(core::Nanos wait) {
  Stop();
  return Launch(wait);
}

void TestClickHouse::Stop(core::Nanos grace) {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string TestClickHouse::LogTail() const {
  std::string text;
  for (const char* name : {"/log/stdout.log", "/log/error.log"}) {
    std::ifstream in(dir_ + name);
    std::stringstream ss;
    ss << in.rdbuf();
    text += ss.str();
  }
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return text.empty() ? "(no log output)" : text;
}

}  // namespace llmscope::storage_clickhouse
