#pragma once
// The control commands that report what a mount does:
//   query-blockstats  QEMU's: per image, {"device": NAME, "stats": {...}}
//                     with QEMU's counter names, plus corfs' copy-on-read
//                     counters as corfs_cor_faults and corfs_cor_bytes
//   query-block-map   corfs' own (no QEMU command maps a live image): the
//                     runs of `qemu-img map --output=json` for the image
//                     named by "device" (overlay/block_map.h)
// and LogCommands, which logs every command of a table as it runs.

#include <memory>

#include <spdlog/spdlog.h>

#include "control/block_commands.h"
#include "control/qmp_command.h"

namespace corfs::control {

// Adds query-blockstats and query-block-map to `table`; `context` must
// outlive it.
void AddObservabilityCommands(CommandTable& table, ControlContext* context);

// Wraps every command of `table` so that each run is logged with its name,
// the image or job it names ("device", "node-name", "id", "job-id": names
// only, never other arguments) and its outcome (ok, or the QMP error
// class). Queries log at debug level, other commands at info.
void LogCommands(CommandTable& table, const std::shared_ptr<spdlog::logger>& log);

}  // namespace corfs::control
