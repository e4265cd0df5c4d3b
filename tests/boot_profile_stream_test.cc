// A stream that replays a boot profile (jobs/stream_driver.h) copies the
// profile's ranges first, in the profile's order, skips those behind the
// guest, then the rest in disk order; query-block-jobs' profile fields say
// how far it is. While the guest reads, the pass stays at most 8 MiB of the
// profile in front of it (checked after every batch, on what the template
// was asked for, with the cursor's clock held still: no timing).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>

#include "jobs/job_driver.h"
#include "jobs/stream_driver.h"
#include "jobs/worker_pool.h"
#include "overlay/boot_profile_cursor.h"
#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::jobs {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kSize = 8ull << 20;

// Copies one cluster per step (a tiny slice), so the order of the template's
// reads is the order of the stream's steps.
class OneClusterContext final : public JobContext {
 public:
  bool Checkpoint() override { return true; }
  bool Throttle(uint64_t) override { return true; }
  uint64_t SliceBytes() const override { return 1; }
  bool Delay(std::chrono::milliseconds) override { return true; }
  void SetRange(uint64_t) override {}
  void Advance(const StepProgress& step) override { copied += step.copied; }
  void SetRemaining(uint64_t) override {}
  void EnterReady() override {}
  Status RunStep(Status result, const std::function<Status()>&, ClassifyError, bool*) override { return result; }
  bool cancel_requested() const override { return false; }
  bool interrupted() const override { return false; }
  uint64_t copied = 0;
};

class ProfileStream : public ::testing::Test {
 protected:
  void SetUp() override {
    template_path_ = dir_.File("template.raw");
    std::mt19937_64 rng(testing::TestSeed());
    const std::string content = testing::RandomBytes(rng, kSize);
    std::ofstream(template_path_, std::ios::binary).write(content.data(), static_cast<std::streamsize>(kSize));
    overlay::CreateOptions create;
    create.backing = {{template_path_, "raw"}};
    create.cluster_size = kCluster;
    ASSERT_TRUE(overlay::Overlay::Create(dir_.File("vm.img"), create).ok());
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    open.opener = testing::TestOpener(control_);
    ASSERT_TRUE(overlay::Overlay::Open(dir_.File("vm.img"), open, &image_).ok());
  }

  std::shared_ptr<overlay::BootProfileCursor> Cursor() {
    overlay::BootProfile profile;
    profile.cluster_size = kCluster;
    profile.layers = overlay::TemplateOf(image_->header());
    profile.ranges = {{5 * kCluster * 16, kCluster, 0},
                      {1 * kCluster * 16, 2 * kCluster, 10},
                      {7 * kCluster * 16, kCluster, 20},
                      {3 * kCluster * 16, kCluster, 30}};
    return std::make_shared<overlay::BootProfileCursor>(profile);
  }

  // The offsets of the template's reads, in order, as far as `count`.
  std::vector<uint64_t> FirstReads(size_t count) const {
    std::vector<uint64_t> offsets;
    for (const auto& read : control_->Reads()) {
      if (offsets.size() == count) break;
      offsets.push_back(read.offset);
    }
    return offsets;
  }

  testing::TempDir dir_;
  std::string template_path_;
  std::shared_ptr<testing::DriverControl> control_ = std::make_shared<testing::DriverControl>();
  std::unique_ptr<overlay::Overlay> image_;
  WorkerPool pool_{2};
};

TEST_F(ProfileStream, CopiesTheProfilesRangesFirstInItsOrderThenTheRestInDiskOrder) {
  StreamOptions options;
  options.profile = Cursor();
  std::unique_ptr<StreamDriver> driver;
  ASSERT_TRUE(StreamDriver::Make(*image_, "vm", options, pool_, &driver).ok());
  JobInfo before;
  driver->Describe(before);
  EXPECT_TRUE(before.profile);
  EXPECT_EQ(before.profile_offset, 0u);
  EXPECT_EQ(before.profile_len, 5 * kCluster);
  control_->ResetCounts();
  OneClusterContext context;
  ASSERT_TRUE(driver->Run(context).ok());
  const uint64_t m = kCluster * 16;  // 1 MiB
  EXPECT_EQ(FirstReads(7), (std::vector<uint64_t>{5 * m, 1 * m, 1 * m + kCluster, 7 * m, 3 * m, 0, kCluster}));
  EXPECT_EQ(context.copied, kSize) << "each cluster once";
  EXPECT_EQ(image_->lacking_clusters(), 0u);
  JobInfo after;
  driver->Describe(after);
  EXPECT_EQ(after.profile_offset, after.profile_len);
}

TEST_F(ProfileStream, RangesBehindTheGuestAreLeftToIt) {
  StreamOptions options;
  options.profile = Cursor();
  options.profile->NoteRead(7 * kCluster * 16, 4096);  // the guest is at range 2
  std::unique_ptr<StreamDriver> driver;
  ASSERT_TRUE(StreamDriver::Make(*image_, "vm", options, pool_, &driver).ok());
  control_->ResetCounts();
  OneClusterContext context;
  ASSERT_TRUE(driver->Run(context).ok());
  EXPECT_EQ(FirstReads(2), (std::vector<uint64_t>{3 * kCluster * 16, 0}));
}

TEST_F(ProfileStream, WithoutAProfileTheStreamGoesInDiskOrder) {
  StreamOptions options;
  std::unique_ptr<StreamDriver> driver;
  ASSERT_TRUE(StreamDriver::Make(*image_, "vm", options, pool_, &driver).ok());
  JobInfo info;
  driver->Describe(info);
  EXPECT_FALSE(info.profile);
  control_->ResetCounts();
  OneClusterContext context;
  ASSERT_TRUE(driver->Run(context).ok());
  EXPECT_EQ(FirstReads(2), (std::vector<uint64_t>{0, kCluster}));
}

// --- the window in front of the guest

constexpr uint64_t kMiB = 1ull << 20;
// The driver's bound (kProfileWindow in jobs/stream_driver.cc).
constexpr uint64_t kWindow = 8 * kMiB;
constexpr size_t kRanges = 24;

// The cursor's clock, moved only by the test: a guest whose last read is
// "now" reads for as long as the test says, however slow the machine.
class TestClock {
 public:
  overlay::BootProfileCursor::Clock::time_point Now() const {
    return overlay::BootProfileCursor::Clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  void Advance(std::chrono::nanoseconds by) { ns_ += by.count(); }

 private:
  std::atomic<int64_t> ns_{std::chrono::nanoseconds(1h).count()};  // 0 is "no read yet" to the cursor
};

// No speed limit (a batch is up to workers x 2 steps); the test watches
// every batch (Advance) and every wait in front of the guest (Delay).
class WatchedContext final : public JobContext {
 public:
  bool Checkpoint() override { return true; }
  bool Throttle(uint64_t) override { return true; }
  uint64_t SliceBytes() const override { return 0; }
  bool Delay(std::chrono::milliseconds) override {
    ++delays;
    if (on_delay) on_delay();
    return true;
  }
  void SetRange(uint64_t) override {}
  void Advance(const StepProgress&) override {
    if (on_batch) on_batch();
  }
  void SetRemaining(uint64_t) override {}
  void EnterReady() override {}
  Status RunStep(Status result, const std::function<Status()>&, ClassifyError, bool*) override { return result; }
  bool cancel_requested() const override { return false; }
  bool interrupted() const override { return false; }
  std::function<void()> on_delay;
  std::function<void()> on_batch;
  size_t delays = 0;
};

class ProfileWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string template_path = dir_.File("template.raw");
    std::mt19937_64 rng(testing::TestSeed());
    const std::string content = testing::RandomBytes(rng, 2 * kRanges * kMiB);
    std::ofstream(template_path, std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
    overlay::CreateOptions create;
    create.backing = {{template_path, "raw"}};
    create.cluster_size = kCluster;
    ASSERT_TRUE(overlay::Overlay::Create(dir_.File("vm.img"), create).ok());
    overlay::OpenOptions open;
    open.commit_interval = 0ms;
    open.opener = testing::TestOpener(control_);
    ASSERT_TRUE(overlay::Overlay::Open(dir_.File("vm.img"), open, &image_).ok());
    // 1 MiB ranges with 1 MiB between them, in a shuffled order: 24 MiB of
    // profile, three windows.
    std::vector<uint64_t> slots(kRanges);
    std::iota(slots.begin(), slots.end(), 0);
    std::shuffle(slots.begin(), slots.end(), rng);
    overlay::BootProfile profile;
    profile.cluster_size = kCluster;
    profile.layers = overlay::TemplateOf(image_->header());
    for (size_t i = 0; i < kRanges; ++i) profile.ranges.push_back({2 * slots[i] * kMiB, kMiB, i * 10});
    cursor_ = std::make_shared<overlay::BootProfileCursor>(profile, [this] { return clock_.Now(); });
  }

  // How far into the profile (its bytes) the template has been read, i.e.
  // the furthest byte of the profile the stream has copied.
  uint64_t Front() const {
    uint64_t front = 0;
    const auto& ranges = cursor_->profile().ranges;
    for (const auto& read : control_->Reads()) {
      for (size_t i = 0; i < ranges.size(); ++i) {
        const uint64_t begin = std::max(read.offset, ranges[i].offset);
        const uint64_t end = std::min(read.offset + read.length, ranges[i].offset + ranges[i].length);
        if (begin < end) front = std::max(front, cursor_->BytesBefore(i) + (end - ranges[i].offset));
      }
    }
    return front;
  }
  // The most the pass may have copied: a window past the guest's place.
  uint64_t Bound() const { return std::min(cursor_->bytes(), cursor_->BytesBefore(cursor_->guest_index()) + kWindow); }
  // The guest reads a block of range `index` of the profile.
  void GuestReads(size_t index) { cursor_->NoteRead(cursor_->profile().ranges[index].offset, 4096); }

  std::unique_ptr<StreamDriver> Driver() {
    StreamOptions options;
    options.profile = cursor_;
    // 4 MiB steps, 4 of them a batch: a batch that took the window's room
    // only at its start would run up to 3 ranges past it.
    options.chunk_size = 4 * kMiB;
    std::unique_ptr<StreamDriver> driver;
    EXPECT_TRUE(StreamDriver::Make(*image_, "vm", options, pool_, &driver).ok());
    return driver;
  }

  testing::TempDir dir_;
  TestClock clock_;
  std::shared_ptr<testing::DriverControl> control_ = std::make_shared<testing::DriverControl>();
  std::unique_ptr<overlay::Overlay> image_;
  std::shared_ptr<overlay::BootProfileCursor> cursor_;
  WorkerPool pool_{2};
};

TEST_F(ProfileWindow, WhileTheGuestReadsThePassStaysAtMostEightMiBInFrontOfIt) {
  std::unique_ptr<StreamDriver> driver = Driver();
  ASSERT_TRUE(driver);
  GuestReads(0);
  size_t guest_next = 1;
  control_->ResetCounts();
  WatchedContext context;
  context.on_batch = [&] { EXPECT_LE(Front(), Bound()) << "after a batch, the guest at range " << guest_next - 1; };
  context.on_delay = [&] {
    // The pass waits only once the window is full, and never past it.
    EXPECT_EQ(Front(), Bound()) << "waiting with the guest at range " << guest_next - 1;
    JobInfo info;
    driver->Describe(info);
    EXPECT_EQ(info.profile_offset, Bound());
    // The guest moves on by one range.
    ASSERT_LT(guest_next, kRanges);
    GuestReads(guest_next++);
  };
  ASSERT_TRUE(driver->Run(context).ok());
  // The pass waited with the guest at ranges 0 to 14; from 15 on the window
  // reaches the profile's end.
  EXPECT_EQ(context.delays, kRanges - kWindow / kMiB - 1);
  EXPECT_EQ(image_->lacking_clusters(), 0u) << "what the guest was said to read is streamed in disk order";
  JobInfo info;
  driver->Describe(info);
  EXPECT_EQ(info.profile_offset, info.profile_len);
}

TEST_F(ProfileWindow, AGuestThatStopsReadingHoldsNothingBack) {
  std::unique_ptr<StreamDriver> driver = Driver();
  ASSERT_TRUE(driver);
  GuestReads(0);
  control_->ResetCounts();
  WatchedContext context;
  context.on_delay = [&] {
    EXPECT_EQ(Front(), Bound());
    clock_.Advance(1s);  // a second without a read of the profile: the guest stopped
  };
  ASSERT_TRUE(driver->Run(context).ok());
  EXPECT_EQ(context.delays, 1u);
  EXPECT_EQ(Front(), cursor_->bytes());
  EXPECT_EQ(image_->lacking_clusters(), 0u);
}

}  // namespace
}  // namespace corfs::jobs
