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
// to 8 MiB at each next window. Each later read of the stream that leaves
// less than half a window queued ahead of it queues the next window. A
// window never reaches past `disk_size` (the stream ends there); what is
// already local or claimed is `fill`'s to skip (Overlay::Populate without
// waiting), so guest writes are never overwritten.
//
// The pattern breaking stops it: a read that matches no stream takes the
// place of the least recently used one, whose queued windows are dropped;
// after kMaxMisses warm reads in a row that match no stream, every stream
// is dropped. With no stream active, a warm read costs one atomic load.
//
// Threading: NoteRead and WaitIdle may be called from several threads at
// once. `fill` runs on the one thread this starts on the first window, with
// no lock of this class held, a piece of at most kPiece bytes at a time.
// The destructor stops the thread, after the piece under way.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace corfs::overlay {

class ReadAhead {
 public:
  using Fill = std::function<void(uint64_t offset, uint64_t length)>;
  using DiskSize = std::function<uint64_t()>;

  static constexpr uint64_t kMinWindow = 2 << 20;
  static constexpr uint64_t kMaxWindow = 8 << 20;
  static constexpr uint64_t kBehind = 1 << 20;
  static constexpr uint64_t kGap = 256 << 10;
  static constexpr int kColdReadsToStart = 3;
  static constexpr uint64_t kPiece = 1 << 20;
  static constexpr int kStreams = 4;
  static constexpr int kMaxMisses = 64;

  ReadAhead(Fill fill, DiskSize disk_size) : fill_(std::move(fill)), disk_size_(std::move(disk_size)) {}
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
  void Run(const std::stop_token& stop);

  const Fill fill_;
  const DiskSize disk_size_;
  // Streams whose `ahead` is set: the warm reads' fast path. Changed under mutex_.
  std::atomic<int> active_{0};
  std::mutex mutex_;
  std::condition_variable_any queued_;  // a window queued, or a stop
  std::condition_variable idle_;        // the queue ran empty
  Stream streams_[kStreams];
  std::deque<Window> queue_;
  bool filling_ = false;
  uint64_t clock_ = 0;
  int misses_ = 0;
  std::jthread thread_;  // started with the first window
};

}  // namespace corfs::overlay
