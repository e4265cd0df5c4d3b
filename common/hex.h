#pragma once
// Numbers in hexadecimal, for messages and listings.

#include <cstdint>
#include <string>

namespace corfs {

// 0x1f -> "0x1f": file offsets and bit masks in error messages.
std::string Hex(uint64_t value);

// 0x1f -> "000000000000001f": fingerprints, fixed width so they line up.
std::string Hex16(uint64_t value);

}  // namespace corfs
