#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/span.h"
#include "core/status.h"

// Internal to storage_sqlite: the binary encoding of span attributes, events and links in
// the spans table (schema version 2 on). Compact and allocation-free to write: it replaced
// per-span JSON, which cost about a third of the CPU of storing a span with 20 attributes.
//
// Layout (varint = unsigned LEB128; zigzag = signed, zigzag then varint):
//   empty list:  zero bytes
//   attributes:  0x01, varint count, then per attribute:
//                  key, kind byte, value
//                  key: varint (i << 1) | 1 for kKnownKeys[i] (span_codec.cc: semantic-
//                    convention names, append-only), or varint (length << 1), then the bytes
//                  kind 0 string: varint length, bytes     kind 1 false    kind 2 true
//                  kind 3 int: zigzag                     kind 4 double: 8 bytes, IEEE 754
//                                                           bit pattern little-endian
//                  kind 5 composite: varint length, its JSON text
//   events:      0x01, varint count, then per event: zigzag time, varint name length, name,
//                  varint attribute count, the attributes as above
//   links:       0x01, varint count, then per link: 16 bytes trace id, 8 bytes span id,
//                  varint attribute count, the attributes as above
// Byte-exact for every value (doubles keep their bits; ints and whole doubles stay apart).
// Rows written by schema version 1 hold JSON text (storage::AttributesToJson, ...) instead,
// which starts with '{' or '['; the decoders read both, so migrated rows need no rewrite.
namespace llmscope::storage_sqlite::internal {

// Append the encoding to `out` (cleared first; its capacity is reused).
void EncodeAttributes(const core::Attributes& attributes, std::string& out);
void EncodeEvents(const std::vector<core::SpanEvent>& events, std::string& out);
void EncodeLinks(const std::vector<core::SpanLink>& links, std::string& out);

// Inverses; they also read the JSON of schema version 1. INTERNAL on bytes that are neither
// (a damaged file).
core::Result<core::Attributes> DecodeAttributes(std::string_view stored);
core::Result<std::vector<core::SpanEvent>> DecodeEvents(std::string_view stored);
core::Result<std::vector<core::SpanLink>> DecodeLinks(std::string_view stored);

}  // namespace llmscope::storage_sqlite::internal
