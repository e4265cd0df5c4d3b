#include "mount/mounted_image.h"

namespace corfs::mount {

namespace {
uint64_t Pack(overlay::FileOwner owner) { return (uint64_t{owner.uid} << 32) | owner.gid; }
}  // namespace

void MountedImage::LoadFileAttributes(bool allow_other) {
  const overlay::OverlayHeader header = overlay->header();
  owner.store(Pack(header.owner.value_or(overlay::FileOwner{config.uid, config.gid})));
  mode.store(header.mode.value_or(config::DefaultMode(config, allow_other)));
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

}  // namespace corfs::mount
