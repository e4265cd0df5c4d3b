#pragma once
// Turning the images of a mount description into open overlays.

#include <memory>
#include <vector>

#include "config/mount_config.h"
#include "fuse/image_table.h"

namespace corfs::cli {

// Opens every image of `cfg`, creating missing overlays where `create` is
// on. Existing overlays are opened (and their chains verified) before any
// new one is made, so a mismatch leaves the disk untouched; when making or
// opening a new one fails, the overlays (and folders) this call made are
// removed again.
Status OpenConfiguredImages(const config::MountConfig& cfg, std::vector<std::unique_ptr<fuse::MountedImage>>* out);

}  // namespace corfs::cli
