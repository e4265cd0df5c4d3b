#pragma once
// ReadAhead: fills the clusters ahead of a guest that reads the disk in
// order, in the background, so that a sequential guest over a slow chain (a
// remote template, where each fill waits a round trip) finds them local
// instead of waiting for one fill per request.
//
// A stream is a run of guest reads each starting near where the ones before
// it ended: at most kBehind before (the pieces of one request served out
// of order still count) and kGap after; a few streams at once are told
// apart (parallel readers of different parts of a disk). A stream starts
// at a read that faulted clusters in (a cold read) and becomes active at
// its third cold read (random reads rarely land near one stream's end
// twice in a row, so they start nothing):
// then the window after it is queued for `fill`, 2 MiB first, doubling up
// to kMaxWindow at each next window. Each later read of the stream that
// leaves less than half a window queued ahead of it queues the next
// window. kMaxWindow covers a link's delay x bandwidth product with room
// to spare (32 MiB: 1 GB/s for 30 ms), so a guest that reads as fast as
// the link finds its clusters local. A window never reaches past
// `disk_size` (the stream ends there); what is already local or claimed is
// `fill`'s to skip (Overlay::Populate without waiting), so guest writes are
// never overwritten, and a guest read that gets to a cluster first fills
// it itself and is never queued behind the read-ahead.
//
// The pattern breaking stops it: a read that matches no stream takes the
// place of the least recently used one, whose queued windows are dropped;
// after kMaxMisses warm reads in a row that match no stream, every stream
// is dropped. With no stream active, a warm read costs one atomic load.
//
// Fills in flight: over a server each fill waits a round trip, so one
// filler at a time would bound the read-ahead at one piece per round trip
// (1 MiB / 2 ms is 500 MB/s, less the time to store it), about the pace
// of the guest it should be ahead of. `fillers` threads each take the next
// piece (kPiece bytes, nearest first) of the queued windows, so that many
// requests are in flight at once. The mount gives one filler fewer than
// the image's connections to its server, so a guest's own read always
// finds a connection free.
//
// Threading: NoteRead and WaitIdle may be called from several threads at
// once. `fill` runs on the `fillers` threads this starts on the first
// window, with no lock of this class held, a piece of at most kPiece bytes
// at a time, several pieces at once. The destructor stops the threads,
// after the pieces under way.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace corfs::overlay {

class ReadAhead {
 public:
  using Fill = std::function<void(uint64_t offset, uint64_t length)>;
  using DiskSize = std::function<uint64_t()>;

  static constexpr uint64_t kMinWindow = 2 << 20;
  static constexpr uint64_t kMaxWindow = 32 << 20;
  static constexpr uint64_t kBehind = 1 << 20;
  static constexpr uint64_t kGap = 256 << 10;
  static constexpr int kColdReadsToStart = 3;
  static constexpr uint64_t kPiece = 1 << 20;
  static constexpr int kStreams = 4;
  static constexpr int kMaxMisses = 64;
  static constexpr unsigned kMaxFillers = 16;

  // `fillers`: pieces filled at once (1 to kMaxFillers).
  ReadAhead(Fill fill, DiskSize disk_size, unsigned fillers = 1)
      : fill_(std::move(fill)), disk_size_(std::move(disk_size)), fillers_(std::clamp(fillers, 1u, kMaxFillers)) {}
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;
  ~ReadAhead();

  // A guest read of [offset, offset + length); `cold` when it had clusters
  // to fault in.
  void NoteRead(uint64_t offset, uint64_t length, bool cold) {
    if (!cold && active_.load(std::memory_order_relaxed) == 0) return;
    NoteReadSlow(offset, length, cold);
  }
  // Waits until nothing is queued or being filled.
  void WaitIdle();

 private:
  struct Stream {
    uint64_t next = 0;   // where its next read is expected
    uint64_t ahead = 0;  // the end of what was queued for it; 0: not active
    uint64_t window = kMinWindow;
    uint64_t generation = 0;  // bumped when the stream is dropped: its windows go with it
    uint64_t last_use = 0;    // 0: the slot is free
    int cold_reads = 0;
  };
  struct Window {
    int stream;
    uint64_t generation;
    uint64_t offset;
    uint64_t length;
  };

  void NoteReadSlow(uint64_t offset, uint64_t length, bool cold);
  int FindStream(uint64_t offset) const;
  void QueueNext(int index);
  void Drop(Stream& stream);
  bool Current(const Window& window) const { return streams_[window.stream].generation == window.generation; }
  void Run();

  const Fill fill_;
  const DiskSize disk_size_;
  const unsigned fillers_;
  // Streams whose `ahead` is set: the warm reads' fast path. Changed under mutex_.
  std::atomic<int> active_{0};
  std::mutex mutex_;
  std::condition_variable queued_;  // a window queued, or stopping_
  std::condition_variable idle_;    // the queue ran empty and no piece is under way
  Stream streams_[kStreams];
  std::deque<Window> queue_;
  unsigned filling_ = 0;  // pieces under way
  bool stopping_ = false;
  uint64_t clock_ = 0;
  int misses_ = 0;
  std::vector<std::jthread> threads_;  // the fillers, started with the first window
};

}  // namespace corfs::overlay
