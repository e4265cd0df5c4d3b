#pragma once
// MountedImage: one file of a running mount. Its name and settings are the
// YAML file's (config::ImageConfig, fixed for the life of the mount); its
// disk is the open overlay; the few attributes a user may change while it
// is mounted (mode, times) are atomics, read by FUSE request threads
// without a lock.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "config/mount_config.h"
#include "mount/io_stats.h"
#include "overlay/overlay.h"

namespace corfs::mount {

struct MountedImage {
  config::ImageConfig config;
  std::unique_ptr<overlay::Overlay> overlay;
  std::atomic<uint32_t> mode{0644};  // permission bits only
  std::atomic<int64_t> mtime_ns{0};  // last write, or mount time
  IoStats io_stats;                  // guest I/O served by the FUSE server

  const std::string& name() const { return config.name; }
};

}  // namespace corfs::mount
