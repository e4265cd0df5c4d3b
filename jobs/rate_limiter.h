#pragma once
// RateLimiter: keeps a job's long-run copy rate at a set number of bytes per
// second (0 = unlimited). Each chunk is booked on a virtual clock that
// advances bytes/speed per chunk; the caller waits until the clock catches
// up. A small allowance (kBurst) lets a job that was held back (yielding to
// guest I/O) not lose its whole budget, without bursting far past the rate.
//
// As QEMU's ratelimit.h, the rate is cut into slices of kSlice: a job copies
// at most a slice's worth of bytes per step (SliceBytes), so that at any
// speed it reaches its next checkpoint soon. Not thread-safe: the Job that
// owns it guards it with its own mutex, so that a speed change and the wait
// it must cut short are seen together.

#include <chrono>
#include <cstdint>

namespace corfs::jobs {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kBurst{100};
  static constexpr std::chrono::milliseconds kSlice{100};

  explicit RateLimiter(uint64_t bytes_per_second = 0) : speed_(bytes_per_second) {}

  // A new speed counts from now: what was booked at the old one is dropped.
  void set_speed(uint64_t bytes_per_second) {
    speed_ = bytes_per_second;
    Restart();
  }
  uint64_t speed() const { return speed_; }

  // Forgets what was booked, e.g. when the job was paused while it waited.
  void Restart() { next_ = Clock::now(); }

  // The bytes one slice allows at the set speed; 0 when unlimited.
  uint64_t SliceBytes() const { return speed_ / (std::chrono::milliseconds(1000) / kSlice); }

  // Books `bytes` and returns the time at which they may be sent: the end
  // of their slot, so that what has been sent never runs ahead of the rate.
  Clock::time_point Book(uint64_t bytes) {
    const Clock::time_point now = Clock::now();
    if (speed_ == 0) return now;
    if (next_ < now - kBurst) next_ = now - kBurst;
    next_ += std::chrono::nanoseconds(static_cast<int64_t>(static_cast<long double>(bytes) * 1e9L / speed_));
    return next_;
  }

 private:
  uint64_t speed_;
  Clock::time_point next_ = Clock::now();
};

}  // namespace corfs::jobs
