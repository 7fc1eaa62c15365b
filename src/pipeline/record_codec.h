#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/llm_call.h"
#include "core/span.h"
#include "core/status.h"

// A compact, versioned binary encoding of batches of calls and spans: the payload of a
// spill record (spill_queue.h). Every field of core::LlmCall and core::Span round-trips
// exactly (doubles bit for bit).
//
// Layout (version 1). Integers are LEB128 varints; signed ones zigzag-encoded first;
// doubles are their IEEE-754 bits as 8 little-endian bytes; a string is a varint length
// and its bytes; an optional is a presence byte (0 or 1) and, when 1, its value; ids are
// their raw 16 or 8 bytes; enums and bools are one byte.
//
//   batch      := version:u8 kind:u8 count:varint record*count      (nothing after)
//   call       := request_id trace_id span_id parent_span_id start first_byte
//                 first_content end overhead endpoint stream requested_model
//                 response_model provider provider_kind http_status error error_message
//                 client_cancelled ?max_tokens ?temperature ?top_p finish_reasons[]
//                 usage(input output cache_read cache_write reasoning) usage_source
//                 ?cost_usd unpriced user session tags[](key value) request_body
//                 response_text
//   span       := trace_id span_id parent_span_id name kind service scope start end
//                 status status_message attributes(resource) attributes events[] links[]
//   attributes := count:varint (key type:u8 value)*count, type 0 string, 1 bool,
//                 2 int64 (zigzag), 3 double, 4 JSON text (string)
//   event      := time name attributes        link := trace_id span_id attributes
//
// A later format bumps the version; decoders refuse versions they do not know rather than
// guess. Thread-safety: pure functions; safe from any thread.
namespace llmscope::pipeline {

inline constexpr uint8_t kRecordCodecVersion = 1;

// What a batch holds; also the kind byte of a spill record's frame.
enum class RecordKind : uint8_t { kCalls = 1, kSpans = 2 };
std::string_view RecordKindName(RecordKind kind);  // "calls", "spans"

std::string EncodeCalls(std::span<const core::LlmCall> calls);
std::string EncodeSpans(std::span<const core::Span> spans);

// The kind named by an encoding's header, without decoding the rest. INVALID_ARGUMENT for
// an unknown version or kind, or fewer than two bytes.
core::Result<RecordKind> PeekRecordKind(std::string_view bytes);

// Inverses of the encoders. Never crash and never read out of bounds on any input: a
// truncated, corrupt or foreign input gives INVALID_ARGUMENT with a message that starts
// with "record codec: " and names the problem, the field and its byte offset. Every length
// and count is checked against the bytes that remain before anything is allocated for it,
// so a corrupt count cannot make the decoder reserve more than a small multiple of the
// input size. Bytes after the last record are an error.
core::Result<std::vector<core::LlmCall>> DecodeCalls(std::string_view bytes);
core::Result<std::vector<core::Span>> DecodeSpans(std::string_view bytes);

}  // namespace llmscope::pipeline
