#pragma once
// The libfuse low-level operations of a corfs mount: a flat folder of
// regular files, each the raw view of one overlay.

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

namespace corfs::fuse {

// The largest read the kernel asks of the mount (the max_read mount option
// and the session's max_read, which must be equal). Half of the largest
// write: a read is answered by splicing from the overlay's data file
// through a pipe that must hold the whole reply, and a pipe grows past
// /proc/sys/fs/pipe-max-size (1 MiB by default) only with CAP_SYS_RESOURCE;
// and the kernel sends the pieces of a larger O_DIRECT read at once
// (async direct I/O), so a 1 MiB read is served by two threads.
inline constexpr unsigned kMaxRead = 512 << 10;

// The operations table; the session's userdata must be an ImageTable*.
const fuse_lowlevel_ops& CorfsOperations();

}  // namespace corfs::fuse
