// The read-ahead of sequential cold reads (read_ahead.h), through the
// overlay over a slow backing driver that counts its reads: after a few
// sequential cold reads the clusters ahead become local without a guest
// read, never past the disk's end and never over what a guest wrote;
// random cold reads, and a thin clone, fetch nothing ahead. And ReadEarly,
// which answers a cold read before its clusters are kept, and over a layer
// that is no raw file waits for clusters someone else is fetching.

#include <gtest/gtest.h>

#include <thread>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::DriverControl;
using testing::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kBackingSize = 12 * 1024 * 1024 + 5000;  // a partial last cluster

class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(testing::TestSeed());
    backing_ = testing::MakeRandomSparseLayer(dir_.File("base.raw"), kBackingSize, rng, 1.0);
    CreateOptions create;
    create.backing = {{backing_.path, "raw"}};
    create.cluster_size = kCluster;
    create.opener = testing::TestOpener(control_);
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  std::unique_ptr<Overlay> Open(bool copy_on_read = true) {
    OpenOptions open;
    open.copy_on_read = copy_on_read;
    open.commit_interval = 0ms;
    open.read_ahead = true;
    open.opener = testing::TestOpener(control_);
    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, open, &image);
    EXPECT_TRUE(status.ok()) << status.message();
    control_->ResetCounts();  // opening hashes samples of the backing image
    // Like a remote template: every backing read waits a little.
    control_->SetSlowReads(0, kBackingSize, 2ms);
    return image;
  }

  void ReadAndCheck(Overlay& image, uint64_t offset, uint64_t length) {
    std::string buf(length, '\0');
    Status status = image.Read(offset, std::span(buf.data(), length));
    ASSERT_TRUE(status.ok()) << status.message();
    ASSERT_EQ(buf, backing_.content.substr(offset, length)) << "at " << offset;
  }

  static bool Local(Overlay& image, uint64_t offset, uint64_t length) {
    bool local = false;
    uint64_t run = 0;
    EXPECT_TRUE(image.GetLocalRun(offset, length, &local, &run).ok());
    return local && run == length;
  }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  std::shared_ptr<DriverControl> control_ = std::make_shared<DriverControl>();
  testing::SparseLayer backing_;
};

TEST_F(ReadAheadTest, SequentialColdReadsFillTheClustersAhead) {
  auto image = Open();
  ASSERT_TRUE(image);
  for (uint64_t i = 0; i < 3; ++i) ReadAndCheck(*image, i * kCluster, kCluster);
  image->WaitForReadAhead();
  // The first window (2 MiB) after the third read is local, read by nobody
  // but the read-ahead.
  EXPECT_TRUE(Local(*image, 3 * kCluster, ReadAhead::kMinWindow));
  EXPECT_GE(image->allocated_clusters(), 3 + ReadAhead::kMinWindow / kCluster);
  // The guest reading on finds them there: no backing read for them.
  control_->ResetCounts();
  for (uint64_t i = 3; i < 3 + ReadAhead::kMinWindow / kCluster; ++i) ReadAndCheck(*image, i * kCluster, kCluster);
  EXPECT_EQ(control_->ReadsOverlapping(3 * kCluster, ReadAhead::kMinWindow), 0u);
  image->WaitForReadAhead();
  // Reading on keeps the window ahead of the guest.
  EXPECT_TRUE(Local(*image, 3 * kCluster + ReadAhead::kMinWindow, ReadAhead::kMinWindow));
}

TEST_F(ReadAheadTest, ReadAheadStopsAtTheEndOfTheDisk) {
  auto image = Open();
  ASSERT_TRUE(image);
  // A guest reading the whole disk in order ends with all of it local.
  for (uint64_t offset = 0; offset < kBackingSize; offset += 128 * 1024) {
    ReadAndCheck(*image, offset, std::min<uint64_t>(128 * 1024, kBackingSize - offset));
  }
  image->WaitForReadAhead();
  EXPECT_EQ(image->lacking_clusters(), 0u);
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &all).ok());
  EXPECT_EQ(all, backing_.content);
}

TEST_F(ReadAheadTest, RandomColdReadsFetchNothingAhead) {
  auto image = Open();
  ASSERT_TRUE(image);
  const uint64_t clusters[] = {150, 10, 110, 50, 180, 30, 130, 70, 90};  // 1.25 MiB and more apart
  for (uint64_t c : clusters) ReadAndCheck(*image, c * kCluster, 4096);
  image->WaitForReadAhead();
  EXPECT_EQ(image->allocated_clusters(), std::size(clusters));
}

TEST_F(ReadAheadTest, ThinCloneReadsAheadNothing) {
  auto image = Open(/*copy_on_read=*/false);
  ASSERT_TRUE(image);
  for (uint64_t i = 0; i < 8; ++i) ReadAndCheck(*image, i * kCluster, kCluster);
  image->WaitForReadAhead();
  EXPECT_EQ(image->allocated_clusters(), 0u);
  EXPECT_EQ(control_->ReadsOverlapping(8 * kCluster, kBackingSize - 8 * kCluster), 0u);
}

TEST_F(ReadAheadTest, ReadAheadKeepsWhatTheGuestWrote) {
  auto image = Open();
  ASSERT_TRUE(image);
  const std::string mine(kCluster, 'w');
  ASSERT_TRUE(image->Write(5 * kCluster, mine).ok());
  for (uint64_t i = 0; i < 3; ++i) ReadAndCheck(*image, i * kCluster, kCluster);
  image->WaitForReadAhead();
  EXPECT_TRUE(Local(*image, 3 * kCluster, ReadAhead::kMinWindow));
  std::string buf(kCluster, '\0');
  ASSERT_TRUE(image->Read(5 * kCluster, std::span(buf.data(), buf.size())).ok());
  EXPECT_EQ(buf, mine);
}

TEST_F(ReadAheadTest, ReadEarlyAnswersThenKeepsTheClusters) {
  auto image = Open();
  ASSERT_TRUE(image);
  std::string buf(4096, '\0');
  bool ready = false;
  bool local_when_ready = true;
  Status status = image->ReadEarly(7 * kCluster + 8192, std::span(buf.data(), buf.size()), [&] {
    ready = true;
    local_when_ready = Local(*image, 7 * kCluster, kCluster);
  });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(ready);
  EXPECT_EQ(buf, backing_.content.substr(7 * kCluster + 8192, 4096));
  // Answered before the cluster was kept; kept once the fill-behind thread
  // has copied it.
  EXPECT_FALSE(local_when_ready);
  image->WaitForFillBehind();
  EXPECT_TRUE(Local(*image, 7 * kCluster, kCluster));
  EXPECT_EQ(image->copy_on_read_counts().faults, 1u);
  ASSERT_TRUE(image->Flush().ok());
  // Read again, from the overlay this time.
  control_->ResetCounts();
  ReadAndCheck(*image, 7 * kCluster, kCluster);
  EXPECT_EQ(control_->ReadsOverlapping(7 * kCluster, kCluster), 0u);
}

TEST_F(ReadAheadTest, ReadEarlyOfLocalDataIsARead) {
  auto image = Open();
  ASSERT_TRUE(image);
  ASSERT_TRUE(image->Populate(0, 2 * kCluster, true).ok());
  std::string buf(kCluster, '\0');
  bool ready = false;
  Status status = image->ReadEarly(kCluster / 2, std::span(buf.data(), buf.size()), [&] { ready = true; });
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(ready);
  EXPECT_EQ(buf, backing_.content.substr(kCluster / 2, kCluster));
}

TEST_F(ReadAheadTest, ReadEarlyOverAServerWaitsForClustersBeingFilled) {
  // This chain's layer is no raw file (a test driver, like a server): a
  // read of clusters another read is fetching waits for that fetch rather
  // than fetching them again (over raw files it does not wait: FaultInTest).
  auto image = Open();
  ASSERT_TRUE(image);
  control_->ClearSlowReads();
  // A cold read of clusters 9 and 10 claims both, then reads the chain
  // slowly (the slow range touches cluster 10 only).
  control_->SetSlowReads(10 * kCluster, kCluster, 300ms);
  std::thread reader([&] { ReadAndCheck(*image, 9 * kCluster, 2 * kCluster); });
  ASSERT_TRUE(control_->WaitForReadStart(9 * kCluster, 2 * kCluster, 5s));
  control_->ClearSlowReads();
  std::string buf(4096, '\0');
  bool ready = false;
  Status status = image->ReadEarly(9 * kCluster + 4096, std::span(buf.data(), buf.size()), [&] { ready = true; });
  // It waited: the other read had set the cluster's bit by then.
  EXPECT_TRUE(Local(*image, 9 * kCluster, kCluster));
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_TRUE(ready);
  EXPECT_EQ(buf, backing_.content.substr(9 * kCluster + 4096, 4096));
  reader.join();
  EXPECT_EQ(control_->ReadsOverlapping(9 * kCluster, kCluster), 1u) << "cluster 9 was fetched twice";
}

}  // namespace
}  // namespace corfs::overlay
