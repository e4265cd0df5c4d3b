// The one-shot write threshold (QEMU's block-set-write-threshold): fires
// once when the overlay's allocation passes it, by writes, copy-on-read or
// streaming alike, then turns itself off.

#include <gtest/gtest.h>

#include <mutex>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kCluster = 64 * 1024;

class WriteThresholdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(5);
    base_ = testing::MakeRandomSparseLayer(dir_.File("base.raw"), 32 * kCluster, rng, 0.5);
    CreateOptions create;
    create.backing = {{base_.path, ""}};
    create.cluster_size = kCluster;
    ASSERT_TRUE(Overlay::Create(path_, create).ok());
    OpenOptions open;
    open.commit_interval = 0ms;
    ASSERT_TRUE(Overlay::Open(path_, open, &image_).ok());
  }

  void Arm(uint64_t bytes) {
    image_->SetWriteThreshold(bytes, [this](uint64_t threshold, uint64_t exceeded) {
      std::lock_guard lock(mutex_);
      calls_.emplace_back(threshold, exceeded);
    });
  }
  std::vector<std::pair<uint64_t, uint64_t>> Calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  testing::SparseLayer base_;
  std::unique_ptr<Overlay> image_;
  std::mutex mutex_;
  std::vector<std::pair<uint64_t, uint64_t>> calls_;
};

TEST_F(WriteThresholdTest, FiresOnceWhenWritesPassIt) {
  Arm(2 * kCluster);
  EXPECT_EQ(image_->write_threshold(), 2 * kCluster);
  ASSERT_TRUE(image_->Write(0, std::string(10, 'a')).ok());
  ASSERT_TRUE(image_->Write(kCluster, std::string(kCluster, 'b')).ok());
  EXPECT_TRUE(Calls().empty()) << "at the threshold, not past it";
  ASSERT_TRUE(image_->Write(5 * kCluster + 7, std::string(kCluster, 'c')).ok());  // two more clusters
  ASSERT_EQ(Calls().size(), 1u);
  // Fired as soon as the first of them (a copy-on-write of cluster 5) passed it.
  EXPECT_EQ(Calls()[0], std::make_pair(2 * kCluster, kCluster));
  EXPECT_EQ(image_->write_threshold(), 0u) << "one-shot";
  ASSERT_TRUE(image_->Write(10 * kCluster, std::string(kCluster, 'd')).ok());
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(WriteThresholdTest, CopyOnReadAndPopulateCountToo) {
  Arm(kCluster);
  std::string buf(100, 'x');
  ASSERT_TRUE(image_->Read(3 * kCluster, buf).ok());  // one cluster: at the threshold
  EXPECT_TRUE(Calls().empty());
  ASSERT_TRUE(image_->Populate(8 * kCluster, 2 * kCluster, true).ok());
  ASSERT_EQ(Calls().size(), 1u);
  EXPECT_EQ(Calls()[0].first, kCluster);
  EXPECT_EQ(Calls()[0].second, 2 * kCluster);

  // Re-armed below what is held already: fires at the next allocation.
  Arm(kCluster);
  ASSERT_TRUE(image_->Read(20 * kCluster, buf).ok());
  ASSERT_EQ(Calls().size(), 2u);
  EXPECT_EQ(Calls()[1].second, 3 * kCluster);
}

}  // namespace
}  // namespace corfs::overlay
