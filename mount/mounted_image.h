#pragma once
// MountedImage: one file of a running mount. Its name and settings are the
// YAML file's (config::ImageConfig, fixed for as long as the image is in the
// mount: a changed setting means removing the image and adding it again);
// its disk is the open overlay; its inode is given by the ImageTable when
// the image joins the mount and never changes. The attributes a user may
// change while it is mounted (owner, mode, times) and the count of open
// files are atomics, read by FUSE request threads without a lock.
//
// Images are held by shared_ptr: a FUSE request or a command that found one
// keeps it alive even if it leaves the table meanwhile.
//
// Owner and mode are the overlay header's when a chown or chmod through a
// mount set them (libvirt's dynamic ownership hands a disk to the qemu user
// that way and expects it to stay), else the YAML file's, else
// config::DefaultMode. A change is durable in the header before it shows;
// when that fails nothing changes. A read-only image is opened read-only,
// so its owner and mode change for the life of the mount only.
//
// Threading: the atomics may be read from any thread; SetOwner and SetMode
// may be called from several threads at once (one at a time per image, by
// attributes_mutex_); LoadFileAttributes comes before the image is shared.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "config/mount_config.h"
#include "mount/boot_profile_writer.h"
#include "mount/export_gate.h"
#include "mount/io_stats.h"
#include "overlay/boot_profile_cursor.h"
#include "overlay/boot_profile_recorder.h"
#include "overlay/overlay.h"
#include "overlay/persistent_bitmaps.h"

namespace corfs::mount {

struct MountedImage {
  config::ImageConfig config;
  std::unique_ptr<overlay::Overlay> overlay;
  uint64_t inode = 0;                // set by ImageTable when the image joins
  std::atomic<uint32_t> mode{0644};  // permission bits only
  std::atomic<uint64_t> owner{0};    // uid << 32 | gid: one load, never half a chown
  std::atomic<int64_t> mtime_ns{0};  // last write, or mount time
  // Files open on the image (FUSE open minus release); changed only under
  // the table's lock, so that removing an open image can be refused.
  std::atomic<uint32_t> open_files{0};
  IoStats io_stats;  // guest I/O served by the FUSE server
  // Guest changes (write, discard, truncate) pass it; closed while the image
  // is exported read-only (image-export-prep .. image-export-end), when
  // they, writable opens and a chmod adding a write bit are EROFS.
  ExportGate export_gate;
  // The image's boot profile (`boot_profile:`, overlay/boot_profile.h): a
  // recording when the file did not exist at mount, or the cursor of its
  // replay when it did; at most one is set, by OpenBootProfile, before the
  // image is shared. The writer goes first, writing what was recorded.
  std::shared_ptr<overlay::BootProfileRecorder> profile_recorder;
  std::shared_ptr<overlay::BootProfileCursor> profile_cursor;
  std::unique_ptr<BootProfileWriter> profile_writer;
  // The image's dirty bitmaps (block-dirty-bitmap-add); set before the image
  // is shared, closed by Close after the overlay (overlay/persistent_bitmaps.h).
  std::shared_ptr<overlay::PersistentBitmaps> bitmaps;

  const std::string& name() const { return config.name; }
  overlay::FileOwner Owner() const {
    const uint64_t packed = owner.load(std::memory_order_acquire);
    return {static_cast<uint32_t>(packed >> 32), static_cast<uint32_t>(packed)};
  }

  // Owner and mode at mount, as above; `allow_other` is the mount's.
  void LoadFileAttributes(bool allow_other);
  // A chown: an id not given keeps its value.
  Status SetOwner(std::optional<uint32_t> uid, std::optional<uint32_t> gid);
  // Sets up the boot profile, as above: loads it (refused when it was made
  // for another template) or starts recording one. Nothing for an image
  // without `boot_profile:` or without a backing chain.
  Status OpenBootProfile();
  // Every guest read, before it is served (FUSE request threads; no lock).
  void NoteGuestRead(uint64_t offset, uint64_t length) {
    if (profile_recorder) profile_recorder->NoteRead(offset, length);
    if (profile_cursor) profile_cursor->NoteRead(offset, length);
  }
  // A chmod: the permission bits (07777).
  Status SetMode(uint32_t mode);
  // Closes the overlay, then writes the bitmaps with their "in use" flag
  // cleared (after the last guest write). The first error.
  Status Close();

 private:
  std::mutex attributes_mutex_;  // one chown or chmod at a time: persist, then publish
};

}  // namespace corfs::mount
