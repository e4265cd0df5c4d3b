#pragma once
// MountedImage: one file of a running mount. Its name and settings are the
// YAML file's (config::ImageConfig, fixed for as long as the image is in the
// mount: a changed setting means removing the image and adding it again);
// its disk is the open overlay; its inode is given by the ImageTable when
// the image joins the mount and never changes. The few attributes a user
// may change while it is mounted (mode, times) and the count of open files
// are atomics, read by FUSE request threads without a lock.
//
// Images are held by shared_ptr: a FUSE request or a command that found one
// keeps it alive even if it leaves the table meanwhile.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/mount_config.h"
#include "overlay/overlay.h"

namespace corfs::mount {

struct MountedImage {
  config::ImageConfig config;
  std::unique_ptr<overlay::Overlay> overlay;
  uint64_t inode = 0;                // set by ImageTable when the image joins
  std::atomic<uint32_t> mode{0644};  // permission bits only
  std::atomic<int64_t> mtime_ns{0};  // last write, or mount time
  // Files open on the image (FUSE open minus release); changed only under
  // the table's lock, so that removing an open image can be refused.
  std::atomic<uint32_t> open_files{0};

  const std::string& name() const { return config.name; }
};

}  // namespace corfs::mount
