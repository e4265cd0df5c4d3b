#pragma once
// Job: a background block job in the manner of QEMU's jobs. A job owns a
// driver (jobs/job_driver.h) and runs it on a thread of its own (Run, then
// Prepare or Abort, then Clean); the driver fans the actual copying out to
// the shared TBB worker pool.
//
// States, as QMP names them: created -> running <-> paused -> concluded,
// with ready on the way for a driver that waits for a complete. Control
// (pause, resume, cancel, speed) is called from any thread and taken at the
// driver's checkpoints, between steps. Errors follow the job's on-error
// policy (jobs/on_error.h), applied by JobContext::RunStep. Events go to the
// job's JobEventSink on the job's thread: completed (with the error when it
// failed), cancelled (a cancel wins over the error it cut short, as in QEMU),
// error (identical ones coalesced, see JobEvent::count), ready.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "jobs/job_driver.h"
#include "jobs/job_event.h"
#include "jobs/job_info.h"
#include "jobs/job_options.h"
#include "jobs/rate_limiter.h"

namespace corfs::jobs {

class Job final : private JobContext {
 public:
  // A job on the image named `image`; its id is options.IdFor(image).
  Job(std::string image, const JobOptions& options, std::unique_ptr<JobDriver> driver, JobEventSink events);
  // Cancels the job and waits for its thread, then lets the driver go.
  ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  void Start();
  // False if a pause was already asked for (the job stays paused).
  bool Pause();
  // False if no pause was asked for (by Pause, or by a stop on an error):
  // nothing to resume, as QEMU refuses it.
  bool Resume();
  // Cancels the job. A READY job (a mirror) cancelled without `force`
  // finishes instead, as in QEMU: its driver is told to complete (a paused
  // one is resumed for it), and it ends COMPLETED, its outcome consistent
  // as of that moment. With `force`, or before READY, it ends CANCELLED.
  void Cancel(bool force = true);
  // Cancels the job because the mount goes down: the driver sees
  // interrupted() and keeps what resumes the job at the next mount.
  void Interrupt();
  void SetSpeed(uint64_t bytes_per_second);
  // Tells a READY job to finish; an error in any other state.
  Status Complete();

  JobInfo Info() const;
  const std::string& id() const { return id_; }
  const std::string& image() const { return image_; }
  bool concluded() const;
  // Waits for the job to conclude; false on timeout.
  bool WaitConcluded(std::chrono::milliseconds timeout) const;

 private:
  // JobContext, for the driver on the job's thread.
  bool Checkpoint() override;
  bool Throttle(uint64_t bytes) override;
  uint64_t SliceBytes() const override;
  bool Delay(std::chrono::milliseconds delay) override;
  void SetRange(uint64_t len) override;
  void Advance(const StepProgress& step) override;
  void SetRemaining(uint64_t bytes) override;
  void EnterReady() override;
  Status RunStep(Status result, const std::function<Status()>& again, ClassifyError classify, bool* skipped) override;
  Status RunStepUnder(OnError policy, Status result, const std::function<Status()>& again, ClassifyError classify,
                      bool* skipped) override;
  bool cancel_requested() const override;
  bool interrupted() const override;

  enum class ErrorAction { kFail, kSkip, kRetry };
  // Reports a failed attempt and applies the policy to it; kStop blocks
  // until the job is resumed (kRetry) or cancelled (kFail).
  ErrorAction OnStepError(const Status& error, IoOperation operation, OnError policy);
  // Blocks while the job is stopped on `error`, which query-block-jobs
  // reports meanwhile; true when resumed, false when cancelled.
  bool StopOnError(const Status& error);

  // Error events, coalesced (JobEvent::count); job's thread only. Report
  // emits `event` at once when no error went out in the last
  // kErrorEventInterval, else counts it in the pending one; Flush emits the
  // pending one (when due only, unless `now`).
  static constexpr std::chrono::seconds kErrorEventInterval{1};
  void ReportError(JobEvent event, int code);
  void FlushErrors(bool now);

  void Main();
  JobInfo InfoLocked() const;  // mutex_ held
  // The bytes still to copy: the driver's estimate, else extrapolated from
  // the share of the range walked so far that had to be copied. mutex_ held.
  std::optional<uint64_t> RemainingLocked() const;
  void Emit(const JobEvent& event);

  const std::string id_;
  const std::string image_;
  const OnError on_error_;
  const bool resumed_;
  const std::unique_ptr<JobDriver> driver_;
  const JobEventSink events_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  JobState state_ = JobState::kCreated;
  bool ready_ = false;  // entered READY: a resume goes back there
  bool pause_requested_ = false;
  bool cancel_requested_ = false;
  bool interrupted_ = false;
  RateLimiter limiter_;         // the speed limit
  uint64_t speed_changes_ = 0;  // wakes a throttled job to book at the new speed
  IoStatus io_status_ = IoStatus::kOk;
  uint64_t offset_ = 0;
  uint64_t len_ = 0;
  uint64_t copied_ = 0;
  uint64_t holes_ = 0;
  uint64_t local_ = 0;
  std::optional<uint64_t> remaining_;  // the driver's estimate, once it gave one
  // The rate is an average of the bytes copied over samples of at least
  // kRateSample, weighted towards the latest.
  static constexpr std::chrono::milliseconds kRateSample{250};
  double rate_ = 0;
  std::chrono::steady_clock::time_point rate_time_ = std::chrono::steady_clock::now();
  uint64_t rate_copied_ = 0;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::time_point> ended_;
  std::string error_;
  bool cancelled_ = false;

  // The job's thread only: the coalesced error event not out yet.
  std::optional<JobEvent> pending_error_;
  int pending_error_code_ = 0;
  std::chrono::steady_clock::time_point last_error_event_{};

  std::thread thread_;
};

}  // namespace corfs::jobs
