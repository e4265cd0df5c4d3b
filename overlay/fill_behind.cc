#include "overlay/fill_behind.h"

#include <sys/resource.h>
#include <unistd.h>

#include <utility>

namespace corfs::overlay {

FillBehind::~FillBehind() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool FillBehind::Offer(ClaimedRun& run, uint64_t bytes) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || (queued_bytes_ > 0 && queued_bytes_ + bytes > max_queued_)) return false;
    queue_.push_back(Item{std::move(run), bytes});
    queued_bytes_ += bytes;
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  }
  work_.notify_one();
  return true;
}

void FillBehind::WaitIdle() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [this] { return queued_bytes_ == 0; });
}

Status FillBehind::TakeFailure() {
  std::lock_guard lock(mutex_);
  return std::exchange(failure_, Status::Ok());
}

void FillBehind::Run() {
  // Asked, not required: refused without CAP_SYS_NICE, and the thread then
  // runs at the process's priority.
  if (nice_ != 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice_);
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued is copied
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Status status = fill_(item.run);
    { ClaimedRun done = std::move(item.run); }  // the claims go before the count says idle
    lock.lock();
    if (!status.ok() && failure_.ok()) failure_ = std::move(status);
    queued_bytes_ -= item.bytes;
    if (queued_bytes_ == 0) idle_.notify_all();
  }
}

}  // namespace corfs::overlay
