#include "mount/mounted_image.h"

#include <cerrno>

namespace corfs::mount {

namespace {
uint64_t Pack(overlay::FileOwner owner) { return (uint64_t{owner.uid} << 32) | owner.gid; }
}  // namespace

void MountedImage::LoadFileAttributes(bool allow_other) {
  const overlay::OverlayHeader header = overlay->header();
  owner.store(Pack(header.owner.value_or(overlay::FileOwner{config.uid, config.gid})));
  mode.store(header.mode.value_or(config::DefaultMode(config, allow_other)));
}

Status MountedImage::OpenBootProfile() {
  if (!config.boot_profile) return Status::Ok();
  const std::string& path = *config.boot_profile;
  const overlay::OverlayHeader header = overlay->header();
  if (header.standalone || header.chain.empty()) return Status::Ok();  // nothing comes from a template
  const std::vector<overlay::ProfileLayer> layers = overlay::TemplateOf(header);
  overlay::BootProfile profile;
  Status loaded = overlay::LoadBootProfile(path, &profile);
  if (loaded.ok()) {
    CORFS_RETURN_IF_ERROR(overlay::CheckTemplate(profile, layers, path));
    profile_cursor = std::make_shared<overlay::BootProfileCursor>(std::move(profile));
    return Status::Ok();
  }
  if (loaded.code() != ENOENT) return loaded;
  profile_recorder = std::make_shared<overlay::BootProfileRecorder>(overlay->size(), overlay->cluster_size(), layers);
  profile_writer = std::make_unique<BootProfileWriter>(path, config.boot_profile_idle, profile_recorder, config.name);
  return Status::Ok();
}

Status MountedImage::SetOwner(std::optional<uint32_t> uid, std::optional<uint32_t> gid) {
  std::lock_guard lock(attributes_mutex_);
  overlay::FileOwner next = Owner();
  if (uid) next.uid = *uid;
  if (gid) next.gid = *gid;
  if (!overlay->read_only()) CORFS_RETURN_IF_ERROR(overlay->SetOwner(next));
  owner.store(Pack(next), std::memory_order_release);
  return Status::Ok();
}

Status MountedImage::SetMode(uint32_t bits) {
  std::lock_guard lock(attributes_mutex_);
  bits &= 07777;
  if (!overlay->read_only()) CORFS_RETURN_IF_ERROR(overlay->SetMode(bits));
  mode.store(bits, std::memory_order_release);
  return Status::Ok();
}

Status MountedImage::Close() {
  Status closed = overlay->Close();
  if (bitmaps) {
    Status saved = bitmaps->Close();
    if (closed.ok()) closed = saved;
  }
  return closed;
}

}  // namespace corfs::mount
