#pragma once
// RangeLock: byte ranges of a disk held by one thread at a time, for the
// read-then-write copies of a mirror (jobs/mirror_hook.h): a copy of a range
// (its read of the source and its write to the target) never interleaves
// with another copy of an overlapping range, so the one that reads last
// also writes last. QEMU's mirror keeps its in-flight operations the same
// way (wait_for_overlapping_requests).
//
// Threading: any thread. A thread holds at most one range at a time, so
// waiting cannot deadlock. Ranges held at once are few (the copies in
// flight: the job's batch and the guest writes being mirrored), so a list
// is enough.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace corfs::jobs {

class RangeLock {
 public:
  // Holds [offset, offset + length) while it lives.
  class Held {
   public:
    Held(RangeLock& lock, uint64_t offset, uint64_t length) : lock_(lock), id_(lock.Acquire(offset, length)) {}
    ~Held() { lock_.Release(id_); }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    RangeLock& lock_;
    const uint64_t id_;
  };

 private:
  struct Range {
    uint64_t id;
    uint64_t offset;
    uint64_t end;
  };

  uint64_t Acquire(uint64_t offset, uint64_t length) {
    std::unique_lock lock(mutex_);
    const uint64_t end = offset + length;
    released_.wait(lock, [&] {
      for (const Range& range : held_) {
        if (range.offset < end && offset < range.end) return false;
      }
      return true;
    });
    const uint64_t id = next_id_++;
    held_.push_back({id, offset, end});
    return id;
  }

  void Release(uint64_t id) {
    {
      std::lock_guard lock(mutex_);
      for (size_t i = 0; i < held_.size(); ++i) {
        if (held_[i].id == id) {
          held_[i] = held_.back();
          held_.pop_back();
          break;
        }
      }
    }
    released_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<Range> held_;
  uint64_t next_id_ = 0;
};

}  // namespace corfs::jobs
