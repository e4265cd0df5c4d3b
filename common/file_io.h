#pragma once
// Whole-buffer positional I/O on a file descriptor, retrying short transfers
// and EINTR, so callers never see a partial read or write.

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace corfs {

// Reads exactly buf.size() bytes at `offset`. Bytes past the end of the file
// read as zeros (a sparse or short file behaves like a zero-filled one).
Status PreadFull(int fd, std::span<char> buf, uint64_t offset, const std::string& what);

// Writes all of `data` at `offset`.
Status PwriteFull(int fd, std::span<const char> data, uint64_t offset, const std::string& what);

// Copies `length` bytes from `src` at `src_offset` to `dst` at `dst_offset`
// inside the kernel (copy_file_range), so the bytes never pass through this
// process. Returns Ok with *copied < length when the kernel cannot copy
// between these files (another file system, not regular files, the source
// ending early): the caller copies the rest itself.
Status CopyFileRange(int src, uint64_t src_offset, int dst, uint64_t dst_offset, uint64_t length,
                     const std::string& what, uint64_t* copied);

// fdatasync with EINTR retry.
Status SyncData(int fd, const std::string& what);

// Makes the directory entry of `path` durable (fsync of its parent folder).
Status SyncParentDirectory(const std::string& path);

// Writes `text` to `path` whole and atomically: PATH.tmp, fdatasync, rename,
// fsync of the folder. Readers see the old file or the new one, never a part;
// on failure the temporary file is removed and `path` is as it was.
Status ReplaceFileAtomically(const std::string& path, const std::string& text);

// Opens `path` with `flags` (O_CLOEXEC added), `mode` for a file it makes,
// and keeps it only if it is a regular file or a block device: what images
// and an overlay's files are. A FIFO or a terminal would block the open (a
// FIFO waits for a writer) or every read for good, so the open does not
// wait (O_NONBLOCK), the type is checked, and the descriptor is then made
// blocking again. The error names the path and what it is.
Status OpenDiskFile(const std::string& path, int flags, UniqueFd* out, mode_t mode = 0644);

// True when every byte of `data` is zero.
bool IsAllZero(std::span<const char> data);

}  // namespace corfs
