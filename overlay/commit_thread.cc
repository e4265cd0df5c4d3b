#include "overlay/commit_thread.h"

namespace corfs::overlay {

CommitThread::CommitThread(std::chrono::milliseconds interval, std::function<void()> commit)
    : interval_(interval), commit_(std::move(commit)), thread_([this](const std::stop_token& stop) { Run(stop); }) {}

void CommitThread::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void CommitThread::Run(const std::stop_token& stop) {
  std::unique_lock lock(mutex_);
  while (!stop.stop_requested()) {
    wakeup_.wait_for(lock, stop, interval_, [&] { return stop.stop_requested(); });
    if (stop.stop_requested()) break;
    lock.unlock();
    commit_();
    lock.lock();
  }
}

}  // namespace corfs::overlay
