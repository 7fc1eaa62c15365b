#pragma once

#include <cstdint>
#include <string>

#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"
#include "storage_clickhouse/row_binary.h"

// LlmCall and Span rows in RowBinary, in the column order of schema.h.
namespace llmscope::storage_clickhouse {

// What a row of spans_in is (the row_kind column).
enum class RowKind : uint8_t {
  kLive = 0,       // a span as written
  kTombstone = 1,  // marks the span's row in another day deleted (a rewrite moved it)
};

// A calls row as read back: its version and the call (without content).
struct StoredCall {
  uint64_t ver = 0;
  core::LlmCall call;
};

// A spans row as read back: its version, whether it is a tombstone, and the span.

struct StoredSpan {
  uint64_t ver = 0;
  bool deleted = false;
  core::Span span;
};

// The column list of an INSERT into calls_in that AppendCallRow follows.
std::string CallsInColumns();
// One calls_in row: the call's fields and content, its day (from start_unix_nanos), `ver`.
void AppendCallRow(RowBinaryWriter& w, uint64_t ver, const core::LlmCall& call);
// The SELECT list ReadStoredCall reads: "ver, <call columns>".
std::string StoredCallSelect();
// INTERNAL when the row is cut short or holds a value this build does not know (an enum
// name written by a newer version).
core::Result<StoredCall> ReadStoredCall(RowBinaryReader& r);

std::string SpansInColumns();
void AppendSpanRow(RowBinaryWriter& w, RowKind kind, uint64_t ver, const core::Span& span);
std::string StoredSpanSelect();
core::Result<StoredSpan> ReadStoredSpan(RowBinaryReader& r);

}  // namespace llmscope::storage_clickhouse
