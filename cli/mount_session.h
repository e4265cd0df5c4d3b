#pragma once
// MountSession: everything one `corfs mount` runs, put together in the
// order it must start and stopped in the reverse order:
//   overlays -> job pool -> control socket -> auto-started streams -> FUSE.
// On the way down: the FUSE loop ends, the control socket closes, jobs are
// interrupted (a whole-image stream resumes at the next mount from the
// committed bitmap, see StartStreamAtMount in mount_session.cc),
// every overlay commits, then the filesystem is unmounted.

#include <memory>
#include <mutex>
#include <string>

#include "common/event_bus.h"
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
};

}  // namespace corfs::cli
