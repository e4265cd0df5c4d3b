#pragma once
// RateLimiter: keeps a job's long-run copy rate at a set number of bytes per
// second (0 = unlimited). Each chunk is booked on a virtual clock that
// advances bytes/speed per chunk; the caller waits until the clock catches
// up. A small allowance (kBurst) lets a job that was held back (paused,
// yielding to guest I/O) not lose its whole budget, without bursting far
// past the rate.

#include <chrono>
#include <cstdint>
#include <mutex>

namespace corfs::jobs {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kBurst{100};

  explicit RateLimiter(uint64_t bytes_per_second = 0) : speed_(bytes_per_second) {}

  void set_speed(uint64_t bytes_per_second) {
    std::lock_guard lock(mutex_);
    speed_ = bytes_per_second;
    next_ = Clock::now();
  }
  uint64_t speed() const {
    std::lock_guard lock(mutex_);
    return speed_;
  }

  // Books `bytes` and returns the time at which they may be sent: the end
  // of their slot, so that what has been sent never runs ahead of the rate.
  Clock::time_point Book(uint64_t bytes) {
    std::lock_guard lock(mutex_);
    const Clock::time_point now = Clock::now();
    if (speed_ == 0) return now;
    if (next_ < now - kBurst) next_ = now - kBurst;
    next_ += std::chrono::nanoseconds(static_cast<int64_t>(static_cast<long double>(bytes) * 1e9L / speed_));
    return next_;
  }

 private:
  mutable std::mutex mutex_;
  uint64_t speed_;
  Clock::time_point next_ = Clock::now();
};

}  // namespace corfs::jobs
