#pragma once
// MirrorDriver: the driver of a mirror job (jobs/job_driver.h), in the
// manner of QEMU's block/mirror.c: it copies the disk as the guest sees it
// into a target (overlay/target_image.h: a raw file or an NBD export) while
// the guest goes on writing, until the target is identical and stays so.
//
// Phases:
//   bulk   the dirty bitmap (overlay/dirty_bitmap.h) starts with what is to
//          copy: sync "full" the whole disk (only what is not zeros when the
//          target is a new, zeroed file), sync "top" the clusters the
//          overlay holds (the target reads as the template already). The
//          job copies the marked runs in disk order, a batch at a time, on
//          the shared worker pool, reading with Overlay::ReadWithoutFill, so
//          the mirror never fills the overlay;
//   dirty  guest writes and discards since the start are marked by the
//          hook (jobs/mirror_hook.h), and the job goes round the disk again
//          copying them, until what is marked is at most kReadyBound;
//   ready  the hook switches to copying every guest write to the target
//          before the guest is answered, the job copies what is still
//          marked, and with nothing marked enters READY (BLOCK_JOB_READY).
//          It then waits for block-job-complete, copying what failed
//          copies marked meanwhile.
// With copy-mode write-blocking the hook copies guest writes from the start
// (QEMU's active mirror), so only the bulk is left to the job, and a guest
// that writes faster than the target takes cannot keep it from converging.
//
// The end: Complete (or a cancel without force once READY, Job::Cancel)
// makes Run copy what is marked and return; Prepare takes the hook out
// (after which no guest write reaches the target), copies what a write that
// failed on the target marked just before, and flushes the target and the
// disk: the target is identical as of that moment. A cancel before READY or
// with force ends without that (CANCELLED). Clean takes the hook out in
// every case.
//
// Errors: a failed read of the disk is under on-source-error, a failed
// write to the target under on-target-error (JobContext::RunStepUnder);
// "ignore" marks the run dirty again and goes on after a back-off, so the
// job converges only once the copies succeed; "stop" pauses the job with
// io-status failed until resume, which retries (a broken NBD connection is
// opened again).

#include <atomic>
#include <memory>
#include <string_view>
#include <vector>

#include "jobs/job_driver.h"
#include "jobs/mirror_hook.h"
#include "jobs/mirror_options.h"
#include "jobs/worker_pool.h"
#include "overlay/block_driver.h"
#include "overlay/dirty_bitmap.h"
#include "overlay/overlay.h"
#include "overlay/write_behind.h"

namespace corfs::jobs {

// What is left marked when the job switches to copying guest writes as
// they come (and then enters READY): 4 MiB, a few batches of copying, so
// that the switch makes the guest's writes wait for the target only for
// what is about to be copied anyway.
inline constexpr uint64_t kReadyBound = 4ull << 20;

class MirrorDriver final : public JobDriver {
 public:
  // Checks the options against the overlay and the target (same size,
  // granularity) before any job exists.
  static Status Make(overlay::Overlay& overlay, std::unique_ptr<overlay::BlockDriver> target,
                     const MirrorOptions& options, WorkerPool& pool, std::unique_ptr<MirrorDriver>* out);

  std::string_view type() const override { return "mirror"; }
  uint64_t initial_length() const override { return overlay_.size(); }
  Status Run(JobContext& job) override;
  Status Prepare(JobContext& job) override;
  void Abort(JobContext& job) override;
  void Clean(JobContext& job) override;
  void Complete() override { complete_.store(true, std::memory_order_release); }
  void Describe(JobInfo& info) const override;

 private:
  MirrorDriver(overlay::Overlay& overlay, std::shared_ptr<overlay::BlockDriver> target, const MirrorOptions& options,
               WorkerPool& pool, uint64_t granularity);

  // Marks what the bulk phase copies (after the hook is in: a write that
  // lands meanwhile is marked by it either way).
  Status MarkInitial(JobContext& job);
  // Takes a batch of marked runs from the cursor on and copies them, under
  // the speed limit and the error policies. *done false when cancelled.
  Status CopyBatch(JobContext& job);
  // Copies until nothing is marked (or the job is cancelled).
  Status Drain(JobContext& job);
  // Applies the policy to a failed copy of a guest write in the hook.
  Status CheckHookErrors(JobContext& job);
  void ReportProgress(JobContext& job);
  uint64_t BatchBytes(const JobContext& job) const;
  // The hook out, nothing more reaching the target: Prepare, Abort, Clean.
  void Detach();

  overlay::Overlay& overlay_;
  const std::shared_ptr<overlay::BlockDriver> target_;
  const MirrorOptions options_;
  WorkerPool& pool_;
  const uint64_t chunk_size_;
  // Copies in flight at once: the pool's workers for a file target; more
  // for a target on a server (kRemoteCopies), run on threads of their own
  // (WorkerPool::ParallelForWaiting).
  const unsigned copies_;
  const std::shared_ptr<overlay::DirtyBitmap> dirty_;
  std::shared_ptr<MirrorHook> hook_;  // the job's thread only
  // For a file target: what the job copied goes to the disk as it goes, so
  // the flush at the end has little left (overlay/write_behind.h). The
  // job's thread only; guest writes copied by the hook go without.
  std::unique_ptr<overlay::WriteBehind> write_behind_;
  bool installed_ = false;  // the hook is in the overlay
  uint64_t cursor_ = 0;     // where the next batch starts looking
  uint64_t copied_ = 0;     // bytes copied so far (QMP "offset")
  bool ready_ = false;
  std::atomic<bool> complete_{false};
};

}  // namespace corfs::jobs
