#pragma once
// WriteGate: lets a caller run something at a moment when no guest write is
// under way, so that every write either finished before it or starts after
// it. A backup needs that moment: the disk it copies is the disk as of
// then, and its copy-before-write hook (and the swap of a dirty bitmap into
// its successor) must see every write that changes the disk afterwards. A
// write hook installed while a write is under way would otherwise miss the
// write that took its snapshot of the hooks before (overlay.h,
// AddWriteHook).
//
// Threading: Enter/Leave on guest request threads, several at once;
// Quiesce from any thread. Quiesce stops new writes from entering, waits
// for those inside to leave, runs its function and lets writes in again.
// The function must not wait for a guest write (none can progress).

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

namespace corfs::overlay {

class WriteGate {
 public:
  // A guest write inside the gate, for as long as it lives.
  class Pass {
   public:
    explicit Pass(WriteGate& gate) : gate_(gate) { gate_.Enter(); }
    ~Pass() { gate_.Leave(); }
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;

   private:
    WriteGate& gate_;
  };

  void Enter() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return quiescing_ == 0; });
    ++inside_;
  }

  void Leave() {
    std::lock_guard lock(mutex_);
    if (--inside_ == 0 && quiescing_ != 0) changed_.notify_all();
  }

  void Quiesce(const std::function<void()>& at_quiet_moment) {
    std::unique_lock lock(mutex_);
    // One quiescer at a time: a second waits for the first to reopen.
    changed_.wait(lock, [this] { return quiescing_ == 0; });
    ++quiescing_;
    changed_.wait(lock, [this] { return inside_ == 0; });
    at_quiet_moment();
    --quiescing_;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t inside_ = 0;
  uint64_t quiescing_ = 0;
};

}  // namespace corfs::overlay
