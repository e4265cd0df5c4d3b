#pragma once
// WriteBehind: keeps a copy's footprint in the page cache to a few MiB.
//
// A stream writes the whole disk once and rarely reads it back soon. Left
// alone, every byte it copies stays in the page cache as a new page: the
// stream then runs at the rate the machine hands out new memory, and it
// pushes the guests' own cached data out. On virtual machines whose freed
// memory goes back to the host that rate is low (about 350 MB/s measured on
// a 2-core VM, against more than 1 GB/s for pages that are reused), and the
// host faults also stall the threads that serve guests.
//
// So, as the stream goes: once `batch` contiguous bytes are written their
// writeback starts (sync_file_range), and once more than `window` bytes are
// under way the oldest batch is waited for and dropped from the cache
// (POSIX_FADV_DONTNEED). The same few MiB of memory are then used again and
// again, and the final fdatasync has little left to do. Batches rather than
// every chunk on its own: each writeback ends in completion work (on ext4,
// a kernel worker converting the new extents) that takes a CPU from whoever
// runs there; fewer, larger writebacks made the 4 KiB read p99 of a guest
// during a stream lower.
//
// This is a hint, never part of durability: errors are ignored here. It
// uses a descriptor of its own for the data file because the kernel reports
// a writeback error once per open file; the overlay's fdatasync on its own
// descriptor still sees any error that happened under this one.
//
// A mirror's file target is written the same way (a whole disk, in disk
// order, not read back), so it uses one too.
//
// Threading: one thread (the job's driver thread) uses it; it is not
// thread-safe.

#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

#include "common/unique_fd.h"

namespace corfs::overlay {

// The batch and window the jobs use. On the 2-core VM we measured, windows
// of 4-32 MiB streamed equally fast (256 MiB was 1.5x slower), and guests'
// 4 KiB reads during a stream had a lower p99 with 16 MiB batches than with
// 4 MiB ones (fewer writeback completions).
inline constexpr uint64_t kWriteBehindBatch = 16ull << 20;
inline constexpr uint64_t kWriteBehindWindow = 32ull << 20;

class WriteBehind {
 public:
  WriteBehind(UniqueFd fd, uint64_t batch, uint64_t window) : fd_(std::move(fd)), batch_(batch), window_(window) {}

  // One for the file open as `fd` (an overlay's data file, a job's target),
  // through a descriptor of its own; nullptr when it cannot be opened (then
  // the writer goes without: this is a hint).
  static std::unique_ptr<WriteBehind> ForFile(int fd, uint64_t batch, uint64_t window);

  // [offset, offset + length) of the data file was just written.
  void Written(uint64_t offset, uint64_t length);

 private:
  // Starts the writeback of the pending batch; waits for and drops the
  // oldest ones beyond the window.
  void StartPending();

  UniqueFd fd_;
  const uint64_t batch_;
  const uint64_t window_;
  uint64_t pending_offset_ = 0;  // written, writeback not started yet
  uint64_t pending_length_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> in_flight_;  // offset, length
  uint64_t in_flight_bytes_ = 0;
};

}  // namespace corfs::overlay
