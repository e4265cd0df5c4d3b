#pragma once
// Wall-clock time as file systems keep it.

#include <chrono>
#include <cstdint>

namespace corfs {

// Nanoseconds since the Unix epoch (for st_mtime and friends).
inline int64_t WallClockNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace corfs
