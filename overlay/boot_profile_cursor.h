#pragma once
// BootProfileCursor: where a guest is in a boot profile (boot_profile.h)
// that a stream replays, told by the guest's reads: the furthest range of
// the profile it has read. A replaying stream (jobs/stream_driver.h) skips
// the ranges behind that point (the guest read them: they are local) and
// keeps a window in front of it.
//
// Threading: NoteRead may be called from any number of threads at once (a
// binary search, a clock read and, when the guest moved on, a
// compare-and-swap; no lock); the rest from any thread. The profile itself
// never changes.
//
// The clock is the steady clock unless the cursor is given another (a test
// that holds the time still, so that "the guest reads" does not depend on
// how fast the machine runs it).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "overlay/boot_profile.h"

namespace corfs::overlay {

class BootProfileCursor {
 public:
  using Clock = std::chrono::steady_clock;
  using NowFunction = std::function<Clock::time_point()>;

  explicit BootProfileCursor(BootProfile profile, NowFunction now = &Clock::now);

  const BootProfile& profile() const { return profile_; }
  size_t ranges() const { return profile_.ranges.size(); }
  // Bytes of the profile's ranges before range `index` (index <= ranges()).
  uint64_t BytesBefore(size_t index) const { return prefix_[index]; }
  uint64_t bytes() const { return prefix_.back(); }

  // A guest read of [offset, offset + length).
  void NoteRead(uint64_t offset, uint64_t length);
  // One past the furthest range of the profile the guest has read; 0 before.
  size_t guest_index() const { return guest_index_.load(std::memory_order_relaxed); }
  // How long since the guest last read a range of the profile; nullopt
  // before it read one.
  std::optional<Clock::duration> IdleFor(Clock::time_point now) const;
  // The cursor's clock: the time NoteRead stamps and IdleFor is asked at.
  Clock::time_point Now() const { return now_(); }

 private:
  void NoteAt(uint64_t offset);

  struct Span {
    uint64_t offset;
    uint64_t end;
    size_t index;  // in the profile's order
  };

  const BootProfile profile_;
  const NowFunction now_;
  std::vector<uint64_t> prefix_;  // ranges() + 1 entries
  std::vector<Span> by_offset_;   // the ranges sorted by offset
  std::atomic<size_t> guest_index_{0};
  std::atomic<int64_t> last_read_{0};  // steady ns; 0: none yet
};

}  // namespace corfs::overlay
