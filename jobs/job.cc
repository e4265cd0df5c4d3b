#include "jobs/job.h"

#include <algorithm>

#include "jobs/background_thread.h"

namespace corfs::jobs {

const char* ToString(JobState state) {
  switch (state) {
    case JobState::kCreated: return "created";
    case JobState::kRunning: return "running";
    case JobState::kPaused: return "paused";
    case JobState::kReady: return "ready";
    case JobState::kConcluded: return "concluded";
  }
  return "unknown";
}

Job::Job(std::string image, const JobOptions& options, std::unique_ptr<JobDriver> driver, JobEventSink events)
    : id_(options.IdFor(image)),
      image_(std::move(image)),
      on_error_(options.on_error),
      resumed_(options.resumed),
      driver_(std::move(driver)),
      events_(std::move(events)),
      limiter_(options.speed),
      len_(driver_->initial_length()) {}

Job::~Job() {
  Cancel(/*force=*/true);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Job::Start() {
  {
    std::lock_guard lock(mutex_);
    state_ = JobState::kRunning;
    started_ = rate_time_ = std::chrono::steady_clock::now();
  }
  thread_ = std::thread([this] { Main(); });
}

void Job::Main() {
  UseLongSlices();  // guests' threads go first (background_thread.h)
  Status status = driver_->Run(*this);
  const bool cancelled = cancel_requested();
  if (status.ok() && !cancelled) status = driver_->Prepare(*this);
  if (!status.ok() || cancelled) driver_->Abort(*this);
  driver_->Clean(*this);

  FlushErrors(/*now=*/true);
  JobEvent event;
  {
    std::lock_guard lock(mutex_);
    state_ = JobState::kConcluded;
    ended_ = std::chrono::steady_clock::now();
    io_status_ = IoStatus::kOk;
    // A cancel wins over the error it cut short (a job stopped on an error
    // and then cancelled was cancelled, not failed), as in QEMU.
    cancelled_ = cancelled;
    error_ = status.ok() || cancelled ? "" : status.message();
    event.kind = cancelled_ ? JobEvent::Kind::kCancelled : JobEvent::Kind::kCompleted;
    event.job = InfoLocked();
    if (!error_.empty()) event.error = error_;
  }
  Emit(event);
  changed_.notify_all();
}

bool Job::Pause() {
  std::lock_guard lock(mutex_);
  if (pause_requested_) return false;
  if (state_ != JobState::kConcluded) pause_requested_ = true;
  changed_.notify_all();
  return true;
}

bool Job::Resume() {
  std::lock_guard lock(mutex_);
  if (!pause_requested_) return false;
  pause_requested_ = false;
  changed_.notify_all();
  return true;
}

void Job::Cancel(bool force) {
  {
    std::lock_guard lock(mutex_);
    // ready_, not the state: a READY job paused by the user is still one
    // whose outcome is consistent, so a soft cancel completes it too.
    if (force || !ready_ || state_ == JobState::kConcluded || cancel_requested_) {
      cancel_requested_ = true;
      changed_.notify_all();
      return;
    }
    pause_requested_ = false;
    changed_.notify_all();
  }
  driver_->Complete();
}

void Job::Interrupt() {
  std::lock_guard lock(mutex_);
  interrupted_ = cancel_requested_ = true;
  changed_.notify_all();
}

void Job::SetSpeed(uint64_t bytes_per_second) {
  {
    std::lock_guard lock(mutex_);
    limiter_.set_speed(bytes_per_second);
    ++speed_changes_;
    changed_.notify_all();
  }
  driver_->SpeedChanged(bytes_per_second);
}

Status Job::Complete() {
  {
    std::lock_guard lock(mutex_);
    if (state_ != JobState::kReady || cancel_requested_) {
      return Status::Error(EBUSY, "job '" + id_ + "' is not ready to complete (it is " +
                                      (cancel_requested_ ? "aborting" : ToString(state_)) + ")");
    }
  }
  driver_->Complete();
  return Status::Ok();
}

bool Job::cancel_requested() const {
  std::lock_guard lock(mutex_);
  return cancel_requested_;
}

bool Job::interrupted() const {
  std::lock_guard lock(mutex_);
  return interrupted_;
}

bool Job::concluded() const {
  std::lock_guard lock(mutex_);
  return state_ == JobState::kConcluded;
}

bool Job::WaitConcluded(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return state_ == JobState::kConcluded; });
}

JobInfo Job::Info() const {
  std::lock_guard lock(mutex_);
  return InfoLocked();
}

JobInfo Job::InfoLocked() const {
  JobInfo info;
  info.id = id_;
  info.type = driver_->type();
  info.image = image_;
  info.state = state_;
  info.offset = offset_;
  info.len = len_;
  info.copied = copied_;
  info.holes = holes_;
  info.local = local_;
  info.remaining = RemainingLocked();
  info.speed = limiter_.speed();
  info.rate = rate_;
  // A paused job makes no progress, so it has no time of arrival; one with
  // nothing left to copy has only holes and local runs left to walk, which
  // take next to no time.
  const bool moving = state_ == JobState::kRunning || state_ == JobState::kReady;
  if (moving && info.remaining == 0u) {
    info.eta_seconds = 0;
  } else if (moving && info.remaining && rate_ > 0) {
    info.eta_seconds = static_cast<double>(*info.remaining) / rate_;
  }
  info.elapsed_seconds =
      std::chrono::duration<double>(ended_.value_or(std::chrono::steady_clock::now()) - started_).count();
  info.io_status = io_status_;
  info.error = error_;
  info.cancelled = cancelled_;
  info.resumed = resumed_;
  driver_->Describe(info);
  return info;
}

bool Job::Checkpoint() {
  FlushErrors(/*now=*/false);
  std::unique_lock lock(mutex_);
  if (pause_requested_ && !cancel_requested_) {
    state_ = JobState::kPaused;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !pause_requested_ || cancel_requested_; });
    rate_time_ = std::chrono::steady_clock::now();  // paused time is no progress
    rate_copied_ = copied_;
    limiter_.Restart();          // nor is it owed to the speed limit
    io_status_ = IoStatus::kOk;  // a resume (or cancel) ends a stop on an error
    error_.clear();
  }
  if (state_ == JobState::kPaused) state_ = ready_ ? JobState::kReady : JobState::kRunning;
  return !cancel_requested_;
}

bool Job::Throttle(uint64_t bytes) {
  std::unique_lock lock(mutex_);
  while (!cancel_requested_) {
    if (pause_requested_) {
      lock.unlock();
      if (!Checkpoint()) return false;
      lock.lock();
      continue;  // book again: the pause restarted the limiter
    }
    const uint64_t changes = speed_changes_;
    const RateLimiter::Clock::time_point start = limiter_.Book(bytes);
    // A cancel, a pause or a new speed ends the wait at once.
    if (!changed_.wait_until(lock, start,
                             [&] { return cancel_requested_ || pause_requested_ || speed_changes_ != changes; })) {
      return true;
    }
  }
  return false;
}

uint64_t Job::SliceBytes() const {
  std::lock_guard lock(mutex_);
  return limiter_.SliceBytes();
}

bool Job::Delay(std::chrono::milliseconds delay) {
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, delay, [&] { return cancel_requested_ || pause_requested_; });
  }
  return Checkpoint();
}

void Job::EnterReady() {
  JobEvent event;
  {
    std::lock_guard lock(mutex_);
    ready_ = true;
    if (state_ == JobState::kRunning) state_ = JobState::kReady;
    event.kind = JobEvent::Kind::kReady;
    event.job = InfoLocked();
  }
  Emit(event);
  changed_.notify_all();
}

Status Job::RunStep(Status result, const std::function<Status()>& again, ClassifyError classify, bool* skipped) {
  return RunStepUnder(on_error_, std::move(result), again, classify, skipped);
}

Status Job::RunStepUnder(OnError policy, Status result, const std::function<Status()>& again, ClassifyError classify,
                         bool* skipped) {
  if (skipped != nullptr) *skipped = false;
  while (!result.ok()) {
    switch (OnStepError(result, classify(result), policy)) {
      case ErrorAction::kFail: return result;
      case ErrorAction::kSkip:
        if (skipped != nullptr) *skipped = true;
        return Status::Ok();
      case ErrorAction::kRetry: result = again(); break;
    }
  }
  return Status::Ok();
}

Job::ErrorAction Job::OnStepError(const Status& error, IoOperation operation, OnError policy) {
  JobEvent event;
  event.kind = JobEvent::Kind::kError;
  event.error = error.message();
  event.operation = operation;
  event.action = policy;
  {
    std::lock_guard lock(mutex_);
    event.job = InfoLocked();
  }
  if (policy == OnError::kStop) {
    // Each stop waits for the user, so each is reported at once.
    FlushErrors(/*now=*/true);
    Emit(event);
    last_error_event_ = std::chrono::steady_clock::now();
  } else {
    ReportError(std::move(event), error.code());
  }
  switch (policy) {
    case OnError::kReport: return ErrorAction::kFail;
    case OnError::kIgnore: return ErrorAction::kSkip;
    case OnError::kStop: return StopOnError(error) ? ErrorAction::kRetry : ErrorAction::kFail;
  }
  return ErrorAction::kFail;
}

// Checkpoint clears the io-status once the job wakes up.
bool Job::StopOnError(const Status& error) {
  {
    std::lock_guard lock(mutex_);
    pause_requested_ = true;
    io_status_ = error.code() == ENOSPC ? IoStatus::kNoSpace : IoStatus::kFailed;
    error_ = error.message();
  }
  return Checkpoint();
}

void Job::ReportError(JobEvent event, int code) {
  if (pending_error_ && (pending_error_code_ != code || pending_error_->operation != event.operation)) {
    FlushErrors(/*now=*/true);  // a different error is not hidden in this one's count
  }
  if (pending_error_) event.count += pending_error_->count;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_error_event_ >= kErrorEventInterval) {
    pending_error_.reset();
    last_error_event_ = now;
    Emit(event);
  } else {
    pending_error_ = std::move(event);
    pending_error_code_ = code;
  }
}

void Job::FlushErrors(bool now) {
  if (!pending_error_) return;
  const auto time = std::chrono::steady_clock::now();
  if (!now && time - last_error_event_ < kErrorEventInterval) return;
  const JobEvent event = std::move(*pending_error_);
  pending_error_.reset();
  last_error_event_ = time;
  Emit(event);
}

void Job::SetRange(uint64_t len) {
  std::lock_guard lock(mutex_);
  len_ = len;
}

void Job::Advance(const StepProgress& step) {
  std::lock_guard lock(mutex_);
  offset_ += step.processed;
  copied_ += step.copied;
  holes_ += step.holes;
  local_ += step.processed - std::min(step.processed, step.copied + step.holes);
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - rate_time_).count();
  if (now - rate_time_ >= kRateSample) {
    const double sample = static_cast<double>(copied_ - rate_copied_) / seconds;
    rate_ = rate_ == 0 ? sample : 0.7 * rate_ + 0.3 * sample;
    rate_time_ = now;
    rate_copied_ = copied_;
  }
}

void Job::SetRemaining(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  remaining_ = bytes;
}

std::optional<uint64_t> Job::RemainingLocked() const {
  if (remaining_) return remaining_;
  if (offset_ == 0) return std::nullopt;
  const uint64_t left = len_ - std::min(offset_, len_);
  return static_cast<uint64_t>(static_cast<long double>(left) * copied_ / offset_);
}

void Job::Emit(const JobEvent& event) {
  if (events_) events_(event);
}

}  // namespace corfs::jobs
