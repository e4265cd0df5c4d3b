#pragma once
// StreamDriver: the driver of a stream job (jobs/job_driver.h), in the
// manner of QEMU's block/stream.c. It copies what an overlay lacks from its
// backing chain, so the overlay becomes standalone.
//
// Modes:
//   whole  every cluster; at the end the backing link is dropped;
//   range  [offset, offset+length) only; the job reports where the next
//          range should start, so a management tool can pace it;
//   base   only what the images above `base` hold; at the end `base`
//          becomes the overlay's backing image (the chain is shortened).
// Allocation status is asked in whole runs, so what the overlay holds
// already and what no image holds are skipped without reading them. Copies
// go through the overlay's claim path, exactly as a guest read's
// copy-on-read does, so a stream never races a guest write. Under a speed
// limit a step copies about one slice of it (JobContext::SliceBytes). Under
// on-error "ignore", what the first pass skipped is tried again by the
// second, after a back-off; the backing link stays if that fails too.
//
// A whole-image stream is resumable: RecordWish writes the wish for it (its
// speed and on-error policy) into the overlay's header before it starts, a
// new speed updates it, and its end clears it (Clean), unless the mount
// going down interrupted it (JobContext::interrupted) or the daemon died;
// then the next mount starts it again (cli/mount_session.cc). A range or a
// stream down to a base records nothing: a range is paced by the tool that
// asked for it (it holds the next offset), and a base is a choice about the
// chain made for that moment, which the next mount's chain may not even hold.
//
// Before it copies, the driver surveys its range (Survey: the same plan,
// nothing copied) for an estimate of the bytes to copy (CopyEstimate); it
// reports the estimate from where it is after every batch, so the job's ETA
// counts only bytes still to copy, not holes still to walk.
//
// With a boot profile (StreamOptions::profile, overlay/boot_profile.h) the
// first pass is the profile's: its ranges in their recorded order, through
// the same plan and claims, skipping those the guest has read already (it
// is at the furthest range of the profile it read, BootProfileCursor), and
// while the guest reads, no further than kProfileWindow in front of it, so
// the stream fetches what the guest will ask for next and leaves the rest
// of the link to the guest's own faults. The disk-order pass follows; what
// the profile brought in is local there. Guest reads keep their priority
// (they copy on their own threads; over a server the stream's batches are
// kept short while guests read, see BatchBytes). The bytes the profile pass copies are
// counted `copied` when copied, and `local` when the disk-order walk passes
// them.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "jobs/copy_estimate.h"
#include "jobs/job_driver.h"
#include "jobs/stream_options.h"
#include "jobs/worker_pool.h"
#include "overlay/boot_profile_cursor.h"
#include "overlay/overlay.h"

namespace corfs::jobs {

class StreamDriver final : public JobDriver {
 public:
  // Checks the options against the overlay (base in the chain, range inside
  // the disk) before any job exists. `image` names the overlay in errors.
  static Status Make(overlay::Overlay& overlay, const std::string& image, const StreamOptions& options,
                     WorkerPool& pool, std::unique_ptr<StreamDriver>* out);

  // Where the job's range ends: for a range, the offset the next range
  // should start at.
  uint64_t range_end() const { return end_; }

  std::string_view type() const override { return "stream"; }
  // For a whole-image stream, records the wish to resume it with `options`'
  // speed and on-error policy; nothing for a range or a base, or on an
  // overlay whose header version keeps no wish (it then streams as before
  // but does not resume by itself). Called before the job starts.
  Status RecordWish(const JobOptions& options);

  uint64_t initial_length() const override { return end_ - start_; }
  Status Run(JobContext& job) override;
  Status Prepare(JobContext& job) override;
  void Clean(JobContext& job) override;
  void SpeedChanged(uint64_t bytes_per_second) override;
  void Describe(JobInfo& info) const override;

 private:
  StreamDriver(overlay::Overlay& overlay, std::string image, const StreamOptions& options, WorkerPool& pool,
               size_t end_layer, uint64_t start, uint64_t end);

  // One step of the job: a run to copy from the chain, or one to record
  // as zeros.
  struct Chunk {
    uint64_t offset;
    uint64_t length;
    bool copy;
  };

  // Walks the plan of [start_, end_) into estimate_, up to kMaxSurveyRuns
  // runs; a failed plan or a cancel ends it early (the pass then meets the
  // error under the job's policy).
  void Survey(JobContext& job);
  // One pass over [start_, end_): copies every run the overlay needs.
  Status Pass(JobContext& job, bool wait_for_busy);
  Status CopyBatch(JobContext& job, const std::vector<Chunk>& chunks, bool wait_for_busy);
  // The profile's ranges, in its order, ahead of the guest (see above).
  Status ProfilePass(JobContext& job);
  // Plans [*pos, range_end) into `chunks` until `*to_copy` reaches
  // `batch_bytes`; *pos is where it stopped.
  Status PlanProfileRange(JobContext& job, uint64_t range_end, uint64_t batch_bytes, uint64_t* pos,
                          std::vector<Chunk>* chunks, uint64_t* to_copy, uint64_t* holes);
  // While the guest reads, how far into the profile (its bytes) the pass
  // may copy: kProfileWindow past the guest's place; nullopt when the guest
  // does not read (not yet, or no more), which holds nothing back.
  std::optional<uint64_t> WindowEnd() const;
  // The most a batch copies: about a slice of the speed limit, whole
  // clusters, at least one; over a server, no more than the link moves in
  // kBatchLatency at link_rate_ (kGuestBatchLatency while guests read).
  uint64_t BatchBytes(const JobContext& job, bool guests_active = false) const;
  // Over a server: waits (up to kMaxGuestWait) while guest requests on this
  // image are in flight, so its faults have the link to themselves.
  void YieldToGuests() const;
  // The step a batch of `batch_bytes` copies at most: chunk_size_, smaller
  // over a server when the batch is small, so its steps are in flight at once.
  uint64_t StepBytes(uint64_t batch_bytes) const;
  // After a batch over a server: its pace goes into link_rate_.
  void NoteLinkPace(uint64_t bytes, std::chrono::steady_clock::duration took);

  overlay::Overlay& overlay_;
  WorkerPool& pool_;
  const uint64_t chunk_size_;
  // Steps copied at once: the pool's workers, or for a chain read through
  // a buffer kBufferedStepsInFlight, on threads of the batch's own.
  const unsigned in_flight_;
  // For a chain read through a buffer (a server): the link's pace as the
  // recent batches saw it, bytes per second; 0 until the first batch, and
  // always for a local chain. The job's thread only.
  double link_rate_ = 0;
  const size_t end_layer_;  // layers above the base (all layers without one)
  const bool base_mode_;
  const bool whole_image_;  // neither a base nor a range: resumable
  const uint64_t start_;
  const uint64_t end_;
  std::unique_ptr<overlay::WriteBehind> write_behind_;  // used by the job's thread only
  bool skipped_ = false;                                // the pass skipped a step after an error (on-error "ignore")
  uint64_t skipped_bytes_ = 0;                          // how many bytes it skipped so
  CopyEstimate estimate_;
  const std::string image_;                                    // names the image in the log
  const std::shared_ptr<overlay::BootProfileCursor> profile_;  // null: no profile
  std::atomic<uint64_t> profile_offset_{0};                    // bytes of the profile passed (Describe)

  // The wish recorded in the header, while it is: Clean on the job's thread
  // and SpeedChanged on the control socket's must not re-record one the
  // other cleared.
  std::mutex wish_mutex_;
  std::optional<overlay::StreamWish> wish_;
};

}  // namespace corfs::jobs
