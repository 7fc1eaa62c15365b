#include "pipeline/call_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "core/call_json.h"

namespace llmscope::pipeline {
std::string FormatCallJson(const core::LlmCall& call, bool include_content) {
  return core::FormatCallJson(call, include_content);
}

core::Result<std::unique_ptr<JsonLinesCallLog>> JsonLinesCallLog::Open(std::string_view target,
                                                                       CallLogOptions options,
                                                                       core::Logger* logger) {
  if (target.empty()) return core::InvalidArgument("call log target is empty");
  int fd;
  bool owns = false;
  if (target == "stdout") {
    fd = STDOUT_FILENO;
  } else if (target == "stderr") {
    fd = STDERR_FILENO;
  } else {
    const std::string path(target);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      const int err = errno;
      return core::Unavailable("cannot open call log '" + path + "': " + std::strerror(err));
    }
    owns = true;
  }
  return std::unique_ptr<JsonLinesCallLog>(
      new JsonLinesCallLog(fd, owns, std::string(target), options, logger));
}

JsonLinesCallLog::JsonLinesCallLog(int fd, bool owns_fd, std::string target, CallLogOptions options,
                                   core::Logger* logger)
    : fd_(fd), owns_fd_(owns_fd), target_(std::move(target)), options_(options), logger_(logger) {}

JsonLinesCallLog::~JsonLinesCallLog() {
  if (owns_fd_) ::close(fd_);
}

void JsonLinesCallLog::Consume(const std::vector<core::LlmCall>& batch) {
  if (batch.empty()) return;
  buffer_.clear();
  for (const core::LlmCall& call : batch) {
    core::AppendCallJson(buffer_, call, options_.include_content);
    buffer_.push_back('\n');
  }
  // One write(2) for the whole batch; loop only on a short write (pipes, signals), so a
  // batch is never split except by the kernel.
  size_t off = 0;
  int err = 0;
  while (off < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (err == 0) {
    lines_written_.fetch_add(batch.size(), std::memory_order_relaxed);
    if (failing_ && logger_ != nullptr) {
      logger_->Info("call log writes recovered", {{"target", target_}});
    }
    failing_ = false;
    return;
  }
  failed_writes_.fetch_add(1, std::memory_order_relaxed);
  if (!failing_ && logger_ != nullptr) {
    logger_->Error("call log write failed; lines are being lost until it recovers",
                   {{"target", target_}, {"error", std::strerror(err)}});
  }
  failing_ = true;
}

void JsonLinesCallLog::Flush() {
  // Only files: fsync on a pipe or terminal fails with EINVAL and means nothing there.
  if (owns_fd_) ::fsync(fd_);
}

}  // namespace llmscope::pipeline
