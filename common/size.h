#pragma once
// Sizes as people write them: "65536", "64K", "10G", "1.5T", "200MiB".
// Suffixes are binary (K = 1024), as in qemu-img; a space may stand between
// the number and its unit ("10 G").

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corfs {

// The units ParseSize accepts, as its error messages name them.
inline constexpr std::string_view kSizeUnitsHelp =
    "units: B, K, M, G, T, P, E (binary, 1K = 1024), also written KB/KiB, MB/MiB, ...";

Status ParseSize(std::string_view text, uint64_t* out);

// True when `text` ends in a unit ("10G", "40B"), false for a bare number
// ("40"): a bare number is bytes, which callers may question where bytes
// are an unlikely amount.
bool SizeHasUnit(std::string_view text);

// 1073741824 -> "1 GiB", 1536 -> "1.5 KiB", 100 -> "100 B".
std::string FormatSize(uint64_t bytes);

}  // namespace corfs
