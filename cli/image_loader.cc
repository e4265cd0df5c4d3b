#include "cli/image_loader.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/size.h"
#include "overlay/image_location.h"
#include "overlay/shared_image_cache.h"

namespace corfs::cli {

namespace {

Status OpenMountedImage(const config::ImageConfig& image, bool allow_other, const MountResources& resources,
                        std::unique_ptr<mount::MountedImage>* out) {
  overlay::OpenOptions options;
  options.opener = resources.opener;
  options.protocol = overlay::RemoteProtocolOpener(resources.remote);
  options.guest_activity = resources.activity;
  options.read_only = image.read_only;
  options.copy_on_read = image.copy_on_read;
  options.verify_backing = image.verify_backing;
  if (!image.backing.empty()) options.expected_backing = image.backing;
  // Over a server each cold read waits a round trip; a sequential guest is
  // then served ahead of its reads (read_ahead.h).
  options.read_ahead = std::any_of(image.backing.begin(), image.backing.end(),
                                   [](const overlay::ImageSpec& spec) { return overlay::IsUri(spec.path); });
  // Its fills in flight at once leave one connection free for the guest's
  // own cold reads, which must never wait behind the read-ahead.
  options.read_ahead_fillers = std::max(resources.remote.connections, 2u) - 1;
  auto mounted = std::make_unique<mount::MountedImage>();
  Status opened = overlay::Overlay::Open(image.overlay_path, options, &mounted->overlay);
  if (!opened.ok()) return opened.WithContext("image '" + image.name + "'");
  // Larger than the YAML file says is a disk grown since (corfs resize).
  if (image.size != 0 && image.size > mounted->overlay->size()) {
    return Status::Invalid("image '" + image.name + "': the overlay " + image.overlay_path + " has " +
                           FormatSize(mounted->overlay->size()) + ", the YAML file says " + FormatSize(image.size));
  }
  mounted->config = image;
  mounted->LoadFileAttributes(allow_other);
  CORFS_RETURN_IF_ERROR(mounted->OpenBootProfile().WithContext("image '" + image.name + "'"));
  CORFS_RETURN_IF_ERROR(
      overlay::PersistentBitmaps::Open(*mounted->overlay, &mounted->bitmaps).WithContext("image '" + image.name + "'"));
  mounted->mtime_ns.store(WallClockNs());
  *out = std::move(mounted);
  return Status::Ok();
}

// A new overlay goes into a folder that exists, unless the YAML file says
// to make it: a mistyped folder would otherwise become a blank disk.
Status CheckOverlayFolder(const config::ImageConfig& image) {
  const std::filesystem::path folder = std::filesystem::path(image.overlay_path).parent_path();
  std::error_code ec;
  if (image.create_dirs || folder.empty() || std::filesystem::exists(folder, ec)) return Status::Ok();
  return Status::NotFound("image '" + image.name + "': the folder " + folder.string() + " of overlay " +
                          image.overlay_path + " does not exist (create it, or set `create_dirs: true`)");
}

}  // namespace

CreatedFiles::~CreatedFiles() {
  if (keep_) return;
  std::error_code ec;
  for (const std::string& path : overlays_) {
    std::filesystem::remove(path, ec);
    std::filesystem::remove(overlay::PartialDataPath(path), ec);
    std::filesystem::remove(overlay::MetadataPath(path), ec);
  }
  // Deepest first; only empty folders go (remove fails on others), so
  // nothing put there meanwhile is lost.
  for (auto it = folders_.rbegin(); it != folders_.rend(); ++it) std::filesystem::remove(*it, ec);
}

void CreatedFiles::MakeFoldersFor(const std::string& overlay_path) {
  std::vector<std::filesystem::path> missing;
  std::error_code ec;
  for (std::filesystem::path p = std::filesystem::path(overlay_path).parent_path();
       !p.empty() && !std::filesystem::exists(p, ec) && p != p.root_path(); p = p.parent_path()) {
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (!std::filesystem::create_directory(*it, ec)) break;  // Create then reports what is wrong
    folders_.push_back(it->string());
  }
}

MountResources MountResources::Make(const overlay::RemoteOptions& remote) {
  return {overlay::SharedImageCache(overlay::RemoteImageOpener(remote)).opener(),
          std::make_shared<overlay::GuestActivity>(), remote};
}

namespace {

// Whether `image`'s overlay is there to open; if not, whether it may be
// created (an error says why not).
Status MayCreate(const config::ImageConfig& image) {
  if (!image.create) {
    return Status::NotFound("image '" + image.name + "': overlay " + image.overlay_path +
                            " does not exist and `create` is false");
  }
  if (image.read_only) {
    return Status::NotFound("image '" + image.name + "': overlay " + image.overlay_path +
                            " does not exist, and a read-only image cannot be created");
  }
  if (std::filesystem::exists(image.overlay_path)) {
    // A file without its NAME.cor is not an overlay; it may be someone's
    // disk, so a mount never replaces it.
    return Status::Error(EEXIST, "image '" + image.name + "': " + image.overlay_path +
                                     " exists but is not a corfs overlay (there is no " +
                                     overlay::MetadataPath(image.overlay_path) +
                                     "); move it away, or point `overlay:` at another path");
  }
  return CheckOverlayFolder(image);
}

Status CreateOverlay(const config::ImageConfig& image, const MountResources& resources, CreatedFiles* created) {
  overlay::CreateOptions options;
  options.backing = image.backing;
  options.size = image.size;
  options.cluster_size = image.cluster_size;
  options.verify_backing = image.verify_backing;
  options.opener = resources.opener;
  options.protocol = overlay::RemoteProtocolOpener(resources.remote);
  if (image.create_dirs) created->MakeFoldersFor(image.overlay_path);
  Status made = overlay::Overlay::Create(image.overlay_path, options);
  if (!made.ok()) return made.WithContext("image '" + image.name + "'");
  created->AddOverlay(image.overlay_path);
  return Status::Ok();
}

}  // namespace

Status OpenConfiguredImages(const config::MountConfig& cfg, const MountResources& resources, CreatedFiles* created,
                            std::vector<std::unique_ptr<mount::MountedImage>>* out) {
  std::vector<std::unique_ptr<mount::MountedImage>> images(cfg.images.size());
  std::vector<size_t> to_create;
  for (size_t i = 0; i < cfg.images.size(); ++i) {
    const config::ImageConfig& image = cfg.images[i];
    if (std::filesystem::exists(overlay::MetadataPath(image.overlay_path))) {
      CORFS_RETURN_IF_ERROR(OpenMountedImage(image, cfg.allow_other, resources, &images[i]));
    } else {
      CORFS_RETURN_IF_ERROR(MayCreate(image));
      to_create.push_back(i);
    }
  }
  for (size_t i : to_create) {
    const config::ImageConfig& image = cfg.images[i];
    CORFS_RETURN_IF_ERROR(CreateOverlay(image, resources, created));
    CORFS_RETURN_IF_ERROR(OpenMountedImage(image, cfg.allow_other, resources, &images[i]));
  }
  *out = std::move(images);
  return Status::Ok();
}

Status OpenConfiguredImages(const config::MountConfig& cfg, CreatedFiles* created,
                            std::vector<std::unique_ptr<mount::MountedImage>>* out) {
  return OpenConfiguredImages(cfg, MountResources::Make(cfg.remote), created, out);
}

Status OpenOneImage(const config::ImageConfig& image, bool allow_other, const MountResources& resources,
                    CreatedFiles* created, std::unique_ptr<mount::MountedImage>* out) {
  if (!std::filesystem::exists(overlay::MetadataPath(image.overlay_path))) {
    CORFS_RETURN_IF_ERROR(MayCreate(image));
    CORFS_RETURN_IF_ERROR(CreateOverlay(image, resources, created));
  }
  return OpenMountedImage(image, allow_other, resources, out);
}

}  // namespace corfs::cli
