#pragma once
// drive-mirror: QEMU's command for a mirror job (jobs/mirror_driver.h),
// with QEMU's arguments where they fit: device, target, format ("raw"
// only), sync ("full" or "top"), mode ("absolute-paths": a new file, the
// default; "existing"), speed (+ force), job-id, granularity,
// on-source-error, on-target-error, copy-mode ("background" or
// "write-blocking"). Unknown arguments are refused. A target that is an NBD
// URI must exist (it cannot be made); a new file target is removed again if
// the job does not start.

#include "control/block_commands.h"
#include "control/qmp_command.h"

namespace corfs::control {

// Adds drive-mirror to `table`; `context` must outlive it.
void AddMirrorCommand(CommandTable& table, ControlContext* context);

}  // namespace corfs::control
