#pragma once
// ImageChanges: images joining and leaving a running mount, by QMP
// image-add and image-remove and by SIGHUP's re-reading of the YAML file.
//
// Adding reads the image as the YAML file would (config::LoadImageConfig),
// checks it against the images mounted, opens (or creates) its overlay,
// gives it the next inode, tells the kernel, and starts what an image
// starts with at mount (cli/image_start.h: write threshold, auto or resumed
// stream); its I/O statistics and metrics come with it. Removing is refused while a file is open on the
// image or a job works on it; otherwise the image leaves the table, the
// kernel is told, and its overlay is committed and closed here, on the
// calling thread, once requests that found it before are done.
//
// Re-reading (SIGHUP) loads the whole file; a file that does not load
// changes nothing. Images the file no longer lists are removed if idle
// (else they stay, and the log says why); new ones are added; a listed
// image whose settings differ from the mounted one's keeps running as it
// is, with one message for it. Each outcome goes to the log and to the
// CORFS_CONFIG_RELOADED event.
//
// Threading: one call at a time, and none while a QMP command runs (the
// session runs both under one mutex), so no job can start on an image
// while it leaves.

#include <functional>
#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "cli/image_loader.h"
#include "common/event_bus.h"
#include "config/config_loader.h"
#include "jobs/job_manager.h"
#include "mount/image_table.h"
#include "nlohmann/json.hpp"

namespace corfs::cli {

struct ImageChangesContext {
  std::string yaml_path;  // the mount's YAML file (absolute)
  // The file's top-level keys as the mount read them (read at mount time
  // only; a re-read that changes them says so).
  config::MountConfig top;
  std::string mountpoint;    // no overlay or backing file may lie inside
  bool allow_other = false;  // the mount's: an image's default mode follows it
  config::LoadOptions load_options;
  MountResources resources;
  mount::ImageTable* table = nullptr;
  jobs::JobManager* jobs = nullptr;
  EventBus* events = nullptr;
  std::shared_ptr<spdlog::logger> log;  // the daemon's (common/log.h); null: spdlog's default
  // Tell the kernel (fuse::FuseMount::NotifyAdded / NotifyRemoved).
  std::function<void(const std::string& name)> notify_added;
  std::function<void(const std::string& name, uint64_t ino)> notify_removed;
};

class ImageChanges {
 public:
  explicit ImageChanges(ImageChangesContext context) : context_(std::move(context)) {}

  // QMP image-add: `keys` as the YAML file spells them. With `check_only`,
  // reads them only, to report what is wrong.
  Status AddFromKeys(const std::string& name, const nlohmann::json& keys, bool check_only);
  Status Add(const config::ImageConfig& image);
  Status Remove(const std::string& name);
  // SIGHUP.
  void Reload();

 private:
  // Logs the top-level keys of `cfg` that differ from the mount's.
  void ReportTopChanges(const config::MountConfig& cfg);
  spdlog::logger& log() const;
  // Why `name` cannot leave now ("" if it can): a job works on it.
  std::string JobOn(const std::string& name);

  ImageChangesContext context_;
};

}  // namespace corfs::cli
