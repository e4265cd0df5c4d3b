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

const char* ToString(OnError policy) {
  switch (policy) {
    case OnError::kReport: return "report";
    case OnError::kIgnore: return "ignore";
    case OnError::kStop: return "stop";
  }
  return "unknown";
}

bool ParseOnError(const std::string& text, OnError* out) {
  for (OnError policy : {OnError::kReport, OnError::kIgnore, OnError::kStop}) {
    if (text == ToString(policy)) {
      *out = policy;
      return true;
    }
  }
  return false;
}

Job::Job(std::string id, std::string type, std::string device, OnError on_error, uint64_t speed, EventBus& events)
    : id_(std::move(id)),
      type_(std::move(type)),
      device_(std::move(device)),
      on_error_(on_error),
      events_(events),
      limiter_(speed) {}

Job::~Job() { CancelAndJoin(); }

void Job::CancelAndJoin() {
  Cancel();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool Job::errors_ignored() const {
  std::lock_guard lock(mutex_);
  return errors_ignored_;
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
  Status status = Run();
  const bool cancelled = cancel_requested();
  if (status.ok() && !cancelled) status = Prepare();
  Clean();

  nlohmann::json data = EventBase();
  {
    std::lock_guard lock(mutex_);
    state_ = JobState::kConcluded;
    cancelled_ = cancelled && status.ok();
    if (!status.ok()) error_ = status.message();
    if (!status.ok()) data["error"] = error_;
  }
  Emit(cancelled && status.ok() ? "BLOCK_JOB_CANCELLED" : "BLOCK_JOB_COMPLETED", data);
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

bool Job::cancel_requested() const {
  std::lock_guard lock(mutex_);
  return cancel_requested_;
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
  JobInfo info;
  info.id = id_;
  info.type = type_;
  info.device = device_;
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
  if (state_ == JobState::kPaused) state_ = JobState::kRunning;
  return !cancel_requested_;
}

bool Job::Throttle(uint64_t bytes) {
  const RateLimiter::Clock::time_point start = limiter_.Book(bytes);
  std::unique_lock lock(mutex_);
  // A cancel ends the wait at once; a speed change is booked from the next chunk on.
  changed_.wait_until(lock, start, [&] { return cancel_requested_; });
  return !cancel_requested_;
}

Job::ErrorAction Job::OnStepError(const Status& error, bool is_read) {
  nlohmann::json data = EventBase();
  data["operation"] = is_read ? "read" : "write";
  data["action"] = ToString(on_error_);
  data["reason"] = error.message();
  Emit("BLOCK_JOB_ERROR", data);
  switch (on_error_) {
    case OnError::kReport:
      return ErrorAction::kFail;
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

nlohmann::json Job::EventBase() const {
  // QMP names: "device" is the job's id (which defaults to the image name).
  return {{"type", type_},   {"device", id_},     {"image", device_},
          {"len", len_},     {"offset", offset_}, {"speed", limiter_.speed()}};
}

void Job::Emit(const std::string& name, nlohmann::json data) { events_.Publish({name, std::move(data)}); }

}  // namespace corfs::jobs
