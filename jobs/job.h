#pragma once
// Job: a background block job in the manner of QEMU's jobs. A job runs its
// driver (Run, then Prepare on success, then Clean) on a thread of its own,
// which fans the actual copying out to the shared TBB worker pool.
//
// States, as QMP names them: created -> running <-> paused -> concluded.
// Control (pause, resume, cancel, speed) is taken at the driver's
// checkpoints, between chunks. Errors follow the job's on-error policy:
//   report  end the job with the error;
//   ignore  skip the failed chunk and go on (the outcome is then partial);
//   stop    pause the job; resume retries the chunk.
// Events go out on the EventBus with QMP's names and data:
// BLOCK_JOB_COMPLETED (with "error" when it failed), BLOCK_JOB_CANCELLED,
// BLOCK_JOB_ERROR.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/event_bus.h"
#include "common/status.h"
#include "jobs/rate_limiter.h"

namespace corfs::jobs {

enum class JobState { kCreated, kRunning, kPaused, kReady, kConcluded };
const char* ToString(JobState state);

enum class OnError { kReport, kIgnore, kStop };
const char* ToString(OnError policy);
bool ParseOnError(const std::string& text, OnError* out);

struct JobInfo {
  std::string id;
  std::string type;    // "stream"
  std::string device;  // the image the job works on
  JobState state = JobState::kCreated;
  uint64_t offset = 0;  // bytes of the job's range processed (QMP "offset")
  uint64_t len = 0;     // bytes of the job's range (QMP "len")
  uint64_t copied = 0;  // bytes actually read from the chain
  uint64_t speed = 0;   // limit in bytes/s, 0 = none
  double rate = 0;      // measured progress in bytes/s
  double eta_seconds = -1;  // -1: unknown
  std::string error;    // why it failed, once concluded
  bool cancelled = false;
};

class Job {
 public:
  Job(std::string id, std::string type, std::string device, OnError on_error, uint64_t speed, EventBus& events);
  virtual ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  void Start();
  void Pause();
  void Resume();
  void Cancel();
  void SetSpeed(uint64_t bytes_per_second);

  JobInfo Info() const;
  const std::string& id() const { return id_; }
  const std::string& device() const { return device_; }
  bool concluded() const;
  // Waits for the job to conclude; false on timeout.
  bool WaitConcluded(std::chrono::milliseconds timeout) const;

 protected:
  // The driver. Run does the work; Prepare commits its outcome after a
  // successful Run (it is not called after an error or a cancel); Clean runs
  // last in every case.
  virtual Status Run() = 0;
  virtual Status Prepare() { return Status::Ok(); }
  virtual void Clean() {}

  // Between steps: blocks while paused; false once cancelled.
  bool Checkpoint();
  // Waits until `bytes` may be copied under the speed limit; false once cancelled.
  bool Throttle(uint64_t bytes);

  enum class ErrorAction { kFail, kSkip, kRetry };
  // Applies the on-error policy to a failed step and emits BLOCK_JOB_ERROR.
  // kStop blocks until the job is resumed (kRetry) or cancelled (kFail).
  ErrorAction OnStepError(const Status& error, bool is_read);

  void SetRange(uint64_t len);
  void Advance(uint64_t processed, uint64_t copied);
  bool cancel_requested() const;
  bool errors_ignored() const;
  // Cancels and waits for the driver thread; a derived job calls it in its
  // destructor, so the driver never runs on a half-destroyed object.
  void CancelAndJoin();

 private:
  void Main();
  void Emit(const std::string& name, nlohmann::json data);
  nlohmann::json EventBase() const;

  const std::string id_;
  const std::string type_;
  const std::string device_;
  const OnError on_error_;
  EventBus& events_;
  RateLimiter limiter_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  JobState state_ = JobState::kCreated;
  bool pause_requested_ = false;
  bool cancel_requested_ = false;
  bool errors_ignored_ = false;
  uint64_t offset_ = 0;
  uint64_t len_ = 0;
  uint64_t copied_ = 0;
  double rate_ = 0;
  std::chrono::steady_clock::time_point rate_time_ = std::chrono::steady_clock::now();
  uint64_t rate_offset_ = 0;
  std::string error_;
  bool cancelled_ = false;

  std::thread thread_;
};

}  // namespace corfs::jobs
