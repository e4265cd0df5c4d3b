#pragma once
// The QMP side of exporting an image read-only (post-copy migration,
// docs/migration.md): corfs's own commands, QEMU has none (it inactivates a
// whole block graph on migration instead).
//   image-export-prep  {"device": NAME}: from now on the guest's writes,
//                      discards, truncates, writable opens and chmods adding
//                      a write bit are EROFS; changes in flight are waited
//                      for and the overlay is flushed before the reply, so
//                      what a server exports through the mount
//                      (`qemu-nbd -r -f raw MNT/NAME`) is the disk as it
//                      stands, durable, and stays so. Refused while a job
//                      other than a stream works on the image (a stream
//                      only copies what the guest sees already). Again on
//                      an exported image: flushes, changes nothing else.
//   image-export-end   {"device": NAME}: the guest may change the disk
//                      again (the export is over, or was a mistake). On an
//                      image not exported: nothing to do.
// query-images shows the state as "exporting". It lasts as long as the
// mount: a mount started again starts writable.

#include "control/block_commands.h"
#include "control/qmp_command.h"

namespace corfs::control {

void AddExportCommands(CommandTable& table, ControlContext* context);

}  // namespace corfs::control
