#pragma once
// PersistentBitmaps: the named dirty bitmaps of one overlay, as QEMU's
// block-dirty-bitmap-add makes them: each marks, at its granularity, every
// part of the disk a guest write or discard touched since it was added or
// last cleared (or since the last backup that took it). An incremental
// backup copies only what one marks.
//
// Recording: while the store holds a bitmap it is a write hook of the
// overlay (write_hook.h), and BeforeWrite marks every bitmap. While none is
// held, no hook is in (so block_resize works; it is refused while a hook
// is in).
//
// On disk, beside the overlay: NAME.bitmaps (BitmapsPath), written whole
// and atomically (ReplaceFileAtomically) with a magic, a version and a
// checksum; its layout is in docs/design.md ("The backup driver"). Only
// `persistent` bitmaps go there; others live as long as the mount.
//
// The crash rule, as QEMU's qcow2 IN_USE bit: when a writable overlay is
// opened, the file is rewritten with its "in use" flag set, durably, before
// any guest write can be recorded; Close writes the bits and clears the
// flag. A file found "in use" at open means the last mount did not close:
// writes it saw may be missing from the bits, so every bitmap in it is
// marked inconsistent. An inconsistent bitmap goes on recording, but an
// incremental backup with it is refused; a full backup with it (which
// takes its bits and leaves it holding exactly the writes since) or a
// clear makes it consistent again.
//
// Threading: every method may be called from several threads at once;
// BeforeWrite takes a shared lock, the rest an exclusive one (never held
// while calling into the overlay: AddWriteHook waits for guest writes,
// which would wait for the lock). Take must be called at a moment when no
// guest write is under way (Overlay::AddWriteHook's at_quiet_moment).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/dirty_bitmap.h"
#include "overlay/write_hook.h"

namespace corfs::overlay {

class Overlay;

// NAME.bitmaps for the overlay NAME.
std::string BitmapsPath(const std::string& overlay_path);

// What query-images tells of a bitmap.
struct BitmapInfo {
  std::string name;
  uint64_t granularity = 0;
  uint64_t count = 0;  // bytes marked
  bool persistent = false;
  bool inconsistent = false;
  bool busy = false;        // taken by a backup
  std::string last_target;  // where the last backup with it went ("" none)
};

class PersistentBitmaps final : public GuestWriteHook, public std::enable_shared_from_this<PersistentBitmaps> {
 public:
  static constexpr uint64_t kMinGranularity = 512;
  static constexpr uint64_t kMaxGranularity = uint64_t{1} << 31;

  // Loads the bitmaps of `overlay` (none when there is no file) and, when
  // the overlay is writable, marks the file in use and installs the hook
  // if there are any. A damaged file is refused with a clear message and
  // left as it is.
  static Status Open(Overlay& overlay, std::shared_ptr<PersistentBitmaps>* out);
  // Closes (see Close) if nobody did: a store that goes without a crash saw
  // every write it was to record. It goes after its overlay's last write
  // (the overlay holds it while it is a hook), and uses the overlay no more.
  ~PersistentBitmaps() override;

  // block-dirty-bitmap-add: a new, empty bitmap; `granularity` 0 takes the
  // overlay's cluster size.
  Status Add(const std::string& name, uint64_t granularity, bool persistent);
  // block-dirty-bitmap-remove; refused while a backup holds it.
  Status Remove(const std::string& name);
  // block-dirty-bitmap-clear: no bit set, consistent again.
  Status Clear(const std::string& name);
  std::vector<BitmapInfo> List() const;
  // Whether `name` exists and, when `need_consistent`, may serve an
  // incremental backup: the error says why not.
  Status Check(const std::string& name, bool need_consistent) const;

  // For a backup, at a moment when no guest write is under way: copies the
  // bits into *taken and clears the bitmap, which from then on marks the
  // writes after the backup's point in time (QEMU's successor). The bitmap
  // is busy until Release.
  Status Take(const std::string& name, bool need_consistent, std::unique_ptr<DirtyBitmap>* taken);
  // The backup ended. Succeeded: the bitmap is consistent (it holds exactly
  // the writes since Take) and remembers `target`. Else the bits taken are
  // merged back, so none is lost.
  void Release(const std::string& name, const DirtyBitmap& taken, bool succeeded, const std::string& target);

  // Writes the bits with the flag cleared; the overlay is closing (no guest
  // write comes after). Later calls do nothing.
  Status Close();

  Status BeforeWrite(uint64_t offset, uint64_t length) override;

 private:
  struct Entry {
    std::unique_ptr<DirtyBitmap> bits;
    bool persistent = true;
    bool inconsistent = false;
    bool busy = false;
    std::string last_target;
  };

  PersistentBitmaps(Overlay& overlay, std::string path, uint64_t disk_size, bool read_only);
  // The file's bytes for the bitmaps now, "in use" or not. mutex_ held.
  std::string EncodeLocked(bool in_use) const;
  static Status Decode(const std::string& bytes, const std::string& path, uint64_t disk_size, bool* in_use,
                       std::map<std::string, Entry>* out);
  // Writes the file (or removes it when no persistent bitmap is left).
  // mutex_ held.
  Status SaveLocked(bool in_use);
  // The hook is in while a bitmap is held; called without mutex_.
  void UpdateHook();

  Overlay& overlay_;
  const std::string path_;
  const uint64_t disk_size_;
  const bool read_only_;

  mutable std::shared_mutex mutex_;
  std::map<std::string, Entry> bitmaps_;
  bool closed_ = false;
  std::mutex hook_mutex_;  // one hook change at a time; taken before mutex_, never inside it
  bool hook_installed_ = false;
};

}  // namespace corfs::overlay
