#include "cli/signal_thread.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>

namespace corfs::cli {

Status SignalThread::Start(int signal, std::function<void()> on_signal, std::unique_ptr<SignalThread>* out) {
  std::unique_ptr<SignalThread> thread(new SignalThread());
  thread->on_signal_ = std::move(on_signal);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  thread->signal_fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!thread->signal_fd_.valid()) return Status::FromErrno("signalfd");
  thread->stop_fd_.reset(::eventfd(0, EFD_CLOEXEC));
  if (!thread->stop_fd_.valid()) return Status::FromErrno("eventfd");
  thread->thread_ = std::thread([t = thread.get()] { t->Loop(); });
  *out = std::move(thread);
  return Status::Ok();
}

SignalThread::~SignalThread() {
  const uint64_t one = 1;
  (void)!::write(stop_fd_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void SignalThread::Loop() {
  while (true) {
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    // Take every arrival queued so far; they make one call.
    bool arrived = false;
    signalfd_siginfo info;
    while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) arrived = true;
    if (arrived) on_signal_();
  }
}

}  // namespace corfs::cli
