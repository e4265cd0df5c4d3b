#pragma once
// Whole-buffer positional I/O on a file descriptor, retrying short transfers
// and EINTR, so callers never see a partial read or write.

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"

namespace corfs {

// Reads exactly buf.size() bytes at `offset`. Bytes past the end of the file
// read as zeros (a sparse or short file behaves like a zero-filled one).
Status PreadFull(int fd, std::span<char> buf, uint64_t offset, const std::string& what);

// Writes all of `data` at `offset`.
Status PwriteFull(int fd, std::span<const char> data, uint64_t offset, const std::string& what);

// fdatasync with EINTR retry.
Status SyncData(int fd, const std::string& what);

// Makes the directory entry of `path` durable (fsync of its parent folder).
Status SyncParentDirectory(const std::string& path);

// True when every byte of `data` is zero.
bool IsAllZero(std::span<const char> data);

}  // namespace corfs
