#pragma once
// SignalThread: a thread that takes one signal (SIGHUP, for re-reading the
// configuration) through a signalfd and runs a callback for each arrival,
// on that thread, so the callback may do anything (open files, take locks)
// that a signal handler may not. The signal must be blocked in every thread
// of the process (cli/signal_mask.h blocks it before any thread starts),
// or some thread would take it the ordinary way instead. Signals that
// arrive while the callback runs make one more call after it.

#include <functional>
#include <memory>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"

namespace corfs::cli {

class SignalThread {
 public:
  static Status Start(int signal, std::function<void()> on_signal, std::unique_ptr<SignalThread>* out);
  ~SignalThread();  // stops the thread (after a callback under way) and joins it
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  SignalThread() = default;
  void Loop();

  std::function<void()> on_signal_;
  UniqueFd signal_fd_;
  UniqueFd stop_fd_;  // eventfd: stop
  std::thread thread_;
};

}  // namespace corfs::cli
