// Overlay::FaultIn: copy-on-read without a buffer, as the FUSE server uses
// it for a read it then serves from a file (splice). The clusters of the
// range become local with the chain's bytes, and nothing else changes: not
// the clusters around it, not clusters a guest wrote, not past the end. The
// file handed over holds the range's bytes when it is handed over: a raw
// layer's before the copy when that layer holds the whole range, else the
// data file's after it; then without waiting for clusters another read is
// filling, as ReadEarly does over raw files.

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <thread>

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
  void SetUp() override { MakeChain(/*top_density=*/0.8, "disk.img"); }

  // A dense top (so the kernel copies real data; with explicit zeros unless
  // it is whole) over a sparse base with explicit zeros, and an overlay
  // named `name` over them.
  void MakeChain(double top_density, const std::string& name) {
    std::mt19937_64 rng(testing::TestSeed());
    layers_.clear();
    const double top_zeros = top_density < 1 ? 0.1 : 0.0;
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("top-" + name), kTopSize, rng, top_density, top_zeros));
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("base-" + name), kBaseSize, rng, 0.5, 0.2));
    expected_ = testing::ExpectedChainContent(layers_, kDiskSize);
    path_ = dir_.File(name);
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

  // What one FaultIn handed over: the file, the range's bytes read through
  // it at that moment, and whether the range's first cluster was local then.
  struct Handed {
    int fd = -1;
    std::string bytes;
    bool local_then = false;
  };
  Status FaultIn(uint64_t offset, uint64_t length, Handed* handed) {
    return image_->FaultIn(offset, length, [&](int fd) {
      handed->fd = fd;
      handed->bytes = ReadFd(fd, offset, length);
      handed->local_then = Local(offset / kCluster);
    });
  }

  bool Local(uint64_t cluster) const {
    bool local = false;
    uint64_t run = 0;
    EXPECT_TRUE(image_->GetLocalRun(cluster * kCluster, 1, &local, &run).ok());
    return local;
  }

  TempDir dir_;
  std::string path_;
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
  Handed handed;
  Status status = FaultIn(offset, length, &handed);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_GE(handed.fd, 0);
  EXPECT_EQ(testing::FirstDifference(handed.bytes, expected_.substr(offset, length), offset), "");
  const int fd = handed.fd;
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
  ASSERT_TRUE(FaultIn(offset, length, &handed).ok());
  EXPECT_EQ(handed.fd, fd);
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
  Handed handed;
  ASSERT_TRUE(FaultIn(4 * kCluster, 6 * kCluster, &handed).ok());
  ASSERT_GE(handed.fd, 0);
  EXPECT_EQ(testing::FirstDifference(handed.bytes, expected_.substr(4 * kCluster, 6 * kCluster), 4 * kCluster), "");
  // Only the clusters the guest did not write were copied.
  EXPECT_EQ(image_->copy_on_read_counts().bytes, 4 * kCluster);
}

TEST_F(FaultInTest, TheLastPartialClusterStopsAtTheDisksEnd) {
  Open(/*copy_on_read=*/true);
  const uint64_t last = (kDiskSize - 1) / kCluster;
  Handed handed;
  ASSERT_TRUE(FaultIn(kDiskSize - 3000, 3000, &handed).ok());
  ASSERT_GE(handed.fd, 0);
  const int fd = handed.fd;
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
    bool called = false;
    ASSERT_TRUE(image_->FaultIn(0, kDiskSize, [&](int) { called = true; }).ok());
    EXPECT_FALSE(called) << "read_only " << read_only;
    EXPECT_EQ(image_->allocated_clusters(), 0u);
    EXPECT_EQ(image_->copy_on_read_counts().bytes, 0u);
  }
}

TEST_F(FaultInTest, ARangePastTheEndIsRefused) {
  Open(/*copy_on_read=*/true);
  bool called = false;
  EXPECT_FALSE(image_->FaultIn(kDiskSize - 10, 11, [&](int) { called = true; }).ok());
  EXPECT_FALSE(called);
  EXPECT_EQ(image_->allocated_clusters(), 0u);
}

TEST_F(FaultInTest, AReadWhollyInOneRawLayerIsHandedThatFileBeforeTheCopy) {
  MakeChain(/*top_density=*/1.0, "dense.img");
  Open(/*copy_on_read=*/true);
  const uint64_t offset = 5 * kCluster + 100;
  const uint64_t length = 3 * kCluster;  // clusters 5 to 8
  Handed handed;
  ASSERT_TRUE(FaultIn(offset, length, &handed).ok());
  // Handed the top layer's file while the clusters were still the chain's ...
  EXPECT_FALSE(handed.local_then);
  EXPECT_EQ(testing::FirstDifference(handed.bytes, expected_.substr(offset, length), offset), "");
  // ... and they are local, with the chain's bytes, once the fill-behind
  // thread has copied them.
  image_->WaitForFillBehind();
  for (uint64_t cluster = 0; cluster < image_->cluster_count(); ++cluster) {
    EXPECT_EQ(Local(cluster), cluster >= 5 && cluster <= 8) << "cluster " << cluster;
  }
  EXPECT_EQ(image_->copy_on_read_counts().bytes, 4 * kCluster);
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image_, &all).ok());
  EXPECT_EQ(testing::FirstDifference(all, expected_), "");
  // A read across the top layer's end (two layers) is handed the data file,
  // after the copy.
  const uint64_t across = (kTopSize / kCluster) * kCluster - kCluster;
  ASSERT_TRUE(FaultIn(across, 3 * kCluster, &handed).ok());
  EXPECT_TRUE(handed.local_then);
  EXPECT_EQ(testing::FirstDifference(handed.bytes, expected_.substr(across, 3 * kCluster), across), "");
}

TEST_F(FaultInTest, AGuestWriteToAClusterHandedEarlyWaitsForItsCopy) {
  MakeChain(/*top_density=*/1.0, "dense.img");
  Open(/*copy_on_read=*/true);
  // A guest write to cluster 2, started while its bytes are being handed
  // over, lands after the copy and is not overwritten by it.
  const std::string part(500, 'g');
  std::thread writer;
  bool local_then = true;
  ASSERT_TRUE(image_
                  ->FaultIn(2 * kCluster, kCluster,
                            [&](int) {
                              local_then = Local(2);
                              writer = std::thread([&] { EXPECT_TRUE(image_->Write(2 * kCluster + 10, part).ok()); });
                              std::this_thread::sleep_for(50ms);  // the writer waits for the claim by now
                            })
                  .ok());
  writer.join();
  EXPECT_FALSE(local_then);
  expected_.replace(2 * kCluster + 10, part.size(), part);
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image_, &all).ok());
  EXPECT_EQ(testing::FirstDifference(all, expected_), "");
}

TEST_F(FaultInTest, AReadOfClustersBeingFilledIsHandedTheFileWithoutWaiting) {
  MakeChain(/*top_density=*/1.0, "dense.img");
  Open(/*copy_on_read=*/true);
  // While one read of clusters 2 and 3 holds their claims (inside its
  // `ready`), a second read of cluster 2 is handed the top layer's file at
  // once and leaves the cluster to the first.
  Handed second;
  std::future<Status> done;
  bool answered_meanwhile = false;
  ASSERT_TRUE(image_
                  ->FaultIn(2 * kCluster, 2 * kCluster,
                            [&](int) {
                              done = std::async(std::launch::async,
                                                [&] { return FaultIn(2 * kCluster + 4096, 8192, &second); });
                              answered_meanwhile = done.wait_for(5s) == std::future_status::ready;
                            })
                  .ok());
  EXPECT_TRUE(answered_meanwhile) << "the second read waited for the first one's claims";
  ASSERT_TRUE(done.get().ok());
  EXPECT_FALSE(second.local_then);
  EXPECT_EQ(testing::FirstDifference(second.bytes, expected_.substr(2 * kCluster + 4096, 8192), 2 * kCluster + 4096),
            "");
  image_->WaitForFillBehind();
  EXPECT_TRUE(Local(2) && Local(3));
  EXPECT_EQ(image_->copy_on_read_counts().faults, 1u);  // the first read's; the second kept nothing
}

TEST_F(FaultInTest, AReadEarlyOfClustersBeingFilledOverRawFilesDoesNotWait) {
  MakeChain(/*top_density=*/1.0, "dense.img");
  Open(/*copy_on_read=*/true);
  // While one read of clusters 2 and 3 holds their claims (inside its
  // `ready`), a small read of cluster 2 (ReadEarly) is answered from the
  // chain at once and leaves the cluster to the first.
  std::string buf(4096, '\0');
  std::future<Status> done;
  bool answered_meanwhile = false;
  ASSERT_TRUE(image_
                  ->FaultIn(2 * kCluster, 2 * kCluster,
                            [&](int) {
                              done = std::async(std::launch::async, [&] {
                                return image_->ReadEarly(2 * kCluster + 4096, std::span(buf.data(), buf.size()), [] {});
                              });
                              answered_meanwhile = done.wait_for(5s) == std::future_status::ready;
                            })
                  .ok());
  EXPECT_TRUE(answered_meanwhile) << "the small read waited for the first one's claims";
  ASSERT_TRUE(done.get().ok());
  EXPECT_EQ(testing::FirstDifference(buf, expected_.substr(2 * kCluster + 4096, 4096), 2 * kCluster + 4096), "");
  image_->WaitForFillBehind();
  EXPECT_TRUE(Local(2) && Local(3));
  EXPECT_EQ(image_->copy_on_read_counts().faults, 1u);
}

}  // namespace
}  // namespace corfs::overlay
