#pragma once
// Turning the images of a mount description into open overlays.

#include <memory>
#include <string>
#include <vector>

#include "config/mount_config.h"
#include "mount/mounted_image.h"
#include "overlay/guest_activity.h"
#include "overlay/image_opener.h"

namespace corfs::cli {

// What a mount made on disk: new overlays and the folders made for them.
// Unless kept, they are removed again when the object goes, so a mount
// refused at any step (a later image's chain loops, a damaged template, the
// control socket in use, the FUSE mount failing) leaves the disk as it found
// it, not half set up. Whoever holds the open images must close them first.
class CreatedFiles {
 public:
  CreatedFiles() = default;
  CreatedFiles(const CreatedFiles&) = delete;
  CreatedFiles& operator=(const CreatedFiles&) = delete;
  ~CreatedFiles();

  // Makes the missing folders above `overlay_path`, noting each.
  void MakeFoldersFor(const std::string& overlay_path);
  void AddOverlay(const std::string& path) { overlays_.push_back(path); }
  // The mount is up: what was made stays.
  void Keep() { keep_ = true; }

 private:
  std::vector<std::string> overlays_;
  std::vector<std::string> folders_;  // outermost first
  bool keep_ = false;
};

// What the images of one mount share, however late they join it: one driver
// per template (overlay::SharedImageCache: one open file, one cache) and one
// count of guest requests in flight (background jobs give way to guest I/O
// on any image of the mount). Copies share the same state. Servers are
// reached with the mount's RemoteOptions (`remote:` of the YAML file).
struct MountResources {
  overlay::ImageOpener opener;
  std::shared_ptr<overlay::GuestActivity> activity;
  overlay::RemoteOptions remote;

  static MountResources Make(const overlay::RemoteOptions& remote = {});
};

// Opens every image of `cfg`, creating missing overlays where `create` is
// on, and noting them in `created`. Existing overlays are opened (and their
// chains verified) before any new one is made, so a mismatch leaves the disk
// untouched.
Status OpenConfiguredImages(const config::MountConfig& cfg, const MountResources& resources, CreatedFiles* created,
                            std::vector<std::unique_ptr<mount::MountedImage>>* out);
// The same with resources of their own.
Status OpenConfiguredImages(const config::MountConfig& cfg, CreatedFiles* created,
                            std::vector<std::unique_ptr<mount::MountedImage>>* out);

// Opens one image joining a running mount, creating its overlay as above;
// `allow_other` is the mount's (the default mode depends on it).
Status OpenOneImage(const config::ImageConfig& image, bool allow_other, const MountResources& resources,
                    CreatedFiles* created, std::unique_ptr<mount::MountedImage>* out);

}  // namespace corfs::cli
