#pragma once
// WorkerPool: the one TBB task arena that every job's copying runs in, so
// several images streaming at once share `workers` threads instead of each
// bringing its own.

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <thread>

namespace corfs::jobs {

class WorkerPool {
 public:
  // workers = 0: one per core.
  explicit WorkerPool(unsigned workers)
      : workers_(workers != 0 ? workers : std::max(1u, std::thread::hardware_concurrency())), arena_(workers_) {}

  unsigned workers() const { return workers_; }

  // Runs body(i) for i in [0, count) on the pool and waits for all.
  template <typename Body>
  void ParallelFor(size_t count, const Body& body) {
    arena_.execute([&] {
      tbb::parallel_for(size_t{0}, count, [&](size_t i) { body(i); });
    });
  }

 private:
  unsigned workers_;
  tbb::task_arena arena_;
};

}  // namespace corfs::jobs
