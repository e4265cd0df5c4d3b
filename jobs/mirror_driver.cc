#include "jobs/mirror_driver.h"

#include <algorithm>
#include <bit>
#include <chrono>

namespace corfs::jobs {

namespace {

// A copy step: one run of marked chunks, at most this long.
constexpr uint64_t kChunkSize = 1ull << 20;
// Copies in flight at once to a target on a server (one without a local
// file): there a copy waits mostly for its write's round trip. On qemu-nbd
// over loopback, 256 MiB of sync top took 1.75 s with 2 in flight, 1.0 s
// with 8 (nbdcopy: 1.24 s).
constexpr unsigned kRemoteCopies = 8;
// How often a READY job looks for marks left by failed copies of guest
// writes, and for a complete.
constexpr std::chrono::milliseconds kReadyPoll{20};
// After a batch whose failures were ignored, the job waits this long before
// it tries them again: a target that failed a moment ago may answer later.
constexpr std::chrono::seconds kIgnoredRetryDelay{1};
// Marking the initial bitmap takes the job's checkpoint every this many
// runs.
constexpr uint64_t kMarkCheckpointRuns = 4096;

IoOperation ReadSide(const Status&) { return IoOperation::kRead; }
IoOperation WriteSide(const Status&) { return IoOperation::kWrite; }

}  // namespace

Status MirrorDriver::Make(overlay::Overlay& overlay, std::unique_ptr<overlay::BlockDriver> target,
                          const MirrorOptions& options, WorkerPool& pool, std::unique_ptr<MirrorDriver>* out) {
  if (target == nullptr) return Status::Invalid("a mirror needs a target");
  if (target->size() != overlay.size()) {
    return Status::Invalid("target " + target->path() + " has " + std::to_string(target->size()) + " bytes, the disk " +
                           std::to_string(overlay.size()));
  }
  const uint64_t granularity = options.granularity == 0 ? overlay.cluster_size() : options.granularity;
  if (!std::has_single_bit(granularity) || granularity < kMinMirrorGranularity || granularity > kMaxMirrorGranularity) {
    return Status::Invalid("granularity " + std::to_string(granularity) +
                           " is not a power of two between 512 bytes and 64 MiB");
  }
  out->reset(new MirrorDriver(overlay, std::move(target), options, pool, granularity));
  return Status::Ok();
}

MirrorDriver::MirrorDriver(overlay::Overlay& overlay, std::shared_ptr<overlay::BlockDriver> target,
                           const MirrorOptions& options, WorkerPool& pool, uint64_t granularity)
    : overlay_(overlay),
      target_(std::move(target)),
      options_(options),
      pool_(pool),
      chunk_size_(std::max(kChunkSize, granularity)),
      copies_(target_->data_fd() >= 0 ? pool.workers() : std::max(pool.workers(), kRemoteCopies)),
      dirty_(std::make_shared<overlay::DirtyBitmap>(overlay.size(), granularity)) {}

Status MirrorDriver::Run(JobContext& job) {
  const bool active = options_.copy_mode == MirrorCopyMode::kWriteBlocking;
  hook_ = std::make_shared<MirrorHook>(overlay_, target_, dirty_,
                                       active ? MirrorHook::Mode::kActive : MirrorHook::Mode::kTrack);
  overlay_.AddWriteHook(hook_);
  installed_ = true;
  if (target_->data_fd() >= 0) {
    write_behind_ =
        overlay::WriteBehind::ForFile(target_->data_fd(), overlay::kWriteBehindBatch, overlay::kWriteBehindWindow);
  }
  CORFS_RETURN_IF_ERROR(MarkInitial(job));
  ReportProgress(job);
  while (job.Checkpoint()) {
    CORFS_RETURN_IF_ERROR(CheckHookErrors(job));
    if (!ready_) {
      if (dirty_->DirtyBytes() > std::max(kReadyBound, dirty_->granularity())) {
        CORFS_RETURN_IF_ERROR(CopyBatch(job));
        continue;
      }
      // Little is left: from now on guest writes reach the target before
      // their guest hears of them, so once what is marked is copied, the
      // target is identical and stays so.
      hook_->SetMode(MirrorHook::Mode::kActive);
      CORFS_RETURN_IF_ERROR(Drain(job));
      if (job.cancel_requested()) return Status::Ok();
      if (dirty_->DirtyBytes() != 0) continue;  // a failed copy of a guest write marked it again
      ready_ = true;
      job.EnterReady();
      continue;
    }
    if (complete_.load(std::memory_order_acquire)) return Drain(job);
    if (dirty_->DirtyBytes() != 0) {
      CORFS_RETURN_IF_ERROR(CopyBatch(job));
    } else if (!job.Delay(kReadyPoll)) {
      break;
    }
  }
  return Status::Ok();
}

Status MirrorDriver::MarkInitial(JobContext& job) {
  const uint64_t size = overlay_.size();
  uint64_t pos = 0;
  for (uint64_t runs = 0; pos < size; ++runs) {
    if (runs % kMarkCheckpointRuns == kMarkCheckpointRuns - 1 && !job.Checkpoint()) return Status::Ok();
    uint64_t length = 0;
    bool mark = false;
    bool skipped = false;
    if (options_.sync == MirrorSync::kTop) {
      auto local_run = [&] { return overlay_.GetLocalRun(pos, size - pos, &mark, &length); };
      CORFS_RETURN_IF_ERROR(job.RunStepUnder(options_.on_source_error, local_run(), local_run, ReadSide, &skipped));
    } else if (options_.target_zeroed) {
      // What reads as zeros is on a new target already.
      overlay::BlockStatus status;
      auto block_status = [&] { return overlay_.GetBlockStatus(pos, size - pos, &status); };
      CORFS_RETURN_IF_ERROR(job.RunStepUnder(options_.on_source_error, block_status(), block_status, ReadSide,
                                             &skipped));
      mark = status.allocation == overlay::Allocation::kData;
      length = status.length;
    } else {
      mark = true;
      length = size;
    }
    if (skipped) {
      // Unknown ("ignore"): copied, a chunk of it; the copy meets the
      // error again under the same policy.
      mark = true;
      length = dirty_->granularity() - pos % dirty_->granularity();
    }
    length = std::max<uint64_t>(1, std::min(length, size - pos));
    if (mark) dirty_->Set(pos, length);
    pos += length;
  }
  return Status::Ok();
}

uint64_t MirrorDriver::BatchBytes(const JobContext& job) const {
  const uint64_t slice = job.SliceBytes();
  const uint64_t most = chunk_size_ * copies_ * 2;
  if (slice == 0) return most;
  return std::clamp(slice / dirty_->granularity() * dirty_->granularity(), dirty_->granularity(), most);
}

Status MirrorDriver::CopyBatch(JobContext& job) {
  struct Piece {
    uint64_t offset;
    uint64_t length;
  };
  std::vector<Piece> runs;
  uint64_t total = 0;
  const uint64_t batch_bytes = BatchBytes(job);
  bool wrapped = false;
  while (total < batch_bytes) {
    Piece run{};
    const uint64_t room = std::max(dirty_->granularity(), std::min(chunk_size_, batch_bytes - total));
    if (!dirty_->TakeRun(cursor_, room, &run.offset, &run.length)) {
      if (wrapped || cursor_ == 0) break;
      cursor_ = 0;  // round the disk again: the dirty phase
      wrapped = true;
      continue;
    }
    runs.push_back(run);
    total += run.length;
    cursor_ = run.offset + run.length;
  }
  if (runs.empty()) return Status::Ok();
  if (!job.Throttle(total)) {
    for (const Piece& run : runs) dirty_->Set(run.offset, run.length);
    return Status::Ok();
  }
  std::vector<Status> results(runs.size());
  std::vector<MirrorHook::Side> sides(runs.size(), MirrorHook::Side::kSource);
  pool_.ParallelFor(runs.size(), copies_,
                    [&](size_t i) { results[i] = hook_->Copy(runs[i].offset, runs[i].length, &sides[i]); });
  bool ignored = false;
  uint64_t copied = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const bool target_side = sides[i] == MirrorHook::Side::kTarget;
    auto again = [&] { return hook_->Copy(runs[i].offset, runs[i].length); };
    bool skipped = false;
    Status status = job.RunStepUnder(target_side ? options_.on_target_error : options_.on_source_error, results[i],
                                     again, target_side ? WriteSide : ReadSide, &skipped);
    if (!status.ok() || skipped) {
      dirty_->Set(runs[i].offset, runs[i].length);  // not copied: still to copy
      if (!status.ok()) return status;
      ignored = true;
      continue;
    }
    copied += runs[i].length;
    if (write_behind_) write_behind_->Written(runs[i].offset, runs[i].length);
  }
  copied_ += copied;
  job.Advance({copied, copied, 0});
  ReportProgress(job);
  // A cancel during the back-off is seen by the caller's next checkpoint.
  if (ignored) (void)job.Delay(kIgnoredRetryDelay);
  return Status::Ok();
}

Status MirrorDriver::Drain(JobContext& job) {
  while (dirty_->DirtyBytes() != 0 && !job.cancel_requested()) {
    if (!job.Checkpoint()) break;
    CORFS_RETURN_IF_ERROR(CopyBatch(job));
    CORFS_RETURN_IF_ERROR(CheckHookErrors(job));
  }
  return Status::Ok();
}

Status MirrorDriver::CheckHookErrors(JobContext& job) {
  if (!hook_) return Status::Ok();
  std::optional<Status> error = hook_->TakeError();
  if (!error) return Status::Ok();
  // The write is marked dirty already: retrying it is copying what is
  // marked, which the job does next. A flush tells whether the target
  // answers again.
  auto again = [&] { return target_->Flush(); };
  bool skipped = false;
  return job.RunStepUnder(options_.on_target_error, *error, again, WriteSide, &skipped);
}

void MirrorDriver::ReportProgress(JobContext& job) {
  const uint64_t dirty = dirty_->DirtyBytes();
  job.SetRange(copied_ + dirty);
  job.SetRemaining(dirty);
}

void MirrorDriver::Describe(JobInfo& info) const { info.dirty_bytes = dirty_->DirtyBytes(); }

void MirrorDriver::Detach() {
  if (!installed_) return;
  // No write reaches the target once the mode is kDetached (SetMode waits
  // for those under way); RemoveWriteHook spares later requests the call.
  hook_->SetMode(MirrorHook::Mode::kDetached);
  overlay_.RemoveWriteHook(hook_.get());
  installed_ = false;
}

Status MirrorDriver::Prepare(JobContext& job) {
  Detach();
  // A guest write whose copy failed just before the hook went out is
  // marked: copy it now, as the disk holds it.
  CORFS_RETURN_IF_ERROR(Drain(job));
  auto flush_target = [&] { return target_->Flush(); };
  bool skipped = false;
  CORFS_RETURN_IF_ERROR(job.RunStepUnder(options_.on_target_error, flush_target(), flush_target, WriteSide, &skipped));
  return overlay_.Flush();
}

void MirrorDriver::Abort(JobContext&) { Detach(); }

void MirrorDriver::Clean(JobContext&) { Detach(); }

}  // namespace corfs::jobs
