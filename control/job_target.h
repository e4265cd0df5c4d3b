#pragma once
// CheckJobTarget: a mirror's or a backup's target must be a file that
// nothing of the mount reads or writes. Refused:
//
// - a file inside the mount (an image of the mount itself, through FUSE):
//   the job's writes into it would pass through the mount's own write
//   hooks, which wait for the job (a backup into its own disk never ended,
//   and the mount could not be unmounted);
// - a file an image of the mount is made of (its overlay's data, metadata
//   or bitmaps file): the job would overwrite what the guest wrote;
// - a backing image of any image of the mount: every disk over it would
//   change under its guest (chains are read-only except through a commit,
//   docs/config.md), and its overlays would be refused at their next open.
//
// Files are compared as the kernel sees them (device and inode), so another
// name for the same file (a link, "a/../b") is refused too. A target on a
// server (a URI) is not checked: corfs cannot tell what a server exports.

#include <string>

#include "common/status.h"
#include "control/block_commands.h"

namespace corfs::control {

// `target` as the command names it; for an incremental backup, the files of
// the overlay it names (NAME.cor, NAME.part) are checked too.
Status CheckJobTarget(const ControlContext& context, const std::string& target);

}  // namespace corfs::control
