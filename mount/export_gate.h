#pragma once
// ExportGate: lets guest changes to one image through, or holds them off for
// good while the image is exported (`image-export-prep`): the disk a server
// exports through the mount must not change under the client that copies
// it (post-copy migration, docs/migration.md).
//
// Every guest change (write, discard, truncate) enters the gate before it
// touches the overlay and leaves it after; Close refuses later changes and
// then waits until the ones that had entered have left, so once it returns
// no guest change is in flight or to come, and a Flush after it makes the
// exported disk durable and final. Enter counts itself in before it reads
// the flag and Close sets the flag before it reads the count (both
// sequentially consistent), so a change either sees the gate closed or is
// seen by Close: none slips between them. Reads never enter; a read that
// faults clusters in does not change what the guest sees.
//
// Threading: Enter and Leave are called by FUSE request threads (two atomic
// operations, no lock); Close and Open by the control socket's thread, one at
// a time (the session's control mutex).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace corfs::mount {

class ExportGate {
 public:
  // True: the change may go ahead, and the caller must call Leave after it.
  // False: the gate is closed (EROFS); nothing to leave.
  bool Enter() {
    in_flight_.fetch_add(1, std::memory_order_seq_cst);
    if (closed_.load(std::memory_order_seq_cst)) {
      Leave();
      return false;
    }
    return true;
  }
  void Leave() { in_flight_.fetch_sub(1, std::memory_order_release); }

  // Refuses every later change and waits for those in flight: guest
  // requests are short (one FUSE request each), so a sleep of a
  // millisecond between looks costs nothing worth a condition variable on
  // the write path.
  void Close() {
    closed_.store(true, std::memory_order_seq_cst);
    while (in_flight_.load(std::memory_order_seq_cst) != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  void Open() { closed_.store(false, std::memory_order_seq_cst); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 private:
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> in_flight_{0};
};

// Holds the gate for one guest change; entered() false means refused.
class ExportGateEntry {
 public:
  explicit ExportGateEntry(ExportGate& gate) : gate_(gate), entered_(gate.Enter()) {}
  ~ExportGateEntry() {
    if (entered_) gate_.Leave();
  }
  ExportGateEntry(const ExportGateEntry&) = delete;
  ExportGateEntry& operator=(const ExportGateEntry&) = delete;
  bool entered() const { return entered_; }

 private:
  ExportGate& gate_;
  bool entered_;
};

}  // namespace corfs::mount
