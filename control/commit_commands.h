#pragma once
// block-commit (QEMU's spelling): device, top, base, speed, force, job-id,
// on-error; unknown arguments are refused. `top` names an image of the
// device's chain (omitted: the overlay itself, an active commit), `base` the
// raw image written into (omitted: the bottom of the chain). The work is
// jobs/commit_driver.h's; every other image of the mount is handed to it,
// so those over the base keep reading what they read.

#include "control/block_commands.h"

namespace corfs::control {

// Adds block-commit to `table`; `context` must outlive it.
void AddCommitCommands(CommandTable& table, ControlContext* context);

}  // namespace corfs::control
