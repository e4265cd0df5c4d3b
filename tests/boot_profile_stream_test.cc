// A stream that replays a boot profile (jobs/stream_driver.h) copies the
// profile's ranges first, in the profile's order, skips those behind the
// guest, then the rest in disk order; query-block-jobs' profile fields say
// how far it is.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
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

}  // namespace
}  // namespace corfs::jobs
