#pragma once
// The backup commands of a control socket, named and shaped as QEMU's:
// drive-backup (device, target, sync full|top|incremental, bitmap, speed,
// job-id, mode, format), block-dirty-bitmap-add (node, name, granularity,
// persistent), block-dirty-bitmap-remove and block-dirty-bitmap-clear
// (node, name). query-images shows each image's "dirty-bitmaps"
// (DirtyBitmapsJson). The work is jobs/backup_driver.h's and
// overlay/persistent_bitmaps.h's.

#include <nlohmann/json.hpp>

#include "control/block_commands.h"
#include "control/qmp_command.h"
#include "mount/mounted_image.h"

namespace corfs::control {

// Adds drive-backup and the block-dirty-bitmap-* commands.
void AddBackupCommands(CommandTable& table, ControlContext* context);

// QEMU's BlockDirtyInfo list of an image: name, granularity, count (bytes
// marked), recording, busy, persistent, inconsistent; corfs adds
// "last-target" (the target of the last backup that took it).
nlohmann::json DirtyBitmapsJson(const mount::MountedImage& image);

}  // namespace corfs::control
