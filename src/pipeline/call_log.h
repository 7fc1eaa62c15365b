#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/log.h"
#include "core/record_sink.h"
#include "core/status.h"

namespace llmscope::pipeline {

// One call as one line of JSON (without the trailing newline), for log shippers (Fluent Bit,
// Fluentd, Vector). Field names and their meaning are documented in src/pipeline/README.md
// and are stable. `request_body` and `response_text` appear only when `include_content`.
// Strings are escaped per RFC 8259 with invalid UTF-8 replaced by U+FFFD, so the line is
// always valid JSON; numbers round-trip (shortest form); NaN and infinities become null.
// Thread-safety: pure; safe from any thread.
std::string FormatCallJson(const core::LlmCall& call, bool include_content);

// Settings of a JsonLinesCallLog.
struct CallLogOptions {
  // Adds `request_body` and `response_text` to each line. They are filled only for routes
  // with content capture on, and may hold personal data: off unless asked for.
  bool include_content = false;
};

// Thread-safety: Consume and Flush are called from the pipeline's worker thread only (see
// core::BatchSink); the counters may be read from any thread.
//
// A BatchSink writing one JSON line per call (FormatCallJson) to stdout, stderr or a file
// opened in append mode. Each batch goes out in a single write(2) of all its lines (looping
// only on a short write), so lines from one process never interleave and a log shipper
// tailing the file never sees a torn line except at a crash. A failing write is counted
// and logged when writes start failing and when they recover, never once per batch.
class JsonLinesCallLog final : public core::BatchSink {
 public:
  // `target`: "stdout", "stderr", or a file path (created with mode 0644 if missing,
  // appended to). `logger` is borrowed and must outlive the log; null logs nothing.
  // Errors: INVALID_ARGUMENT for an empty target; UNAVAILABLE naming the path and the
  // system error when the file cannot be opened.
  static core::Result<std::unique_ptr<JsonLinesCallLog>> Open(std::string_view target,
                                                              CallLogOptions options = {},
                                                              core::Logger* logger = nullptr);
  ~JsonLinesCallLog() override;
  JsonLinesCallLog(const JsonLinesCallLog&) = delete;
  JsonLinesCallLog& operator=(const JsonLinesCallLog&) = delete;

  void Consume(const std::vector<core::LlmCall>& batch) override;
  // Calls fsync on a file target (a no-op for stdout/stderr, which may be pipes).
  void Flush() override;

  // Lines written successfully, and batches whose write failed (their lines are lost).
  uint64_t lines_written() const { return lines_written_.load(std::memory_order_relaxed); }
  uint64_t failed_writes() const { return failed_writes_.load(std::memory_order_relaxed); }

 private:
  JsonLinesCallLog(int fd, bool owns_fd, std::string target, CallLogOptions options,
                   core::Logger* logger);

  const int fd_;
  const bool owns_fd_;
  const std::string target_;  // for log messages
  const CallLogOptions options_;
  core::Logger* const logger_;
  std::string buffer_;    // worker thread only: reused across batches
  bool failing_ = false;  // worker thread only: the last write failed
  std::atomic<uint64_t> lines_written_{0};
  std::atomic<uint64_t> failed_writes_{0};
};

}  // namespace llmscope::pipeline
