// Streaming support in the engine, driven the way the stream job drives it
// (PlanStream, Populate of the runs to copy or zero, then DropBacking or
// ShortenChain): the disk's content never changes, only where it lives.

#include <gtest/gtest.h>

#include <cstring>

#include "jobs/stream_plan.h"
#include "overlay/overlay.h"
#include "overlay/overlay_inspect.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using jobs::PlanStream;
using jobs::StreamRun;
using jobs::StreamWork;
using testing::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kDiskSize = 2 * 1024 * 1024 + 5000;
constexpr uint64_t kTopSize = 1024 * 1024 + 700;  // shorter than the base: hides its tail
constexpr uint64_t kBaseSize = 1536 * 1024;

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = testing::TestSeed();
    std::mt19937_64 rng(seed_);
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("top.raw"), kTopSize, rng, 0.3, 0.1));
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("base.raw"), kBaseSize, rng, 0.9));
    expected_ = testing::ExpectedChainContent(layers_, kDiskSize);
    CreateOptions create;
    create.backing = {{layers_[0].path, "raw"}, {layers_[1].path, "raw"}};
    create.size = kDiskSize;
    create.cluster_size = kCluster;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
    ASSERT_TRUE(Open(false).ok());  // reads change nothing: only the stream copies
  }

  Status Open(bool copy_on_read) {
    image_.reset();
    OpenOptions open;
    open.commit_interval = 0ms;
    open.copy_on_read = copy_on_read;
    return Overlay::Open(path_, open, &image_);
  }

  // One pass of a stream down to `end_layer`, as jobs/stream_driver.cc does it.
  void Stream(size_t end_layer) {
    uint64_t pos = 0;
    while (pos < kDiskSize) {
      StreamRun run;
      Status status = PlanStream(*image_, pos, kDiskSize - pos, end_layer, &run);
      ASSERT_TRUE(status.ok()) << status.message();
      ASSERT_GT(run.length, 0u);
      ASSERT_LE(run.length, kDiskSize - pos);
      if (run.work == StreamWork::kCopy || run.work == StreamWork::kZero) {
        status = image_->Populate(pos, run.length, /*wait=*/true);
        ASSERT_TRUE(status.ok()) << status.message();
      }
      pos += run.length;
    }
  }

  void ExpectContent(const char* when) {
    std::string all;
    ASSERT_TRUE(testing::ReadWholeDisk(*image_, &all).ok());
    EXPECT_EQ(testing::FirstDifference(all, expected_), "") << when;
  }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  std::vector<testing::SparseLayer> layers_;
  std::string expected_;
  std::unique_ptr<Overlay> image_;
  uint64_t seed_ = 0;
};

TEST_F(StreamTest, WholeImageStreamThenDropBacking) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  // Some guest writes first: streaming must not undo them.
  ASSERT_TRUE(image_->Write(5000, std::string_view("guest")).ok());
  std::memcpy(expected_.data() + 5000, "guest", 5);

  EXPECT_EQ(image_->DropBacking().code(), EINVAL) << "clusters are still missing";
  Stream(image_->header().chain.size());
  EXPECT_EQ(image_->allocated_clusters(), image_->cluster_count());
  ExpectContent("after the stream");
  Status status = image_->DropBacking();
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(image_->header().standalone);
  EXPECT_TRUE(image_->header().chain.empty());
  ExpectContent("after dropping the backing chain");

  // Standalone: the backing files are not needed any more.
  ASSERT_TRUE(image_->Close().ok());
  for (const auto& layer : layers_) ASSERT_EQ(::unlink(layer.path.c_str()), 0);
  ASSERT_TRUE(Open(false).ok());
  EXPECT_TRUE(image_->header().standalone);
  ExpectContent("reopened standalone");
  CheckReport report;
  CheckOverlay(path_, OpenImage, &report);
  EXPECT_TRUE(report.sound());
  // The data file is a plain raw image of the disk.
  image_.reset();
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(path_), expected_), "");
}

// A stream into the base (QEMU's `stream base=`): the layers above the base
// are copied, then dropped from the chain. The base is longer than the top
// layer, so its tail was hidden (read as zeros) and must stay hidden once
// the top layer is gone.
TEST_F(StreamTest, StreamIntoBaseKeepsTheDiskContent) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  ExpectContent("before");
  ASSERT_EQ(image_->allocated_clusters(), 0u);
  Stream(1);
  EXPECT_LT(image_->allocated_clusters(), image_->cluster_count()) << "the base's clusters stay in the base";
  Status status = image_->ShortenChain(1);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(image_->header().chain.size(), 1u);
  EXPECT_EQ(image_->header().chain[0].spec.path, layers_[1].path);
  ExpectContent("after the chain was shortened");

  ASSERT_TRUE(image_->Close().ok());
  ASSERT_EQ(::unlink(layers_[0].path.c_str()), 0);  // the top is not needed any more
  ASSERT_TRUE(Open(false).ok());
  ASSERT_EQ(image_->header().chain.size(), 1u);
  ExpectContent("reopened over the base alone");
}

TEST_F(StreamTest, PlanStreamOfALocalDiskIsLocal) {
  Stream(2);
  StreamRun run;
  ASSERT_TRUE(PlanStream(*image_, 0, kDiskSize, 2, &run).ok());
  EXPECT_EQ(run.work, StreamWork::kLocal);
  EXPECT_EQ(run.length, kDiskSize);
  EXPECT_EQ(PlanStream(*image_, 0, 0, 2, &run).code(), EINVAL);
  EXPECT_EQ(PlanStream(*image_, kDiskSize, 1, 2, &run).code(), EINVAL);
}

}  // namespace
}  // namespace corfs::overlay
