#pragma once
// Sizes as people write them: "65536", "64K", "10G", "1.5T", "200MiB".
// Suffixes are binary (K = 1024), as in qemu-img.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace corfs {

Status ParseSize(std::string_view text, uint64_t* out);

// 1073741824 -> "1 GiB", 1536 -> "1.5 KiB", 100 -> "100 B".
std::string FormatSize(uint64_t bytes);

}  // namespace corfs
