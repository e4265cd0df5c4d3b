#pragma once
// CommitThread: the overlay's background commit. It calls `commit` about
// once per `interval` until it is stopped, so what was written reaches the
// disk within about that long even if nobody flushes.
//
// Threading: `commit` runs on the thread this starts, with no lock of this
// class held. Stop (and the destructor) may be called from any one thread;
// it returns once the thread has ended, after a commit under way finished.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace corfs::overlay {

class CommitThread {
 public:
  CommitThread(std::chrono::milliseconds interval, std::function<void()> commit);
  CommitThread(const CommitThread&) = delete;
  CommitThread& operator=(const CommitThread&) = delete;
  ~CommitThread() { Stop(); }

  void Stop();

 private:
  void Run(const std::stop_token& stop);

  const std::chrono::milliseconds interval_;
  const std::function<void()> commit_;
  // Only for sleeping until the interval passes or a stop is requested:
  // held by nobody else, and never while committing.
  std::mutex mutex_;
  std::condition_variable_any wakeup_;
  std::jthread thread_;  // last member: started once the others exist
};

}  // namespace corfs::overlay
