#pragma once
// MountConfig: what a YAML file describes, validated and typed. A mount is a
// folder (the mountpoint) in which every image is a file; each image is an
// overlay over a chain of backing images, with its own settings.
//
// config/config_loader.h builds it; everything in it has been checked (types,
// ranges, chains, that backing files exist), and every path is absolute and
// lexically normal. The schema is documented in docs/config.md.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jobs/stream_options.h"
#include "overlay/overlay.h"

namespace corfs::config {

// The background stream job of an image (`stream:`).
struct StreamPolicy {
  bool auto_start = false;                        // start streaming at mount time (`auto:`)
  uint64_t speed = 0;                             // bytes per second, 0 = unlimited
  unsigned workers = 0;                           // 0 = one per core
  uint64_t chunk_size = jobs::kDefaultChunkSize;  // at least the cluster size
  std::optional<std::string> base;                // stream down to this image; it is the
                                                  // `path` of one entry of the chain
  jobs::OnError on_error = jobs::OnError::kReport;

  // What a stream job of this image is given when nobody says otherwise (an
  // auto stream; the defaults under a block-stream's arguments).
  jobs::StreamOptions JobDefaults() const {
    jobs::StreamOptions options;
    options.speed = speed;
    options.chunk_size = chunk_size;
    options.on_error = on_error;
    options.base = base;
    return options;
  }
};

// A one-shot alarm when the overlay holds more than a given amount
// (`write_threshold:`), either in bytes or as a share of the disk.
struct WriteThreshold {
  enum class Kind { kNone, kBytes, kPercent };

  Kind kind = Kind::kNone;
  uint64_t bytes = 0;                // kBytes
  uint32_t percent_thousandths = 0;  // kPercent, in thousandths of a percent: 80% = 80000, 12.5% = 12500

  static constexpr uint32_t kFullDisk = 100'000;  // 100%

  // The threshold in bytes for a disk of `disk_size` bytes; 0 = off.
  uint64_t Bytes(uint64_t disk_size) const {
    switch (kind) {
      case Kind::kNone: return 0;
      case Kind::kBytes: return bytes;
      case Kind::kPercent:
        // disk_size * percent_thousandths / 100000 without overflow.
        return disk_size / kFullDisk * percent_thousandths + disk_size % kFullDisk * percent_thousandths / kFullDisk;
    }
    return 0;
  }
  bool operator==(const WriteThreshold&) const = default;
};

// One file of the mount.
struct ImageConfig {
  std::string name;                         // the file name in the mount
  std::string overlay_path;                 // the overlay NAME (its files: overlay/overlay_files.h)
  std::vector<overlay::ImageSpec> backing;  // top first; empty: a blank disk
  uint64_t size = 0;                        // 0: the size of the top backing image
  uint64_t cluster_size = overlay::kDefaultClusterSize;
  bool copy_on_read = true;  // false: a thin clone, reads leave data in the chain
  bool read_only = false;
  bool create = true;  // create the overlay when it does not exist
  // Also create the overlay's missing folders; off, a missing folder (a
  // typo, most likely) refuses the mount instead of making a blank disk.
  bool create_dirs = false;
  // kFull: a created overlay records its backing images' content hashes, and
  // every open hashes them again and refuses on a mismatch.
  overlay::VerifyBacking verify_backing = overlay::VerifyBacking::kSampled;
  // Permission bits of the file; unset: DefaultMode. A chmod through the
  // mount overrides it (kept in the overlay's header), as a chown does uid
  // and gid.
  std::optional<uint32_t> mode;
  uint32_t uid = 0;  // owner; default: the user that loads the file
  uint32_t gid = 0;
  WriteThreshold write_threshold;
  StreamPolicy stream;
  // A boot profile (overlay/boot_profile.h), absolute: replayed by the
  // image's stream, which then starts at mount, when the file exists;
  // recorded otherwise, and written once the guest read nothing new for
  // `boot_profile_idle` or the image closes.
  std::optional<std::string> boot_profile;
  std::chrono::milliseconds boot_profile_idle{10000};
};

// The keys whose settings differ between two readings of one image, as the
// YAML file spells them ("overlay", "stream.speed", ...), in schema order.
std::vector<std::string> ChangedKeys(const ImageConfig& a, const ImageConfig& b);
// The mode of an image whose YAML file gives none: 0644, or 0600 when
// other users may reach the mount (allow_other), so that no disk is
// readable by everyone; a chown hands it to the user who runs the VM.
inline uint32_t DefaultMode(const ImageConfig& image, bool allow_other) {
  return image.mode.value_or(allow_other ? 0600 : 0644);
}
// Metrics for Prometheus (`metrics:`): a text file in the format of
// node_exporter's textfile collector, rewritten every `interval` and at
// unmount.
struct MetricsConfig {
  std::string textfile;  // absolute; ends in ".prom"
  std::chrono::milliseconds interval{5000};
};

struct MountConfig {
  std::string source_file;                    // the YAML file (absolute) or the name given to ParseMountConfig
  std::optional<std::string> mountpoint;      // may be given on the command line instead
  std::optional<std::string> control_socket;  // unset: the user of the config puts it beside the
                                              // mountpoint, "<mountpoint>.sock"
  bool allow_other = false;
  std::optional<MetricsConfig> metrics;  // unset: no metrics file
  std::vector<ImageConfig> images;       // in the order of the file
  // How the servers of backing images are reached (`remote:`), with the
  // credentials split off the URIs of the file (every name in `images` is
  // without them) and the credentials file (`remote.credentials`, else
  // CORFS_CREDENTIALS).
  overlay::RemoteOptions remote;
};

}  // namespace corfs::config
