#include "cli/mount_session.h"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/image_loader.h"
#include "cli/image_start.h"
#include "cli/service_notify.h"
#include "cli/socket_path.h"
#include "config/config_loader.h"
#include "control/observability_commands.h"

namespace corfs::cli {

namespace fs = std::filesystem;

Status MountSession::Start(const config::MountConfig& cfg, const SessionOptions& options,
                           std::unique_ptr<MountSession>* out) {
  // Declared before the session: when Start fails, the session (with the
  // images it opened) goes first, then the overlays it made are removed.
  CreatedFiles created;
  std::unique_ptr<MountSession> session(new MountSession());
  // No QMP command, image change or SIGHUP runs until the mount is up.
  std::unique_lock serialized(session->control_mutex_);
  session->mountpoint_ = !options.mountpoint.empty() ? options.mountpoint : cfg.mountpoint.value_or("");
  if (session->mountpoint_.empty()) {
    return Status::Invalid("no mountpoint: name one on the command line or as `mountpoint:` in " + cfg.source_file);
  }
  session->socket_path_ = cfg.control_socket.value_or(DefaultSocketPath(session->mountpoint_));
  // A busy or stale mountpoint is refused before any overlay is created.
  CORFS_RETURN_IF_ERROR(fuse::CheckMountpoint(session->mountpoint_));
  // The file's own `mountpoint:` was checked as it was read; the one the
  // command line names instead must not hide an image's files either.
  if (!options.mountpoint.empty()) {
    for (const config::ImageConfig& image : cfg.images) {
      CORFS_RETURN_IF_ERROR(config::CheckJoiningImage(image, {}, session->mountpoint_));
    }
  }

  // allow_other from the command line too: it decides the images' default mode.
  config::MountConfig mounted = cfg;
  mounted.allow_other = options.allow_other || cfg.allow_other;
  std::vector<std::unique_ptr<mount::MountedImage>> images;
  session->resources_ = MountResources::Make(cfg.remote);
  CORFS_RETURN_IF_ERROR(OpenConfiguredImages(mounted, session->resources_, &created, &images));
  session->table_ = std::make_unique<mount::ImageTable>(std::move(images));

  unsigned workers = 0;
  for (const config::ImageConfig& image : cfg.images) workers = std::max(workers, image.stream.workers);
  session->jobs_ = std::make_unique<jobs::JobManager>(workers, control::PublishJobEvents(session->events_));

  control::ControlContext& context = session->control_context_;
  context.jobs = session->jobs_.get();
  context.events = &session->events_;
  context.images = session->table_.get();
  context.remote = cfg.remote;
  context.mountpoint = session->mountpoint_;
  context.quit = [s = session.get()] { return s->RequestQuit(); };
  context.size_changed = [s = session.get()](const std::string& image) { s->NotifySizeChanged(image); };
  session->log_ = options.log ? options.log : spdlog::default_logger();
  session->SetUpImageChanges(mounted, options);
  session->commands_ = control::MakeBlockCommands(context);
  control::LogCommands(session->commands_, session->log_);
  session->SerializeCommands();
  CORFS_RETURN_IF_ERROR(control::QmpServer::Start(session->socket_path_, session->commands_, session->events_, {},
                                                  &session->server_));
  session->log_subscription_ = session->events_.Subscribe([log = session->log_](const Event& event) {
    log->info("event {} {}", event.name, event.data.dump());
  });

  for (const std::shared_ptr<mount::MountedImage>& image : session->table_->Snapshot()) {
    CORFS_RETURN_IF_ERROR(StartImageJobs(*image, *session->jobs_, session->events_));
  }

  CORFS_RETURN_IF_ERROR(session->StartMetrics(cfg));
  CORFS_RETURN_IF_ERROR(session->StartReloadSignal());

  fuse::MountOptions mount_options;
  mount_options.mountpoint = session->mountpoint_;
  mount_options.allow_other = mounted.allow_other;
  mount_options.debug = options.debug;
  std::unique_ptr<fuse::FuseMount> mount;
  CORFS_RETURN_IF_ERROR(fuse::FuseMount::Mount(mount_options, session->table_.get(), &mount));
  {
    std::lock_guard lock(session->mount_mutex_);
    session->mount_ = std::move(mount);
  }
  created.Keep();
  *out = std::move(session);
  return Status::Ok();
}

void MountSession::SetUpImageChanges(const config::MountConfig& cfg, const SessionOptions& options) {
  ImageChangesContext changes;
  changes.yaml_path = cfg.source_file;
  changes.top = cfg;
  changes.top.images.clear();
  changes.mountpoint = mountpoint_;
  changes.allow_other = cfg.allow_other;
  changes.load_options = options.load_options;
  changes.resources = resources_;
  changes.table = table_.get();
  changes.jobs = jobs_.get();
  changes.events = &events_;
  changes.log = log_;
  changes.notify_added = [this](const std::string& name) {
    std::lock_guard lock(mount_mutex_);
    if (mount_ != nullptr) mount_->NotifyAdded(name);
  };
  changes.notify_removed = [this](const std::string& name, uint64_t ino) {
    std::lock_guard lock(mount_mutex_);
    if (mount_ != nullptr) mount_->NotifyRemoved(name, ino);
  };
  image_changes_ = std::make_unique<ImageChanges>(std::move(changes));
  control_context_.add_image = [this](const std::string& name, const nlohmann::json& keys, bool check_only) {
    return image_changes_->AddFromKeys(name, keys, check_only);
  };
  control_context_.remove_image = [this](const std::string& name) { return image_changes_->Remove(name); };
}

void MountSession::SerializeCommands() {
  control::CommandTable serialized;
  for (const std::string& name : commands_.Names()) {
    serialized.Add(name, [this, handler = *commands_.Find(name)](const nlohmann::json& args) {
      std::lock_guard lock(control_mutex_);
      return handler(args);
    });
  }
  commands_ = std::move(serialized);
}

Status MountSession::StartReloadSignal() {
  return SignalThread::Start(
      SIGHUP,
      [this] {
        std::lock_guard lock(control_mutex_);
        image_changes_->Reload();
      },
      &reload_signal_);
}

Status MountSession::StartMetrics(const config::MountConfig& cfg) {
  if (!cfg.metrics) return Status::Ok();
  return mount::MetricsWriter::Start(
      cfg.metrics->textfile, cfg.metrics->interval, [this] { return Metrics(true); }, log_, &metrics_);
}

mount::MetricsSnapshot MountSession::Metrics(bool up) const {
  mount::MetricsSnapshot snapshot;
  snapshot.up = up;
  snapshot.images = mount::CollectImageMetrics(*table_);
  if (jobs_) {
    for (const jobs::JobInfo& info : jobs_->List()) {
      snapshot.jobs.push_back({info.id, info.image, info.type, jobs::ToString(info.state), info.offset, info.len,
                               info.speed, info.rate, info.io_status != jobs::IoStatus::kOk});
    }
  }
  return snapshot;
}

Status MountSession::Run() {
  NotifyReady("serving " + std::to_string(image_count()) + " image(s) at " + mountpoint_);
  Status served = mount_->Run();
  NotifyStopping("unmounting " + mountpoint_);
  Status down = Shutdown();
  return served.ok() ? down : served;
}

Status MountSession::RequestQuit() {
  std::lock_guard lock(mount_mutex_);
  if (mount_ == nullptr) return Status::Error(EAGAIN, "the mount is not up yet; try again");
  mount_->RequestExit();
  return Status::Ok();
}

Status MountSession::Shutdown() {
  if (shut_down_) return Status::Ok();
  shut_down_ = true;
  reload_signal_.reset();  // waits for a re-reading under way
  server_.reset();
  if (metrics_) metrics_->Stop();
  jobs_.reset();  // interrupts every job (a whole-image stream resumes) and waits
  Status flushed = table_ ? table_->CloseAll() : Status::Ok();
  if (metrics_) {
    Status written = metrics_->Write(Metrics(false));
    if (!written.ok()) log_->warn("metrics file at unmount: {}", written.message());
  }
  std::lock_guard lock(mount_mutex_);
  mount_.reset();  // unmount
  return flushed.ok() ? Status::Ok() : flushed.WithContext("committing metadata at unmount");
}

void MountSession::NotifySizeChanged(const std::string& image) {
  const std::shared_ptr<mount::MountedImage> found = table_->Find(image);
  std::lock_guard lock(mount_mutex_);
  if (mount_ != nullptr && found != nullptr) mount_->InvalidateAttributes(found->inode);
}

MountSession::~MountSession() { (void)Shutdown(); }

}  // namespace corfs::cli
