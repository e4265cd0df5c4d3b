#pragma once
// The QMP side of images joining and leaving a running mount:
//   image-add     {"name": NAME, KEY: VALUE, ...}: the keys of one image as
//                 the YAML file spells them (overlay, backing, size,
//                 stream: {...}, ...), read as if the file listed the image
//   image-remove  {"name": NAME}: refused while a file is open on it or a
//                 job works on it
// and the events that report such changes: CORFS_IMAGE_ADDED,
// CORFS_IMAGE_REMOVED (data: {"name"}) and CORFS_CONFIG_RELOADED, the
// outcome of a SIGHUP. The work itself is the session's (ControlContext's
// add_image and remove_image); the names and JSON shapes are here.

#include <string>
#include <utility>
#include <vector>

#include "common/event_bus.h"
#include "control/block_commands.h"
#include "control/qmp_command.h"

namespace corfs::control {

void AddImageCommands(CommandTable& table, ControlContext* context);

void PublishImageAdded(EventBus& events, const std::string& name);
void PublishImageRemoved(EventBus& events, const std::string& name);

// What re-reading the YAML file did, one entry per image it touched.
struct ReloadReport {
  std::string error;  // the file could not be read: nothing changed
  std::vector<std::string> added;
  std::vector<std::string> removed;
  // Still in the mount though the file no longer lists them: (name, why).
  std::vector<std::pair<std::string, std::string>> kept;
  // Listed, but not as mounted (changed settings), or could not be added:
  // (name, why).
  std::vector<std::pair<std::string, std::string>> refused;
};

// CORFS_CONFIG_RELOADED {"added": [...], "removed": [...], "kept":
// [{"name", "reason"}], "refused": [{"name", "reason"}]} or {"error"}.
void PublishReloaded(EventBus& events, const ReloadReport& report);

}  // namespace corfs::control
