#pragma once
// MirrorHook: a mirror's view of every guest write and discard
// (overlay/write_hook.h), and the copy of one range from the disk to the
// target that the job and the hook share.
//
// Modes, switched by the job:
//   kTrack     a write marks its chunks in the dirty bitmap, for the job to
//              copy again (background copy-mode, until READY);
//   kActive    a write is copied to the target before the guest is
//              answered (from READY on; from the start in write-blocking
//              copy-mode);
//   kDetached  nothing (the job ended; a request that took the hook before
//              it was removed may still call it).
// A switch waits for the writes under way in the old mode (a shared_mutex:
// each write holds it shared across its marking or copying), so once
// SetMode(kActive) returns, every write marked under kTrack has its bits
// set, and the job's next drain of the bitmap catches them; once
// SetMode(kDetached) returns, nothing writes to the target any more.
//
// Why the target stays identical (the race between the job's copy of a
// range and a guest write to it). Every copy, the job's and the hook's, is
// "read the range from the disk, write it to the target" under the range's
// RangeLock, so copies of overlapping ranges never interleave; the hook
// copies what the disk holds (it reads it back), not the request's buffer.
// Take the last guest write W to a byte: W's store into the overlay ends
// before W's hook runs. In kActive, W's hook copies after the store, and
// every copy that holds the range after it reads after the store too, so
// the last copy of the byte writes its final value, whatever the order in
// which copies got the lock. In kTrack, W's hook marks the byte dirty after
// the store; a copy whose bit take came before that mark is followed by
// another (the bit is set again), and one whose take came after reads after
// the store. Hence: marking after the change and copying under a range
// lock, not a lock per chunk held across the guest's store.
//
// A failed copy to the target in kActive does not fail the guest's write
// (the disk holds it): its range is marked dirty instead, and the error is
// kept for the job (TakeError), which applies its on-target-error policy.
//
// Threading: AfterWrite on guest request threads, several at once; Copy
// on the job's pool workers too; SetMode and TakeError on the job's thread.

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>

#include "common/status.h"
#include "jobs/range_lock.h"
#include "overlay/block_driver.h"
#include "overlay/dirty_bitmap.h"
#include "overlay/overlay.h"
#include "overlay/write_hook.h"

namespace corfs::jobs {

class MirrorHook final : public overlay::GuestWriteHook {
 public:
  enum class Mode { kTrack, kActive, kDetached };

  // Which side of a copy failed.
  enum class Side { kSource, kTarget };

  MirrorHook(overlay::Overlay& overlay, std::shared_ptr<overlay::BlockDriver> target,
             std::shared_ptr<overlay::DirtyBitmap> dirty, Mode mode)
      : overlay_(overlay), target_(std::move(target)), dirty_(std::move(dirty)), mode_(mode) {}

  Status AfterWrite(uint64_t offset, uint64_t length, std::span<const char> data) override;

  void SetMode(Mode mode);
  Mode mode() const;

  // Copies [offset, offset + length) from the disk to the target under the
  // range lock: what the disk reads (without copy-on-read), written as data,
  // or as a discard when it is all zeros. On failure *side says which side
  // failed (if given). Any thread.
  Status Copy(uint64_t offset, uint64_t length, Side* side = nullptr);

  // The first copy of a guest write that failed since the last call, with
  // its side (always the target: the disk read is of data just written).
  std::optional<Status> TakeError();

  overlay::BlockDriver& target() { return *target_; }

 private:
  overlay::Overlay& overlay_;  // outlives every call: the overlay makes them
  const std::shared_ptr<overlay::BlockDriver> target_;
  const std::shared_ptr<overlay::DirtyBitmap> dirty_;
  RangeLock ranges_;
  mutable std::shared_mutex mode_mutex_;
  Mode mode_;  // guarded by mode_mutex_
  std::mutex error_mutex_;
  std::optional<Status> error_;  // guarded by error_mutex_
};

}  // namespace corfs::jobs
