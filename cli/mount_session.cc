#include "cli/mount_session.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cli/image_loader.h"
#include "cli/service_notify.h"
#include "cli/socket_path.h"
#include "control/observability_commands.h"

namespace corfs::cli {

namespace fs = std::filesystem;

namespace {

// The stream an image starts with at mount, if any. A whole-image stream
// that was running when the last mount ended (its wish is in the overlay's
// header) resumes, with the speed and on-error policy it had, whatever
// `stream.auto` says: the user started it and did not end it. Else
// `stream.auto` starts the YAML's stream. When both apply and the YAML's is
// a whole-image stream too, the YAML's settings win (they may have been
// changed since), and the job is still reported as resumed.
Status StartStreamAtMount(const mount::MountedImage& image, jobs::JobManager& jobs) {
  const config::ImageConfig& config = image.config;
  if (config.read_only) return Status::Ok();  // nothing may be written; a wish waits
  overlay::Overlay& overlay = *image.overlay;
  const overlay::OverlayHeader header = overlay.header();
  if (header.standalone) {
    // A stream that ended between dropping the chain and clearing its wish.
    return header.stream_wish ? overlay.SetStreamWish(std::nullopt) : Status::Ok();
  }
  jobs::StreamOptions options = config.stream.JobDefaults();
  const bool auto_whole_image = config.stream.auto_start && !options.base;
  if (header.stream_wish && !auto_whole_image) {
    options.base.reset();
    // The YAML's chunk size follows its cluster size, which need not be the
    // one this overlay was made with.
    options.chunk_size = std::max(options.chunk_size, overlay.cluster_size());
    options.speed = header.stream_wish->speed;
    if (!jobs::ParseOnError(header.stream_wish->on_error, &options.on_error)) options.on_error = jobs::OnError::kReport;
  } else if (!config.stream.auto_start) {
    return Status::Ok();
  }
  options.resumed = header.stream_wish.has_value();
  jobs::StartedStream stream;
  Status started = jobs.StartStream(overlay, config.name, options, &stream);
  if (started.ok()) return started;
  return started.WithContext("image '" + config.name +
                             "': " + (options.resumed ? "resuming its stream" : "auto stream"));
}

}  // namespace

Status MountSession::Start(const config::MountConfig& cfg, const SessionOptions& options,
                           std::unique_ptr<MountSession>* out) {
  // Declared before the session: when Start fails, the session (with the
  // images it opened) goes first, then the overlays it made are removed.
  CreatedFiles created;
  std::unique_ptr<MountSession> session(new MountSession());
  session->mountpoint_ = !options.mountpoint.empty() ? options.mountpoint : cfg.mountpoint.value_or("");
  if (session->mountpoint_.empty()) {
    return Status::Invalid("no mountpoint: name one on the command line or as `mountpoint:` in " + cfg.source_file);
  }
  session->socket_path_ = cfg.control_socket.value_or(DefaultSocketPath(session->mountpoint_));
  // A busy or stale mountpoint is refused before any overlay is created.
  CORFS_RETURN_IF_ERROR(fuse::CheckMountpoint(session->mountpoint_));

  // allow_other from the command line too: it decides the images' default mode.
  config::MountConfig mounted = cfg;
  mounted.allow_other = options.allow_other || cfg.allow_other;
  std::vector<std::unique_ptr<mount::MountedImage>> images;
  CORFS_RETURN_IF_ERROR(OpenConfiguredImages(mounted, &created, &images));
  session->table_ = std::make_unique<mount::ImageTable>(std::move(images));

  unsigned workers = 0;
  for (const config::ImageConfig& image : cfg.images) workers = std::max(workers, image.stream.workers);
  session->jobs_ = std::make_unique<jobs::JobManager>(workers, control::PublishJobEvents(session->events_));

  control::ControlContext& context = session->control_context_;
  context.jobs = session->jobs_.get();
  context.events = &session->events_;
  context.images = session->table_.get();
  context.quit = [s = session.get()] { return s->RequestQuit(); };
  context.size_changed = [s = session.get()](const std::string& image) { s->NotifySizeChanged(image); };
  session->log_ = options.log ? options.log : spdlog::default_logger();
  session->commands_ = control::MakeBlockCommands(context);
  control::LogCommands(session->commands_, session->log_);
  CORFS_RETURN_IF_ERROR(control::QmpServer::Start(session->socket_path_, session->commands_, session->events_, {},
                                                  &session->server_));
  session->log_subscription_ = session->events_.Subscribe([log = session->log_](const Event& event) {
    log->info("event {} {}", event.name, event.data.dump());
  });

  for (size_t i = 0; i < session->table_->size(); ++i) {
    const mount::MountedImage& image = session->table_->at(i);
    const config::ImageConfig& config = image.config;
    uint64_t threshold = config.write_threshold.Bytes(image.overlay->size());
    if (threshold != 0) control::ArmWriteThreshold(image, threshold, session->events_);
    CORFS_RETURN_IF_ERROR(StartStreamAtMount(image, *session->jobs_));
  }

  CORFS_RETURN_IF_ERROR(session->StartMetrics(cfg));

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
  const long index = table_->IndexOf(image);
  std::lock_guard lock(mount_mutex_);
  if (mount_ != nullptr && index >= 0)
    mount_->InvalidateAttributes(mount::ImageTable::InodeOf(static_cast<size_t>(index)));
}

MountSession::~MountSession() { (void)Shutdown(); }

}  // namespace corfs::cli
