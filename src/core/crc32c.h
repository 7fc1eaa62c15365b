#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of iSCSI, ext4 and
// LevelDB. Frames spill records and checksums time-series blocks. Uses the SSE4.2 crc32 instruction
// when the CPU has it and a table otherwise; both give the same value. Thread-safety: pure
// functions; safe from any thread.
namespace llmscope::core {

// The CRC-32C of `data` appended to bytes whose CRC-32C is `crc` (0 for no prior bytes), so
// Crc32cExtend(Crc32cExtend(0, a), b) == Crc32c(a + b).
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);

inline uint32_t Crc32c(std::string_view data) { return Crc32cExtend(0, data.data(), data.size()); }

namespace internal {
// The table implementation, exposed so tests check it against the hardware path.
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);
}  // namespace internal

}  // namespace llmscope::core
