#pragma once
// Termination signals (SIGINT, SIGTERM) must reach the thread that runs the
// FUSE loop: libfuse's handler only sets a flag, and only a signal that
// interrupts the loop's own wait makes it look (QMP `quit` sends SIGINT to
// that thread for the same reason). So a mount blocks them before it starts
// any thread (every thread it starts inherits the mask), and the main
// thread lets them in only while it runs the loop. SIGHUP stays blocked in
// every thread: the mount's SignalThread (cli/signal_thread.h) takes it
// from a signalfd and re-reads the configuration there, so no other
// thread's system calls are interrupted by it.

#include <pthread.h>
#include <signal.h>

namespace corfs::cli {

class TerminationSignals {
 public:
  // Blocks the signals in the calling thread (and the threads it starts).
  TerminationSignals() {
    sigset_t set = Set();
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~TerminationSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  TerminationSignals(const TerminationSignals&) = delete;
  TerminationSignals& operator=(const TerminationSignals&) = delete;

  // Lets them in for the calling thread for as long as the object lives.
  class Accepted {
   public:
    Accepted() {
      sigset_t set = Set();
      sigdelset(&set, SIGHUP);
      pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    }
    ~Accepted() {
      sigset_t set = Set();
      pthread_sigmask(SIG_BLOCK, &set, nullptr);
    }
    Accepted(const Accepted&) = delete;
    Accepted& operator=(const Accepted&) = delete;
  };

 private:
  static sigset_t Set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    return set;
  }
  sigset_t previous_;
};

}  // namespace corfs::cli
