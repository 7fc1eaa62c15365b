#pragma once

#include <vector>

#include "core/llm_call.h"

namespace llmscope::core {

// Where capture (gateway, OTLP receiver) hands finished calls. The seam between capture and
// the pipeline.
// Contract: Submit never blocks and never waits on storage or analysis. It returns false when
// the record was dropped (queue full, shutting down); the implementation counts drops.
// Thread-safety: implementations accept calls from any number of threads.
class RecordSink {
 public:
  virtual ~RecordSink() = default;
  virtual bool Submit(LlmCall&& call) = 0;
};

// A consumer of records in batches, called from the pipeline's worker thread only.
// Contract: Consume must not block for long; slow consumers delay the others.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  virtual void Consume(const std::vector<LlmCall>& batch) = 0;
  // Called once at shutdown after the last Consume.
  virtual void Flush() {}
};

}  // namespace llmscope::core
