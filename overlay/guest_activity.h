#pragma once
// GuestActivity: a running count of guest requests, shared by every image of
// a mount, so background jobs can tell whether guests are doing I/O anywhere
// on it, not only on the image they copy.
//
// It counts requests that arrived, not requests being served: those are
// the image's requests in flight (Overlay::guest_io_in_flight), which a
// stream of that image waits on; both are kept by the overlay for each
// guest request it serves.
//
// A stream that sees the count move between two of its batches copies its
// next batch with one thread instead of the whole pool, leaving the other
// cores to the threads that serve guests. Measured on 2 cores: the p99 of
// 4 KiB reads on one image while others stream fell from 4.8x to about 2.3x
// of idle, and the stream kept its speed (one copy_file_range thread already
// fills the page cache as fast as it takes new pages).

#include <atomic>
#include <cstdint>

namespace corfs::overlay {

// Threading: Note and Sample may be called from several threads at once
// (relaxed atomics; a count that comes one sample late does no harm).
class GuestActivity {
 public:
  // Called for every guest request, on the I/O path of every image: it only
  // reads the shared line while nobody has looked since the last count, so
  // busy request threads on many cores do not fight over it.
  void Note() {
    if (counted_.load(std::memory_order_relaxed)) return;
    counted_.store(true, std::memory_order_relaxed);
    requests_.fetch_add(1, std::memory_order_relaxed);
  }
  // A number that differs from the one a caller saw before if a guest
  // request came in between (it counts requests only while someone looks).
  uint64_t Sample() {
    counted_.store(false, std::memory_order_relaxed);
    return requests_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<bool> counted_{false};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace corfs::overlay
