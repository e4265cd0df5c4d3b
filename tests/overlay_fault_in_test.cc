// Overlay::FaultIn: copy-on-read without a buffer, as the FUSE server uses
// it for a read it then serves from the data file (splice). The clusters of
// the range become local with the chain's bytes, and nothing else changes:
// not the clusters around it, not clusters a guest wrote, not past the end.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kDiskSize = 2 * 1024 * 1024 + 5000;  // a partial last cluster
constexpr uint64_t kTopSize = 1024 * 1024 + 700;
constexpr uint64_t kBaseSize = 2 * 1024 * 1024 + 5000;

class FaultInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(testing::TestSeed());
    // A dense top (so the kernel copies real data) over a sparse base with
    // explicit zeros.
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("top.raw"), kTopSize, rng, 0.8, 0.1));
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("base.raw"), kBaseSize, rng, 0.5, 0.2));
    expected_ = testing::ExpectedChainContent(layers_, kDiskSize);
    CreateOptions create;
    create.backing = {{layers_[0].path, "raw"}, {layers_[1].path, "raw"}};
    create.size = kDiskSize;
    create.cluster_size = kCluster;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  void Open(bool copy_on_read, bool read_only = false) {
    image_.reset();
    OpenOptions open;
    open.commit_interval = 0ms;
    open.copy_on_read = copy_on_read;
    open.read_only = read_only;
    Status status = Overlay::Open(path_, open, &image_);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  // [offset, offset + length) of the data file, read through `fd`.
  static std::string ReadFd(int fd, uint64_t offset, uint64_t length) {
    std::string out(length, '\0');
    EXPECT_EQ(::pread(fd, out.data(), length, static_cast<off_t>(offset)), static_cast<ssize_t>(length));
    return out;
  }

  bool Local(uint64_t cluster) const {
    bool local = false;
    uint64_t run = 0;
    EXPECT_TRUE(image_->GetLocalRun(cluster * kCluster, 1, &local, &run).ok());
    return local;
  }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  std::vector<testing::SparseLayer> layers_;
  std::string expected_;
  std::unique_ptr<Overlay> image_;
};

TEST_F(FaultInTest, MakesTheRangeLocalWithTheChainsBytesAndNothingElse) {
  Open(/*copy_on_read=*/true);
  // Not aligned: from inside cluster 3 to inside cluster 20 (across the top
  // layer's end at 16 clusters and a bit).
  const uint64_t offset = 3 * kCluster + 1234;
  const uint64_t length = 17 * kCluster + 999;
  int fd = -1;
  Status status = image_->FaultIn(offset, length, &fd);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(testing::FirstDifference(ReadFd(fd, offset, length), expected_.substr(offset, length), offset), "");
  for (uint64_t cluster = 0; cluster < image_->cluster_count(); ++cluster) {
    EXPECT_EQ(Local(cluster), cluster >= 3 && cluster <= 20) << "cluster " << cluster;
  }
  EXPECT_EQ(image_->copy_on_read_counts().bytes, 18 * kCluster);
  EXPECT_GE(image_->copy_on_read_counts().faults, 1u);
  // The whole clusters hold the chain's bytes, not just the range asked for.
  EXPECT_EQ(testing::FirstDifference(ReadFd(fd, 3 * kCluster, 18 * kCluster),
                                     expected_.substr(3 * kCluster, 18 * kCluster), 3 * kCluster),
            "");
  // Faulting in again copies nothing.
  ASSERT_TRUE(image_->FaultIn(offset, length, &fd).ok());
  EXPECT_EQ(image_->copy_on_read_counts().bytes, 18 * kCluster);
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image_, &all).ok());
  EXPECT_EQ(testing::FirstDifference(all, expected_), "");
}

TEST_F(FaultInTest, NeverCopiesOverWhatAGuestWrote) {
  Open(/*copy_on_read=*/true);
  // A partial write (copy-on-write of cluster 5) and a whole-cluster one (7).
  const std::string part(1000, 'p');
  const std::string whole(kCluster, 'w');
  ASSERT_TRUE(image_->Write(5 * kCluster + 100, part).ok());
  ASSERT_TRUE(image_->Write(7 * kCluster, whole).ok());
  expected_.replace(5 * kCluster + 100, part.size(), part);
  expected_.replace(7 * kCluster, whole.size(), whole);
  int fd = -1;
  ASSERT_TRUE(image_->FaultIn(4 * kCluster, 6 * kCluster, &fd).ok());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(testing::FirstDifference(ReadFd(fd, 4 * kCluster, 6 * kCluster),
                                     expected_.substr(4 * kCluster, 6 * kCluster), 4 * kCluster),
            "");
  // Only the clusters the guest did not write were copied.
  EXPECT_EQ(image_->copy_on_read_counts().bytes, 4 * kCluster);
}

TEST_F(FaultInTest, TheLastPartialClusterStopsAtTheDisksEnd) {
  Open(/*copy_on_read=*/true);
  const uint64_t last = (kDiskSize - 1) / kCluster;
  int fd = -1;
  ASSERT_TRUE(image_->FaultIn(kDiskSize - 3000, 3000, &fd).ok());
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(Local(last));
  EXPECT_FALSE(Local(last - 1));
  EXPECT_EQ(image_->copy_on_read_counts().bytes, kDiskSize - last * kCluster);
  EXPECT_EQ(testing::FirstDifference(ReadFd(fd, last * kCluster, kDiskSize - last * kCluster),
                                     expected_.substr(last * kCluster), last * kCluster),
            "");
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kDiskSize);
}

TEST_F(FaultInTest, AThinCloneOrAReadOnlyOverlayKeepsNothing) {
  for (bool read_only : {false, true}) {
    Open(/*copy_on_read=*/read_only, read_only);  // a read-only overlay asked to copy on read
    int fd = 123;
    ASSERT_TRUE(image_->FaultIn(0, kDiskSize, &fd).ok());
    EXPECT_EQ(fd, -1) << "read_only " << read_only;
    EXPECT_EQ(image_->allocated_clusters(), 0u);
    EXPECT_EQ(image_->copy_on_read_counts().bytes, 0u);
  }
}

TEST_F(FaultInTest, ARangePastTheEndIsRefused) {
  Open(/*copy_on_read=*/true);
  int fd = -1;
  EXPECT_FALSE(image_->FaultIn(kDiskSize - 10, 11, &fd).ok());
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(image_->allocated_clusters(), 0u);
}

}  // namespace
}  // namespace corfs::overlay
