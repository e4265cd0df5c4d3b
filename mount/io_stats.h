#pragma once
// IoStats: the guest I/O of one image as the FUSE server served it, what
// QMP's query-blockstats reports: for reads, writes, flushes and discards,
// the bytes, the requests that succeeded and their total time, and the
// requests that failed.
//
// Threading: Record may be called from every FUSE request thread at once
// and takes no lock (relaxed atomics: each counter is exact, but a Get taken
// while requests run may see one request's bytes before its count). Each
// kind has its own cache line, so reads and writes served on different
// threads do not bounce one line between their CPUs.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

namespace corfs::mount {

enum class IoKind { kRead, kWrite, kFlush, kDiscard };
inline constexpr size_t kIoKindCount = 4;

struct IoCounts {
  uint64_t bytes = 0;
  uint64_t operations = 0;     // succeeded
  uint64_t total_time_ns = 0;  // of the requests that succeeded
  uint64_t failed = 0;
};

class IoStats {
 public:
  void Record(IoKind kind, uint64_t bytes, std::chrono::nanoseconds time, bool ok) {
    Counters& c = counters_[static_cast<size_t>(kind)];
    if (!ok) {
      c.failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    c.bytes.fetch_add(bytes, std::memory_order_relaxed);
    c.operations.fetch_add(1, std::memory_order_relaxed);
    c.time_ns.fetch_add(static_cast<uint64_t>(time.count()), std::memory_order_relaxed);
  }

  IoCounts Get(IoKind kind) const {
    const Counters& c = counters_[static_cast<size_t>(kind)];
    return {c.bytes.load(std::memory_order_relaxed), c.operations.load(std::memory_order_relaxed),
            c.time_ns.load(std::memory_order_relaxed), c.failed.load(std::memory_order_relaxed)};
  }

 private:
  struct alignas(64) Counters {
    std::atomic<uint64_t> bytes{0};
    std::atomic<uint64_t> operations{0};
    std::atomic<uint64_t> time_ns{0};
    std::atomic<uint64_t> failed{0};
  };
  std::array<Counters, kIoKindCount> counters_;
};

}  // namespace corfs::mount
