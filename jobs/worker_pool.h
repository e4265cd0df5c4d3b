#pragma once
// WorkerPool: the one TBB task arena that every job's copying runs in, so
// several images streaming at once share `workers` threads instead of each
// bringing its own.

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_scheduler_observer.h>

#include "jobs/background_thread.h"

namespace corfs::jobs {

class WorkerPool {
 public:
  // workers = 0: one per core.
  explicit WorkerPool(unsigned workers)
      : workers_(workers != 0 ? workers : std::max(1u, std::thread::hardware_concurrency())),
        arena_(static_cast<int>(workers_)),
        slices_(arena_) {}

  unsigned workers() const { return workers_; }

  // Runs body(i) for i in [0, count) on the pool and waits for all.
  template <typename Body>
  void ParallelFor(size_t count, const Body& body) {
    // One item (a stream while guests do I/O) runs on the calling thread:
    // entering the arena would wake a worker that spins for work on a core
    // the guests' threads need.
    if (count == 1) {
      body(0);
      return;
    }
    arena_.execute([&] { tbb::parallel_for(size_t{0}, count, [&](size_t i) { body(i); }); });
  }

  // The same with `in_flight` bodies running at once: on the pool when it
  // has that many workers, else (bodies that wait on a server) on threads
  // of their own, ParallelForWaiting.
  template <typename Body>
  void ParallelFor(size_t count, unsigned in_flight, const Body& body) {
    if (in_flight > workers_ && count > 1) {
      ParallelForWaiting(count, in_flight, body);
    } else {
      ParallelFor(count, body);
    }
  }

  // For bodies that mostly wait on a server (a job's writes to an
  // NBD target): on `threads` plain threads of their own, started for the
  // call, so more requests are in flight than the pool has workers. A
  // thread that waits for a reply takes no core, and a request's round trip
  // is what limits such a copy, not the CPU.
  template <typename Body>
  static void ParallelForWaiting(size_t count, unsigned threads, const Body& body) {
    std::atomic<size_t> next{0};
    auto run = [&] {
      for (size_t i = next++; i < count; i = next++) body(i);
    };
    std::vector<std::jthread> helpers;
    const size_t helper_count = std::min<size_t>(threads, count) - (count > 0 ? 1 : 0);
    helpers.reserve(helper_count);
    for (size_t t = 0; t < helper_count; ++t) helpers.emplace_back(run);
    run();  // the caller is one of them; the helpers join at the end of scope
  }

 private:
  // TBB's worker threads serve every arena of the process (guest reads of
  // qcow2 images too), so they take long slices only while they work here
  // (see background_thread.h); the threads that call ParallelFor are job
  // drivers, which have them already.
  class SliceObserver final : public tbb::task_scheduler_observer {
   public:
    explicit SliceObserver(tbb::task_arena& arena) : tbb::task_scheduler_observer(arena) { observe(true); }
    ~SliceObserver() override { observe(false); }
    void on_scheduler_entry(bool is_worker) override {
      if (is_worker) UseLongSlices();
    }
    void on_scheduler_exit(bool is_worker) override {
      if (is_worker) UseDefaultSlices();
    }
  };

  unsigned workers_;
  tbb::task_arena arena_;
  SliceObserver slices_;
};

}  // namespace corfs::jobs
