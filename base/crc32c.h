// CRC32C (Castagnoli, as in iSCSI, ext4 and LevelDB): the checksum of muppet's checkpoint
// sections. SSE4.2's crc32 instruction where the CPU has it (every x86-64 muppet supports), a
// table otherwise; both give the same value.
#ifndef MUPPET_BASE_CRC32C_H_
#define MUPPET_BASE_CRC32C_H_

#include <cstdint>
#include <string_view>

namespace muppet {

// The CRC32C of `data` continuing from the CRC32C `crc` of what came before it (0 to start):
// Crc32c(b, Crc32c(a)) == Crc32c(a + b). Thread-safe.
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

namespace internal {
// The table implementation, for tests that compare the two.
uint32_t Crc32cPortable(std::string_view data, uint32_t crc);
}  // namespace internal

}  // namespace muppet

#endif  // MUPPET_BASE_CRC32C_H_
