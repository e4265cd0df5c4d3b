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
      driver_(std::move(driver)),
      events_(std::move(events)),
      limiter_(options.speed),
      len_(driver_->initial_length()) {}

Job::~Job() {
  Cancel();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Job::Start() {
  {
    std::lock_guard lock(mutex_);
    state_ = JobState::kRunning;
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

  JobEvent event;
  {
    std::lock_guard lock(mutex_);
    state_ = JobState::kConcluded;
    cancelled_ = cancelled && status.ok();
    if (!status.ok()) error_ = status.message();
    event.kind = cancelled_ ? JobEvent::Kind::kCancelled : JobEvent::Kind::kCompleted;
    event.job = InfoLocked();
    if (!status.ok()) event.error = error_;
  }
  Emit(event);
  changed_.notify_all();
}

void Job::Pause() {
  std::lock_guard lock(mutex_);
  if (state_ != JobState::kConcluded) pause_requested_ = true;
  changed_.notify_all();
}

void Job::Resume() {
  std::lock_guard lock(mutex_);
  pause_requested_ = false;
  changed_.notify_all();
}

void Job::Cancel() {
  std::lock_guard lock(mutex_);
  cancel_requested_ = true;
  changed_.notify_all();
}

void Job::SetSpeed(uint64_t bytes_per_second) {
  limiter_.set_speed(bytes_per_second);
  changed_.notify_all();
}

Status Job::Complete() {
  {
    std::lock_guard lock(mutex_);
    if (state_ != JobState::kReady || cancel_requested_) {
      return Status::Error(EBUSY, "job '" + id_ + "' is not ready to complete (it is " +
                                      (cancel_requested_ ? "cancelled" : ToString(state_)) + ")");
    }
  }
  driver_->Complete();
  return Status::Ok();
}

bool Job::cancel_requested() const {
  std::lock_guard lock(mutex_);
  return cancel_requested_;
}

bool Job::errors_ignored() const {
  std::lock_guard lock(mutex_);
  return errors_ignored_;
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
  info.speed = limiter_.speed();
  info.rate = rate_;
  info.eta_seconds = rate_ > 0 ? static_cast<double>(len_ - std::min(offset_, len_)) / rate_ : -1;
  info.error = error_;
  info.cancelled = cancelled_;
  return info;
}

bool Job::Checkpoint() {
  std::unique_lock lock(mutex_);
  if (pause_requested_ && !cancel_requested_) {
    state_ = JobState::kPaused;
    changed_.notify_all();
    changed_.wait(lock, [&] { return !pause_requested_ || cancel_requested_; });
    rate_time_ = std::chrono::steady_clock::now();  // paused time is no progress
    rate_offset_ = offset_;
  }
  if (state_ == JobState::kPaused) state_ = ready_ ? JobState::kReady : JobState::kRunning;
  return !cancel_requested_;
}

bool Job::Throttle(uint64_t bytes) {
  const RateLimiter::Clock::time_point start = limiter_.Book(bytes);
  std::unique_lock lock(mutex_);
  // A cancel ends the wait at once; a speed change is booked from the next chunk on.
  changed_.wait_until(lock, start, [&] { return cancel_requested_; });
  return !cancel_requested_;
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
  if (skipped != nullptr) *skipped = false;
  while (!result.ok()) {
    switch (OnStepError(result, classify(result))) {
      case ErrorAction::kFail: return result;
      case ErrorAction::kSkip:
        if (skipped != nullptr) *skipped = true;
        return Status::Ok();
      case ErrorAction::kRetry: result = again(); break;
    }
  }
  return Status::Ok();
}

Job::ErrorAction Job::OnStepError(const Status& error, IoOperation operation) {
  JobEvent event;
  event.kind = JobEvent::Kind::kError;
  event.error = error.message();
  event.operation = operation;
  event.action = on_error_;
  {
    std::lock_guard lock(mutex_);
    event.job = InfoLocked();
  }
  Emit(event);
  switch (on_error_) {
    case OnError::kReport: return ErrorAction::kFail;
    case OnError::kIgnore: {
      std::lock_guard lock(mutex_);
      errors_ignored_ = true;
      return ErrorAction::kSkip;
    }
    case OnError::kStop: {
      {
        std::lock_guard lock(mutex_);
        pause_requested_ = true;
      }
      return Checkpoint() ? ErrorAction::kRetry : ErrorAction::kFail;
    }
  }
  return ErrorAction::kFail;
}

void Job::SetRange(uint64_t len) {
  std::lock_guard lock(mutex_);
  len_ = len;
}

void Job::Advance(uint64_t processed, uint64_t copied) {
  std::lock_guard lock(mutex_);
  offset_ += processed;
  copied_ += copied;
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - rate_time_).count();
  if (seconds >= 0.25) {
    const double sample = static_cast<double>(offset_ - rate_offset_) / seconds;
    rate_ = rate_ == 0 ? sample : 0.7 * rate_ + 0.3 * sample;
    rate_time_ = now;
    rate_offset_ = offset_;
  }
}

void Job::Emit(const JobEvent& event) {
  if (events_) events_(event);
}

}  // namespace corfs::jobs
