#pragma once
// GuestWriteHook: what a job that must see every guest write before the
// guest hears of it plugs into an overlay, as QEMU's block filters and
// dirty bitmaps do: a mirror (dirty tracking; in write-blocking mode, the
// write copied to the target), a backup (copy-before-write of the old
// data), an active commit (dirty tracking).
//
// Threading contract:
//   - BeforeWrite and AfterWrite are called on guest request threads,
//     several at once, for overlapping ranges too: a hook that needs an
//     order per cluster keeps it itself.
//   - A request calls the hooks installed when it started (a snapshot), so
//     a call that started before Overlay::RemoveWriteHook may still run
//     after it returns; the overlay holds the hook by shared_ptr, so it
//     stays alive until then. A hook therefore holds what it uses (by
//     shared_ptr) rather than pointing into its job.
//   - A hook must not call back into the overlay's writes (it may read:
//     Overlay::Read is safe from inside a hook, and takes claims of its
//     own).

#include <cstdint>
#include <span>

#include "common/status.h"

namespace corfs::overlay {

class GuestWriteHook {
 public:
  virtual ~GuestWriteHook() = default;

  // Before [offset, offset + length) changes (a write, or a discard): the
  // disk still reads as before. An error fails the guest request with
  // nothing changed.
  virtual Status BeforeWrite(uint64_t /*offset*/, uint64_t /*length*/) { return Status::Ok(); }
  // After the overlay holds the change, before the guest is answered.
  // `data` is what was written, or empty for a discard (the range now reads
  // as zeros). An error fails the guest request (EIO), though the overlay
  // holds the change: as with a disk whose write failed, the guest may not
  // assume either content.
  virtual Status AfterWrite(uint64_t /*offset*/, uint64_t /*length*/, std::span<const char> /*data*/) {
    return Status::Ok();
  }
  // Instead of AfterWrite, when the request failed after this hook's
  // BeforeWrite succeeded (the change may be partly there): a hook that
  // counts requests between the two (an active commit holding writes back
  // at its end) hears of every one that it let through.
  virtual void WriteFailed(uint64_t /*offset*/, uint64_t /*length*/) {}
};

}  // namespace corfs::overlay
