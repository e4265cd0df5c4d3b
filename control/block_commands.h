#pragma once
// The commands of a corfs control socket, named as QEMU's where the meaning
// matches: query-version, query-commands, query-images, block-stream,
// query-block-jobs, block-job-set-speed, block-job-pause, block-job-resume,
// block-job-cancel, block-job-complete, drive-mirror (mirror_commands.h),
// block-set-write-threshold, block_resize, QEMU's generic
// job commands query-jobs, job-pause, job-resume, job-cancel, job-dismiss,
// and quit; block-commit from control/commit_commands.h; query-blockstats and query-block-map come from
// observability_commands.h; corfs's own image-add and image-remove from
// control/image_commands.h; image-export-prep and image-export-end from
// control/export_commands.h.
// QMP's spellings (a block job's id is "device", a job's "id") stay here;
// the layers below name things their own way. Every command refuses
// arguments it does not know.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/event_bus.h"
#include "control/qmp_command.h"
#include "jobs/job_manager.h"
#include "mount/image_table.h"
#include "overlay/remote/remote_options.h"

namespace corfs::control {

// What the commands act on; it must outlive the command table.
struct ControlContext {
  mount::ImageTable* images = nullptr;
  jobs::JobManager* jobs = nullptr;
  EventBus* events = nullptr;
  // Unmounts cleanly, as SIGINT does (`quit`); the reply goes out first.
  std::function<Status()> quit;
  // image-add: `keys` are the image's keys as the YAML file spells them;
  // with `check_only`, only reads them (under a placeholder name) to name
  // what is wrong. image-remove: the image is in the table.
  std::function<Status(const std::string& name, const nlohmann::json& keys, bool check_only)> add_image;
  std::function<Status(const std::string& name)> remove_image;
  // The image's size changed behind the file system's back (block_resize):
  // whoever serves it drops what it cached. May be empty.
  std::function<void(const std::string& image)> size_changed;
  // How a job reaches a target on a server (drive-mirror to an NBD URI).
  overlay::RemoteOptions remote;
  // The folder the images are mounted at: no job writes to a file in it
  // (job_target.h).
  std::string mountpoint;
};

// `context` must outlive the table.
CommandTable MakeBlockCommands(ControlContext& context);
// Adds block_resize (block_resize.cc).
void AddResizeCommand(CommandTable& table, ControlContext& context);

// Publishes each job event on `events` as QMP's event: BLOCK_JOB_COMPLETED,
// BLOCK_JOB_CANCELLED, BLOCK_JOB_ERROR, BLOCK_JOB_READY.
jobs::JobEventSink PublishJobEvents(EventBus& events);

// Arms the one-shot write threshold of `image`, reporting on `events` as
// BLOCK_WRITE_THRESHOLD. 0 disarms it.
void ArmWriteThreshold(const mount::MountedImage& image, uint64_t bytes, EventBus& events);

}  // namespace corfs::control
