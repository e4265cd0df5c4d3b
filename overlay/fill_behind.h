#pragma once
// FillBehind: copies into the overlay, on a thread of its own, the clusters
// of cold reads the guest has already been answered for (from a raw
// template's file: Overlay::FaultIn), so the threads that answer the guest
// go back to it at once.
//
// Why a thread of its own: the copies into one file are serialized by the
// file system (ext4 takes the inode's lock for every buffered write), so
// when each answering thread made its own copy after its reply, the
// threads queued on that lock, spun on it or slept and were woken one by
// one, and the next guest request waited for a free thread. One thread
// that drains a queue copies back to back while work is queued, as `cp`
// does. Measured on a cold 1 MiB O_DIRECT read of a 512 MiB raw
// template: 10% less time than the answering threads copying themselves
// (bench/README.md, "Cold read path").
//
// A queued run keeps its claims until it is copied and its bits are set
// (or, if the copy fails, released with its bits unset): a guest write to
// it waits, as for any copy-on-read; a read of it waits and then finds it
// local. At most `max_queued` bytes wait; beyond that Offer refuses, and
// the caller copies the run itself, so a guest that reads faster than one
// thread copies gets a second copier (measured: better than waiting for
// room, which held the guest to one thread's pace) instead of piling up
// claims.
//
// Its thread may run at a higher priority than the answering threads
// (`nice`, a nice value below 0): the copies into one file are the one part
// of a cold read that cannot be spread over threads, so whenever this
// thread is behind, every cold read waits for it, or makes its own copy and
// contends with it for the file. At the default priority the scheduler
// kept preempting it for the answering threads it woke; at nice -10 the
// cold 4 KiB random reads at QD16 ran 27% faster and a cold 1 MiB `dd`
// 17% faster (medians of 8 interleaved runs, bench/README.md). The
// priority is only asked for: without CAP_SYS_NICE the thread runs at the
// default, and nothing else changes.
//
// Threading: Offer, WaitIdle and TakeFailure may be called from several
// threads at once. `fill` runs on this class's thread, one run at a time,
// with no lock of this class held; the thread starts at the first Offer.
// The destructor copies what is queued, then stops the thread.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "overlay/cluster_claims.h"

namespace corfs::overlay {

class FillBehind {
 public:
  // Copies the claimed run into the overlay and sets its bits.
  using Fill = std::function<Status(const ClaimedRun& run)>;

  // `nice`: the thread's nice value (0: the process's own).
  FillBehind(uint64_t max_queued, int nice, Fill fill) : max_queued_(max_queued), nice_(nice), fill_(std::move(fill)) {}
  FillBehind(const FillBehind&) = delete;
  FillBehind& operator=(const FillBehind&) = delete;
  ~FillBehind();

  // Queues `run` (`bytes` long) and returns true, leaving `run` empty; or,
  // with `max_queued` bytes already waiting, returns false with `run`
  // untouched.
  bool Offer(ClaimedRun& run, uint64_t bytes);
  // Waits until nothing is queued or being copied.
  void WaitIdle();
  // The first failure of a queued copy since the last call, or Ok. Those
  // clusters stayed the chain's: nothing is lost but the copy.
  Status TakeFailure();

 private:
  struct Item {
    ClaimedRun run;
    uint64_t bytes;
  };
  void Run();

  const uint64_t max_queued_;
  const int nice_;
  const Fill fill_;
  std::mutex mutex_;
  std::condition_variable work_;  // queued work, or stopping
  std::condition_variable idle_;  // the queue ran dry
  std::deque<Item> queue_;
  uint64_t queued_bytes_ = 0;  // queued or being copied
  bool stopping_ = false;
  Status failure_;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace corfs::overlay
