#pragma once
// FileId: which file a path names, as the kernel sees it (device and inode).
// Two paths that name the same file (hard links, symlinks, "a/../b") have
// the same FileId, which is how chains find loops and images twice.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "common/status.h"

namespace corfs {

struct FileId {
  uint64_t device = 0;
  uint64_t inode = 0;

  bool operator==(const FileId&) const = default;
  auto operator<=>(const FileId&) const = default;
};

// stat() of `path` (symlinks followed); the error names the path.
Status IdentifyFile(const std::string& path, FileId* out);

// True when both paths name one existing file.
bool SameFile(const std::string& a, const std::string& b);

}  // namespace corfs
