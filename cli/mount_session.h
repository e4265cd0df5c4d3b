#pragma once
// MountSession: everything one `corfs mount` runs, put together in the
// order it must start and stopped in the reverse order:
//   overlays -> job pool -> control socket -> auto-started or resumed
//   streams -> metrics writer -> SIGHUP thread -> FUSE.
// On the way down: the FUSE loop ends, the SIGHUP thread stops (after a
// re-reading under way), the control socket closes, the metrics writer
// stops, jobs are interrupted (a whole-image stream resumes at the next
// mount from the committed bitmap, see cli/image_start.h), every overlay
// commits, the last metrics are written, then the filesystem is unmounted.
//
// While it serves, images join and leave (cli/image_changes.h): by QMP
// image-add and image-remove, and by SIGHUP, which re-reads the YAML file on
// a thread of its own (SignalThread). QMP commands and those changes run one
// at a time under control_mutex_, so no job starts on an image that leaves.

#include <memory>
#include <mutex>
#include <string>

#include "cli/image_changes.h"
#include "cli/image_loader.h"
#include "cli/signal_thread.h"
#include "common/event_bus.h"
#include "config/config_loader.h"
#include "config/mount_config.h"
#include "control/block_commands.h"
#include "control/qmp_server.h"
#include "fuse/fuse_mount.h"
#include "jobs/job_manager.h"
#include "mount/image_table.h"
#include "mount/metrics_writer.h"

namespace corfs::cli {

struct SessionOptions {
  std::string mountpoint;  // overrides the YAML file's
  bool allow_other = false;
  bool debug = false;
  // How the YAML file was read; re-reading it (SIGHUP, image-add) reads it so.
  config::LoadOptions load_options;
  // The daemon's log (common/log.h); null: spdlog's default logger.
  std::shared_ptr<spdlog::logger> log;
};

class MountSession {
 public:
  // Opens and mounts; on failure nothing stays mounted.
  static Status Start(const config::MountConfig& cfg, const SessionOptions& options,
                      std::unique_ptr<MountSession>* out);
  ~MountSession();

  // Serves until unmounted or signalled; then shuts down in order.
  Status Run();

  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& socket_path() const { return socket_path_; }
  size_t image_count() const { return table_ ? table_->size() : 0; }

 private:
  MountSession() = default;
  Status Shutdown();
  // QMP `quit`, from the control socket's thread.
  Status RequestQuit();
  // Sets up image-add, image-remove and SIGHUP's re-reading (control_mutex_ held).
  void SetUpImageChanges(const config::MountConfig& cfg, const SessionOptions& options);
  // Makes every QMP command take control_mutex_ (before the server starts).
  void SerializeCommands();
  Status StartReloadSignal();
  // A QMP block_resize grew `image`: the kernel drops the size it caches.
  void NotifySizeChanged(const std::string& image);
  // What the metrics file shows now (`up` false for the one at unmount).
  mount::MetricsSnapshot Metrics(bool up) const;
  Status StartMetrics(const config::MountConfig& cfg);

  std::string mountpoint_;
  std::string socket_path_;
  EventBus events_;
  std::unique_ptr<mount::ImageTable> table_;
  std::unique_ptr<jobs::JobManager> jobs_;
  control::ControlContext control_context_;
  control::CommandTable commands_;
  std::unique_ptr<control::QmpServer> server_;
  std::mutex mount_mutex_;  // mount_ is set by Start while `quit` may read it
  std::unique_ptr<fuse::FuseMount> mount_;
  EventBus::Subscription log_subscription_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<mount::MetricsWriter> metrics_;  // reads table_ and jobs_
  bool shut_down_ = false;
  // Held by every QMP command, by image changes and by Start: one at a time.
  std::mutex control_mutex_;
  MountResources resources_;
  std::unique_ptr<ImageChanges> image_changes_;
  std::unique_ptr<SignalThread> reload_signal_;
};

}  // namespace corfs::cli
