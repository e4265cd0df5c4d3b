// ReadAhead (read_ahead.h) on its own, with a fake fill that stands for a
// slow server: its fillers keep several pieces in flight at once (never
// more than asked), take the pieces nearest the guest first, and its
// window grows to kMaxWindow ahead of a guest reading in order. No timing
// is asserted: a fill that blocks until enough others are in flight shows
// the parallelism, and fails (after a generous bound) when it is missing.

#include "overlay/read_ahead.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kDisk = 1024 * kMiB;

// Records the pieces filled and how many were in flight at once. With
// `hold` > 1 a fill returns only once `hold` fills are in flight together
// (or after a bound far longer than any test needs: then `timed_out`).
class FakeFill {
 public:
  explicit FakeFill(unsigned hold = 1) : hold_(hold) {}

  void operator()(uint64_t offset, uint64_t length) {
    std::unique_lock lock(mutex_);
    pieces_.emplace_back(offset, length);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    if (in_flight_ >= hold_) released_ = true;
    changed_.notify_all();
    if (!changed_.wait_for(lock, 30s, [&] { return released_; })) timed_out_ = true;
    --in_flight_;
  }

  unsigned max_in_flight() {
    std::lock_guard lock(mutex_);
    return max_in_flight_;
  }
  bool timed_out() {
    std::lock_guard lock(mutex_);
    return timed_out_;
  }
  std::vector<std::pair<uint64_t, uint64_t>> pieces() {
    std::lock_guard lock(mutex_);
    return pieces_;
  }

 private:
  const unsigned hold_;
  std::mutex mutex_;
  std::condition_variable changed_;
  unsigned in_flight_ = 0;
  unsigned max_in_flight_ = 0;
  bool released_ = false;
  bool timed_out_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> pieces_;
};

// A guest reading [0, end) in order, `step` bytes a read, every read cold.
void ReadInOrder(ReadAhead& read_ahead, uint64_t end, uint64_t step) {
  for (uint64_t offset = 0; offset < end; offset += step) read_ahead.NoteRead(offset, step, /*cold=*/true);
}

TEST(ReadAheadFillers, SeveralPiecesAreInFlightAtOnce) {
  constexpr unsigned kFillers = 4;
  FakeFill fill(kFillers);
  {
    ReadAhead read_ahead([&](uint64_t offset, uint64_t length) { fill(offset, length); }, [] { return kDisk; },
                         kFillers);
    ReadInOrder(read_ahead, 4 * kMiB, kMiB);
    read_ahead.WaitIdle();
  }
  // Every filler held a piece at the same time, and no more than they.
  EXPECT_FALSE(fill.timed_out());
  EXPECT_EQ(fill.max_in_flight(), kFillers);
}

TEST(ReadAheadFillers, NeverMoreInFlightThanFillers) {
  constexpr unsigned kFillers = 3;
  FakeFill fill;  // returns at once
  {
    ReadAhead read_ahead([&](uint64_t offset, uint64_t length) { fill(offset, length); }, [] { return kDisk; },
                         kFillers);
    ReadInOrder(read_ahead, 64 * kMiB, kMiB);
    read_ahead.WaitIdle();
  }
  EXPECT_LE(fill.max_in_flight(), kFillers);
  for (const auto& [offset, length] : fill.pieces()) EXPECT_LE(length, ReadAhead::kPiece) << "at " << offset;
}

TEST(ReadAheadFillers, OneFillerTakesThePiecesInOrder) {
  FakeFill fill;
  {
    ReadAhead read_ahead([&](uint64_t offset, uint64_t length) { fill(offset, length); }, [] { return kDisk; });
    ReadInOrder(read_ahead, 3 * kMiB, kMiB);
    read_ahead.WaitIdle();
  }
  const auto pieces = fill.pieces();
  ASSERT_FALSE(pieces.empty());
  EXPECT_EQ(pieces.front().first, 3 * kMiB);  // right after the guest's third read
  for (size_t i = 1; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].first, pieces[i - 1].first + pieces[i - 1].second) << "piece " << i;
  }
}

TEST(ReadAheadFillers, TheWindowGrowsToTheMaximum) {
  FakeFill fill;
  constexpr uint64_t kRead = 512 << 10;
  constexpr uint64_t kGuestEnd = 256 * kMiB;
  {
    ReadAhead read_ahead([&](uint64_t offset, uint64_t length) { fill(offset, length); }, [] { return kDisk; }, 2);
    ReadInOrder(read_ahead, kGuestEnd, kRead);
    read_ahead.WaitIdle();
  }
  uint64_t end = 0;
  for (const auto& [offset, length] : fill.pieces()) end = std::max(end, offset + length);
  // Ahead of the guest by at least half the largest window, and by no more
  // than one window and a half.
  EXPECT_GE(end, kGuestEnd + ReadAhead::kMaxWindow / 2);
  EXPECT_LE(end, kGuestEnd + ReadAhead::kMaxWindow * 3 / 2);
}

TEST(ReadAheadFillers, StopsAtTheEndOfTheDisk) {
  FakeFill fill;
  constexpr uint64_t kSmallDisk = 5 * kMiB + 4096;
  {
    ReadAhead read_ahead([&](uint64_t offset, uint64_t length) { fill(offset, length); }, [] { return kSmallDisk; }, 4);
    ReadInOrder(read_ahead, 5 * kMiB, kMiB);
    read_ahead.WaitIdle();
  }
  uint64_t end = 0;
  for (const auto& [offset, length] : fill.pieces()) {
    EXPECT_LE(offset + length, kSmallDisk);
    end = std::max(end, offset + length);
  }
  EXPECT_EQ(end, kSmallDisk);  // up to the last partial MiB, not past it
}

}  // namespace
}  // namespace corfs::overlay
