#pragma once
// BackupDriver: the driver of a backup job (jobs/job_driver.h), in the
// manner of QEMU's block/backup.c with its copy-before-write filter: a copy
// of the disk as it was when the job started, while the guest keeps
// writing.
//
// The point in time: Make (so before drive-backup answers) installs a write hook (overlay/write_hook.h) with
// Overlay::AddWriteHook, whose quiet moment (no guest write under way, see
// overlay/write_gate.h) is the backup's start; there it also takes the
// bitmap, if any (PersistentBitmaps::Take), and fixes which chunks are to
// be copied ("pending"):
//   full         every chunk;
//   top          the chunks the overlay holds at the start; the target (a
//                raw file) gets those, elsewhere it reads as it did (zeros
//                when new): it is what the overlay adds to its template;
//   incremental  the chunks the bitmap marked since the last backup; the
//                target is a corfs overlay whose backing image is the
//                previous backup (made by the job over the bitmap's last
//                target, or given with mode existing), so it reads as the
//                whole disk at the start: chunks now all zeros are
//                discarded in it (recorded as zeros, not as the backing's).
//
// Copy-before-write: a guest write (or discard) to a pending chunk first
// copies the chunk's old data to the target, in its BeforeWrite, and only
// then changes it. The job copies the other pending chunks in disk order.
// A chunk is copied exactly once, with its content at the start, because:
//   - whoever copies a chunk (the job or a guest write) first claims it
//     under the state's mutex, and only while it is pending and unclaimed;
//     others wait for the claim (a guest write) or pass it (the job, which
//     comes back to it if the claim ends with it still pending, e.g. after
//     a failed copy);
//   - every change to the disk after the start passes BeforeWrite (the
//     quiet moment: a write that took the hooks before it had finished),
//     and BeforeWrite returns only once each chunk it touches is no longer
//     pending; a write to a claimed chunk waits there, so nothing changes a
//     chunk between its claim and the end of its copy;
//   - so the read of a claimed, pending chunk sees its content at the
//     start. It reads without copy-on-read (Overlay::ReadWithoutFill):
//     a fill from the chain meanwhile changes where the bytes are, not
//     what they are. Nothing else changes the disk: Resize is refused
//     while a hook is in, and a mount runs one job per image.
// A guest write never waits for the target other than through a chunk it
// touches that is still pending (at most one copy of it).
//
// A failed copy-before-write (the target failing) fails the backup, not
// the guest's write (QEMU's on-cbw-error=break-snapshot): the write goes
// on, the backup ends with the error, and nothing is copied any more.
//
// The bitmap: taken at the start (its bits move to the job and it marks
// from then on the writes since the backup's point in time: QEMU's
// successor); on success it is consistent and remembers the target (the
// next incremental's backing); on failure or cancel the bits taken are
// merged back, so the next incremental still copies them.

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "jobs/job_driver.h"
#include "overlay/dirty_bitmap.h"
#include "overlay/overlay.h"
#include "overlay/persistent_bitmaps.h"

namespace corfs::jobs {

enum class BackupSync { kFull, kTop, kIncremental };
bool ParseBackupSync(const std::string& text, BackupSync* out);

struct BackupOptions {
  std::string target;  // a file, or an NBD URI (through overlay::OpenTarget)
  BackupSync sync = BackupSync::kFull;
  std::string bitmap;     // "": none (required for incremental)
  bool existing = false;  // QMP mode "existing": the target is there already
};

// Where a backup writes (backup_driver.cc: a raw target, or the overlay of
// an incremental).
class BackupTarget;

class BackupDriver final : public JobDriver {
 public:
  // Checks the options, opens (or makes) the target and takes the point in
  // time, before any job exists; a refusal changes nothing on disk.
  // `bitmaps` may be null (an image without bitmaps). Whether the target is
  // a file the mount uses is the caller's to check (control/job_target.h).
  // A driver that never runs (StartJob refused it) undoes all that when it
  // goes.
  static Status Make(overlay::Overlay& overlay, std::shared_ptr<overlay::PersistentBitmaps> bitmaps,
                     const BackupOptions& options, std::unique_ptr<BackupDriver>* out);
  ~BackupDriver() override;

  std::string_view type() const override { return "backup"; }
  uint64_t initial_length() const override { return disk_size_; }
  Status Run(JobContext& job) override;
  void Abort(JobContext& job) override;
  Status Prepare(JobContext& job) override;
  void Clean(JobContext& job) override;

  // The copy state, shared with the write hook (backup_driver.cc).
  struct State;

 private:
  BackupDriver(overlay::Overlay& overlay, std::shared_ptr<overlay::PersistentBitmaps> bitmaps,
               const BackupOptions& options, std::unique_ptr<BackupTarget> target, uint64_t chunk);
  // See the header comment; Make calls it.
  Status TakePointInTime();
  // Clean's work, once: by Clean, or by the destructor of a driver that
  // never ran.
  void CleanUp();

  overlay::Overlay& overlay_;
  const std::shared_ptr<overlay::PersistentBitmaps> bitmaps_;
  const BackupOptions options_;
  const uint64_t disk_size_;
  std::shared_ptr<State> state_;
  std::shared_ptr<overlay::GuestWriteHook> hook_;  // installed by Run, removed by Clean
  std::unique_ptr<overlay::DirtyBitmap> taken_;    // the bitmap's bits, while the job holds it
  bool succeeded_ = false;
  bool cleaned_ = false;
};

}  // namespace corfs::jobs
