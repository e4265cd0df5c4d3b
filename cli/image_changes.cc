#include "cli/image_changes.h"

#include <algorithm>
#include <map>
#include <vector>

#include "cli/image_start.h"
#include "control/block_commands.h"
#include "control/image_commands.h"

namespace corfs::cli {

namespace {

// The name a QMP image-add without one is checked under.
constexpr char kPlaceholderName[] = "NAME";

std::string Join(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

}  // namespace

spdlog::logger& ImageChanges::log() const {
  return context_.log != nullptr ? *context_.log : *spdlog::default_logger();
}

Status ImageChanges::AddFromKeys(const std::string& name, const nlohmann::json& keys, bool check_only) {
  config::ImageConfig image;
  CORFS_RETURN_IF_ERROR(config::LoadImageConfig(context_.yaml_path, check_only ? kPlaceholderName : name, keys.dump(),
                                                "image-add", context_.load_options, &image));
  if (check_only) return Status::Ok();
  return Add(image);
}

Status ImageChanges::Add(const config::ImageConfig& image) {
  std::vector<config::ImageConfig> live;
  for (const auto& mounted : context_.table->Snapshot()) live.push_back(mounted->config);
  CORFS_RETURN_IF_ERROR(config::CheckJoiningImage(image, live, context_.mountpoint));
  // Overlays made here are removed again if the image cannot join.
  CreatedFiles created;
  std::unique_ptr<mount::MountedImage> opened;
  CORFS_RETURN_IF_ERROR(OpenOneImage(image, context_.allow_other, context_.resources, &created, &opened));
  std::shared_ptr<mount::MountedImage> mounted = std::move(opened);
  Status joined = context_.table->Add(mounted);
  if (!joined.ok()) {
    (void)mounted->Close();
    return joined;
  }
  created.Keep();
  if (context_.notify_added) context_.notify_added(image.name);
  control::PublishImageAdded(*context_.events, image.name);
  Status started = StartImageJobs(*mounted, *context_.jobs, *context_.events);
  if (!started.ok()) return started.WithContext("image '" + image.name + "' was added, but");
  return Status::Ok();
}

std::string ImageChanges::JobOn(const std::string& name) {
  for (const jobs::JobInfo& job : context_.jobs->List()) {
    if (job.image == name ||
        std::find(job.other_images.begin(), job.other_images.end(), name) != job.other_images.end()) {
      return "job '" + job.id + "' (" + jobs::ToString(job.state) +
             ") works on it; cancel the job or wait for it to end";
    }
  }
  return "";
}

Status ImageChanges::Remove(const std::string& name) {
  if (context_.table->Find(name) == nullptr) return Status::NotFound("image '" + name + "' is not in the mount");
  if (std::string job = JobOn(name); !job.empty()) return Status::Error(EBUSY, "image '" + name + "' is busy: " + job);
  std::shared_ptr<mount::MountedImage> removed;
  CORFS_RETURN_IF_ERROR(context_.table->Remove(name, &removed));
  if (context_.notify_removed) context_.notify_removed(name, removed->inode);
  control::PublishImageRemoved(*context_.events, name);
  Status closed = mount::CloseRemoved(std::move(removed));
  if (!closed.ok()) return closed.WithContext("image '" + name + "' left the mount, but committing its overlay failed");
  return Status::Ok();
}

void ImageChanges::ReportTopChanges(const config::MountConfig& cfg) {
  const config::MountConfig& top = context_.top;
  std::vector<std::string> changed;
  if (cfg.mountpoint != top.mountpoint) changed.emplace_back("mountpoint");
  if (cfg.control_socket != top.control_socket) changed.emplace_back("control_socket");
  if (cfg.allow_other != top.allow_other) changed.emplace_back("allow_other");
  const auto metrics_key = [](const config::MountConfig& c) {
    return c.metrics ? c.metrics->textfile + "@" + std::to_string(c.metrics->interval.count()) : std::string();
  };
  if (metrics_key(cfg) != metrics_key(top)) changed.emplace_back("metrics");
  if (changed.empty()) return;
  log().info("{}", "SIGHUP: " + Join(changed) + " changed in " + context_.yaml_path +
                       "; that takes effect at the next mount");
}

void ImageChanges::Reload() {
  const std::string& file = context_.yaml_path;
  config::MountConfig cfg;
  Status loaded = config::LoadMountConfig(file, &cfg, context_.load_options);
  control::ReloadReport report;
  if (!loaded.ok()) {
    log().warn("{}", "SIGHUP: " + file + " does not load; nothing changed:\n" + loaded.message());
    report.error = loaded.message();
    control::PublishReloaded(*context_.events, report);
    return;
  }
  ReportTopChanges(cfg);
  std::map<std::string, const config::ImageConfig*> listed;
  for (const config::ImageConfig& image : cfg.images) listed[image.name] = &image;
  // The settings of the images mounted now. Only copies: a removed image
  // is closed once nothing holds it, this function included.
  std::map<std::string, config::ImageConfig> mounted;
  for (const auto& image : context_.table->Snapshot()) mounted[image->name()] = image->config;
  // Removals first, so that an overlay freed by one can go to an image added.
  for (const auto& [name, config] : mounted) {
    if (listed.contains(name)) continue;
    Status removed = Remove(name);
    if (removed.ok()) {
      report.removed.push_back(name);
      log().info("{}", "SIGHUP: image '" + name + "' removed (no longer in " + file + ")");
    } else {
      report.kept.emplace_back(name, removed.message());
      log().warn("{}", "SIGHUP: image '" + name + "' is no longer in " + file + " but stays: " + removed.message() +
                           "; send SIGHUP again once it is idle");
    }
  }
  for (const config::ImageConfig& image : cfg.images) {
    auto live = mounted.find(image.name);
    if (live == mounted.end()) {
      Status added = Add(image);
      if (added.ok()) {
        report.added.push_back(image.name);
        log().info("{}", "SIGHUP: image '" + image.name + "' added");
      } else {
        report.refused.emplace_back(image.name, added.message());
        log().warn("{}", "SIGHUP: image '" + image.name + "' not added: " + added.message());
      }
      continue;
    }
    const std::vector<std::string> changed = config::ChangedKeys(live->second, image);
    if (changed.empty()) continue;
    const std::string why =
        "changed " + Join(changed) + ": a mounted image keeps its settings (remove it and add it again to change them)";
    report.refused.emplace_back(image.name, why);
    log().warn("{}", "SIGHUP: image '" + image.name + "' not changed: " + why);
  }
  log().info("{}", "SIGHUP: re-read " + file + ": " + std::to_string(report.added.size()) + " added, " +
                       std::to_string(report.removed.size()) + " removed, " + std::to_string(report.kept.size()) +
                       " kept busy, " + std::to_string(report.refused.size()) + " refused");
  control::PublishReloaded(*context_.events, report);
}

}  // namespace corfs::cli
