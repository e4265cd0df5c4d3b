#pragma once
// The libfuse low-level operations of a corfs mount: a flat folder of
// regular files, each the raw view of one overlay.

#define FUSE_USE_VERSION 312
#include <fuse3/fuse_lowlevel.h>

namespace corfs::fuse {

// The operations table; the session's userdata must be an ImageTable*.
const fuse_lowlevel_ops& CorfsOperations();

}  // namespace corfs::fuse
