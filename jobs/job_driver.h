#pragma once
// JobDriver: what a kind of job does (stream, and later mirror, commit,
// backup), in the manner of QEMU's JobDriver. A Job (jobs/job.h) owns one
// driver and runs it; the driver does the work and decides nothing about
// states, control or events: it asks its JobContext for those.
//
// Threading contract:
//   - Run, Prepare, Abort and Clean are called on the job's own thread, each
//     at most once, in this order:
//       Run      does the work;
//       Prepare  commits the outcome, after Run returned Ok without a cancel;
//       Abort    undoes what must be undone, after Run failed or was
//                cancelled, or Prepare failed;
//       Clean    releases what Run took, last, in every case.
//     Run may fan work out to the shared worker pool; the context is for the
//     job's thread only, never for pool workers.
//   - Describe is called from any thread (query-block-jobs, events).
//   - SpeedChanged is called on the thread that changes the speed (the
//     control socket's), at any time before the driver goes.
//   - Complete is called on the thread that asks for it (the control
//     socket's), only once the job entered READY, which only a driver that
//     called JobContext::EnterReady does: for the user's complete, and for a
//     cancel without force of a job that entered READY (Job::Cancel; QEMU
//     ends such a mirror COMPLETED too). It must not block: it tells Run to
//     finish, and Run then returns (and Prepare commits) on the job's
//     thread. It may be called more than once.
//   - The Job destroys its driver only after its thread has ended, so a
//     driver needs no destructor that stops or joins anything.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "common/status.h"
#include "jobs/job_event.h"
#include "jobs/job_info.h"
#include "jobs/on_error.h"

namespace corfs::jobs {

// What one step of a driver did with the bytes of its range it walked.
// What was neither copied nor a hole needed nothing: the overlay held it
// already (or, for a stream down to a base, it stays in the base).
struct StepProgress {
  uint64_t processed = 0;  // bytes of the range walked (QMP "offset")
  uint64_t copied = 0;     // of those, read from the chain and written
  uint64_t holes = 0;      // of those, recorded as zeros without reading
};

// The job as its driver sees it. Every call is made on the job's thread.
class JobContext {
 public:
  // Between steps: blocks while the job is paused; false once it is
  // cancelled (Run then returns Ok at once).
  virtual bool Checkpoint() = 0;
  // Waits until `bytes` may be processed under the speed limit; false once
  // the job is cancelled. A speed change during the wait books the bytes
  // again at the new speed, and a pause pauses the job there (the bytes are
  // booked again after the resume), so neither waits for the old booking.
  virtual bool Throttle(uint64_t bytes) = 0;
  // The bytes the speed limit allows in one slice (about 100 ms); 0 when
  // unlimited. A driver keeps its steps near this, so that it reaches a
  // checkpoint soon whatever the speed.
  virtual uint64_t SliceBytes() const = 0;
  // Waits `delay` (a back-off before retrying), pausing there if asked;
  // false once the job is cancelled.
  virtual bool Delay(std::chrono::milliseconds delay) = 0;

  // Progress: the bytes the job is to process (QMP "len"), and what a step
  // did (StepProgress). The rate is measured on the bytes copied, not on
  // those walked, since holes and what the overlay holds already cost
  // (nearly) nothing.
  virtual void SetRange(uint64_t len) = 0;
  virtual void Advance(const StepProgress& step) = 0;
  // The driver's estimate of the bytes it still has to copy; the ETA is this
  // over the rate. A driver refines it as it goes; until it gives one, the
  // job extrapolates from what it has walked and copied so far.
  virtual void SetRemaining(uint64_t bytes) = 0;

  // The job is ready to complete (BLOCK_JOB_READY); from now on Complete is
  // accepted. Run goes on until it is told to finish.
  virtual void EnterReady() = 0;

  // Classifies a failed step for the error event: read or write.
  using ClassifyError = IoOperation (*)(const Status& error);

  // The job's on-error policy, applied to one step. `result` is the outcome
  // of the step's first attempt (made by the driver, maybe in parallel with
  // other steps); `again` makes another. While the step fails, an error
  // event goes out (its operation from `classify`) and the policy decides:
  //   report  returns the error, which ends the job;
  //   ignore  returns Ok and sets *skipped (if given); the driver then
  //           knows that its outcome is partial, and may try again later;
  //   stop    pauses the job, which reports the error (io-status) until it
  //           is resumed; on resume, makes another attempt; on a cancel
  //           instead, returns the error (the job then ends cancelled).
  // Returns Ok (and *skipped false) once an attempt succeeds.
  virtual Status RunStep(Status result, const std::function<Status()>& again, ClassifyError classify,
                         bool* skipped = nullptr) = 0;
  // The same under `policy` instead of the job's own: a driver with a
  // policy per side (a mirror's on-source-error and on-target-error). A
  // context without policies of its own (a test's) keeps the default.
  virtual Status RunStepUnder(OnError /*policy*/, Status result, const std::function<Status()>& again,
                              ClassifyError classify, bool* skipped) {
    return RunStep(std::move(result), again, classify, skipped);
  }

  virtual bool cancel_requested() const = 0;
  // The cancel is the mount going down, not the user's: what a driver keeps
  // to resume the job at the next mount stays (see JobManager).
  virtual bool interrupted() const = 0;

 protected:
  ~JobContext() = default;
};

class JobDriver {
 public:
  virtual ~JobDriver() = default;

  // The job's type, as QMP reports it: "stream".
  virtual std::string_view type() const = 0;
  // The bytes the job is to process as known before Run: the job's range
  // until Run sets another.
  virtual uint64_t initial_length() const { return 0; }

  virtual Status Run(JobContext& job) = 0;
  virtual Status Prepare(JobContext&) { return Status::Ok(); }
  virtual void Abort(JobContext&) {}
  virtual void Clean(JobContext&) {}
  virtual void Complete() {}
  // The job's speed limit is now `bytes_per_second`. Called on the thread
  // that changed it (the control socket's), after the job took it.
  virtual void SpeedChanged(uint64_t /*bytes_per_second*/) {}
  // Adds what only the driver knows to the job's info (a stream's profile
  // progress). Called from any thread, under the job's lock: it only loads.
  virtual void Describe(JobInfo& /*info*/) const {}
};

}  // namespace corfs::jobs
