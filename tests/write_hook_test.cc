// The seam for jobs that see every guest write (write_hook.h) and the dirty
// bitmap they keep (dirty_bitmap.h).

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "overlay/dirty_bitmap.h"
#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kCluster = 64 * 1024;

TEST(DirtyBitmapTest, SetMarksEveryTouchedChunkAndCountsBytes) {
  DirtyBitmap bitmap(10 * kCluster + 100, kCluster);
  EXPECT_EQ(bitmap.bits(), 11u);
  EXPECT_EQ(bitmap.DirtyBytes(), 0u);
  bitmap.Set(kCluster - 1, 2);  // chunks 0 and 1
  EXPECT_TRUE(bitmap.Test(0));
  EXPECT_TRUE(bitmap.Test(kCluster));
  EXPECT_FALSE(bitmap.Test(2 * kCluster));
  EXPECT_EQ(bitmap.DirtyBytes(), 2 * kCluster);
  bitmap.Set(0, 1);  // already marked: counted once
  EXPECT_EQ(bitmap.DirtyBytes(), 2 * kCluster);
  bitmap.Set(10 * kCluster, 50);  // the short last chunk
  EXPECT_EQ(bitmap.DirtyBytes(), 2 * kCluster + 100);
  bitmap.SetAll();
  EXPECT_EQ(bitmap.DirtyBytes(), 10 * kCluster + 100);
  bitmap.ClearAll();
  EXPECT_EQ(bitmap.DirtyBytes(), 0u);
}

TEST(DirtyBitmapTest, TakeRunClearsWhatItHandsOut) {
  DirtyBitmap bitmap(200 * kCluster, kCluster);
  bitmap.Set(3 * kCluster, 4 * kCluster);    // chunks 3..6
  bitmap.Set(70 * kCluster, 70 * kCluster);  // chunks 70..139, across words
  uint64_t offset = 0;
  uint64_t length = 0;
  ASSERT_TRUE(bitmap.TakeRun(0, 100 * kCluster, &offset, &length));
  EXPECT_EQ(offset, 3 * kCluster);
  EXPECT_EQ(length, 4 * kCluster);
  ASSERT_TRUE(bitmap.TakeRun(offset + length, 16 * kCluster, &offset, &length));
  EXPECT_EQ(offset, 70 * kCluster);
  EXPECT_EQ(length, 16 * kCluster) << "at most max_length";
  EXPECT_EQ(bitmap.DirtyBytes(), 54 * kCluster);
  bitmap.Set(4 * kCluster, 1);  // written again after it was taken
  ASSERT_TRUE(bitmap.TakeRun(0, 1, &offset, &length));
  EXPECT_EQ(offset, 4 * kCluster);
  EXPECT_EQ(length, kCluster) << "at least one chunk";
  ASSERT_TRUE(bitmap.TakeRun(0, ~uint64_t{0}, &offset, &length));
  EXPECT_EQ(offset, 86 * kCluster);
  EXPECT_EQ(length, 54 * kCluster);
  EXPECT_FALSE(bitmap.TakeRun(0, ~uint64_t{0}, &offset, &length));
}

TEST(DirtyBitmapTest, SerializeRoundTrips) {
  DirtyBitmap bitmap(100 * kCluster, kCluster);
  bitmap.Set(5 * kCluster, 3 * kCluster);
  bitmap.Set(99 * kCluster, 1);
  DirtyBitmap copy(100 * kCluster, kCluster);
  ASSERT_TRUE(copy.Deserialize(bitmap.Serialize()));
  EXPECT_EQ(copy.DirtyBytes(), 4 * kCluster);
  EXPECT_TRUE(copy.Test(99 * kCluster));
  DirtyBitmap other(1000 * kCluster, kCluster);
  EXPECT_FALSE(other.Deserialize(bitmap.Serialize()));
}

TEST(DirtyBitmapTest, ConcurrentTakersNeverShareAChunk) {
  DirtyBitmap bitmap(4096 * kCluster, kCluster);
  bitmap.SetAll();
  std::mutex mutex;
  uint64_t taken = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      uint64_t offset = 0;
      uint64_t length = 0;
      while (bitmap.TakeRun(0, 3 * kCluster, &offset, &length)) {
        std::lock_guard lock(mutex);
        taken += length;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(taken, 4096 * kCluster);
  EXPECT_EQ(bitmap.DirtyBytes(), 0u);
}

// Records what it is told, and fails when asked to.
class RecordingHook : public GuestWriteHook {
 public:
  Status BeforeWrite(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(mutex_);
    calls.push_back("before " + std::to_string(offset) + "+" + std::to_string(length));
    return fail_before ? Status::Error(EIO, "hook refused") : Status::Ok();
  }
  Status AfterWrite(uint64_t offset, uint64_t length, std::span<const char> data) override {
    std::lock_guard lock(mutex_);
    calls.push_back("after " + std::to_string(offset) + "+" + std::to_string(length) +
                    (data.empty() ? " zero" : " data"));
    return Status::Ok();
  }
  std::vector<std::string> calls;
  bool fail_before = false;

 private:
  std::mutex mutex_;
};

class WriteHookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(9);
    base_ = testing::MakeRandomSparseLayer(dir_.File("base.raw"), 16 * kCluster, rng, 0.5);
    CreateOptions create;
    create.backing = {{base_.path, ""}};
    create.cluster_size = kCluster;
    ASSERT_TRUE(Overlay::Create(path_, create).ok());
    OpenOptions open;
    open.commit_interval = 0ms;
    ASSERT_TRUE(Overlay::Open(path_, open, &image_).ok());
  }

  testing::TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  testing::SparseLayer base_;
  std::unique_ptr<Overlay> image_;
};

TEST_F(WriteHookTest, WritesAndDiscardsCallTheHooksAroundTheChange) {
  auto hook = std::make_shared<RecordingHook>();
  image_->AddWriteHook(hook);
  ASSERT_TRUE(image_->Write(100, std::string(10, 'a')).ok());
  ASSERT_TRUE(image_->Discard(kCluster, kCluster).ok());
  std::string buf(10, '\0');
  ASSERT_TRUE(image_->Read(100, buf).ok());  // reads are not writes
  EXPECT_EQ(hook->calls, (std::vector<std::string>{"before 100+10", "after 100+10 data", "before 65536+65536",
                                                   "after 65536+65536 zero"}));
  EXPECT_EQ(image_->Resize(32 * kCluster).code(), EBUSY) << "a job copies a disk of a fixed size";
  image_->RemoveWriteHook(hook.get());
  ASSERT_TRUE(image_->Write(0, std::string(1, 'b')).ok());
  EXPECT_EQ(hook->calls.size(), 4u);
  EXPECT_TRUE(image_->Resize(32 * kCluster).ok());
}

TEST_F(WriteHookTest, AFailedBeforeWriteChangesNothing) {
  auto hook = std::make_shared<RecordingHook>();
  hook->fail_before = true;
  image_->AddWriteHook(hook);
  std::string before(kCluster, '\0');
  ASSERT_TRUE(image_->Read(0, before).ok());
  EXPECT_EQ(image_->Write(0, std::string(kCluster, 'z')).code(), EIO);
  std::string after(kCluster, '\0');
  ASSERT_TRUE(image_->Read(0, after).ok());
  EXPECT_EQ(before, after);
  EXPECT_EQ(hook->calls.size(), 1u) << "no AfterWrite for a write that did not happen";
}

}  // namespace
}  // namespace corfs::overlay
