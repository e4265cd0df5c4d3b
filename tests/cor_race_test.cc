// Copy-on-read races, with a counting, slow (or failing) driver under the
// backing image:
//  - readers of one unallocated cluster at once copy it from the backing
//    image once, whoever comes second waits for the fill;
//  - a write racing a fill of the same cluster (a copy-on-read, a
//    copy-on-write merge or a stream job's Populate) is never lost;
//  - a failing backing read surfaces as an error and leaves the cluster
//    unallocated.

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <latch>
#include <thread>

#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::DriverControl;
using testing::TempDir;

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kBackingSize = 64 * kCluster;

class CorRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = testing::TestSeed();
    std::mt19937_64 rng(seed_);
    // Every block of the backing image holds data, so filling a cluster is
    // exactly one backing read.
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
    open.opener = testing::TestOpener(control_);
    std::unique_ptr<Overlay> image;
    Status status = Overlay::Open(path_, open, &image);
    EXPECT_TRUE(status.ok()) << status.message();
    control_->ResetCounts();  // opening hashes samples of the backing image
    return image;
  }

  std::string Backing(uint64_t offset, uint64_t length) const { return backing_.content.substr(offset, length); }

  TempDir dir_;
  const std::string path_ = dir_.File("disk.img");
  std::shared_ptr<DriverControl> control_ = std::make_shared<DriverControl>();
  testing::SparseLayer backing_;
  uint64_t seed_ = 0;
};

TEST_F(CorRaceTest, ConcurrentReadersOfOneClusterReadTheBackingOnce) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open();
  ASSERT_TRUE(image);
  constexpr int kReaders = 8;
  std::mt19937_64 rng(seed_);
  for (uint64_t cluster : {0, 5, 63}) {
    const uint64_t start = cluster * kCluster;
    control_->ResetCounts();
    control_->SetSlowReads(start, kCluster, 50ms);
    std::latch gate(kReaders);
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (int i = 0; i < kReaders; ++i) {
      uint64_t offset = i == 0 ? 0 : testing::RandomIn(rng, 0, kCluster - 1);
      uint64_t length = i == 0 ? kCluster : testing::RandomIn(rng, 1, kCluster - offset);
      ranges.emplace_back(start + offset, length);
    }
    std::vector<std::string> results(kReaders);
    std::vector<Status> statuses(kReaders);
    std::vector<std::thread> readers;
    for (int i = 0; i < kReaders; ++i) {
      readers.emplace_back([&, i] {
        results[i].assign(ranges[i].second, 'x');
        gate.arrive_and_wait();
        statuses[i] = image->Read(ranges[i].first, results[i]);
      });
    }
    for (auto& t : readers) t.join();
    for (int i = 0; i < kReaders; ++i) {
      ASSERT_TRUE(statuses[i].ok()) << statuses[i].message();
      EXPECT_EQ(testing::FirstDifference(results[i], Backing(ranges[i].first, ranges[i].second), ranges[i].first), "")
          << "reader " << i;
    }
    EXPECT_EQ(control_->ReadsOverlapping(start, kCluster), 1u) << "cluster " << cluster;
    EXPECT_EQ(control_->BytesReadIn(start, kCluster), kCluster) << "cluster " << cluster;
    EXPECT_EQ(control_->Reads().size(), 1u) << "nothing else was read";
  }
  EXPECT_EQ(image->allocated_clusters(), 3u);
  EXPECT_EQ(image->guest_io_in_flight(), 0);
}

// Readers of random ranges over a few adjacent clusters: each cluster is
// still copied from the backing image exactly once, whichever reader's run
// claims it.
TEST_F(CorRaceTest, OverlappingMultiClusterReadersCopyEachClusterOnce) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open();
  ASSERT_TRUE(image);
  std::mt19937_64 rng(seed_ + 1);
  constexpr int kReaders = 6;
  for (int round = 0; round < 4; ++round) {
    const uint64_t first = 8 + round * 8;  // clusters first .. first+3
    const uint64_t start = first * kCluster, span = 4 * kCluster;
    control_->ResetCounts();
    control_->SetSlowReads(start, span, 5ms);
    std::latch gate(kReaders);
    std::vector<std::thread> readers;
    std::atomic<int> bad{0};
    for (int i = 0; i < kReaders; ++i) {
      uint64_t offset = start + testing::RandomIn(rng, 0, span - 1);
      uint64_t length = testing::RandomIn(rng, 1, start + span - offset);
      readers.emplace_back([&, offset, length] {
        std::string buf(length, 'x');
        gate.arrive_and_wait();
        Status status = image->Read(offset, buf);
        if (!status.ok() || buf != Backing(offset, length)) ++bad;
      });
    }
    for (auto& t : readers) t.join();
    EXPECT_EQ(bad.load(), 0);
    for (uint64_t c = first; c < first + 4; ++c) {
      // Not read at all (no reader touched it) or read whole, once.
      uint64_t bytes = control_->BytesReadIn(c * kCluster, kCluster);
      EXPECT_TRUE(bytes == 0 || bytes == kCluster) << bytes << " bytes of cluster " << c << " read";
    }
  }
}

enum class Filler { kCopyOnRead, kThinRead, kPartialWrite, kPopulate };

// One cluster per iteration: a fill of the cluster starts (its backing read
// is slow), and while it is in progress a write to the same cluster is
// issued. After both, the written bytes read back and the rest of the
// cluster holds the backing data.
void RaceWritesAgainstFills(Overlay& image, DriverControl& control, Filler filler, const testing::SparseLayer& backing,
                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (uint64_t cluster = 0; cluster < kBackingSize / kCluster; ++cluster) {
    SCOPED_TRACE("cluster " + std::to_string(cluster));
    const uint64_t start = cluster * kCluster;
    control.ResetCounts();
    control.SetSlowReads(start, kCluster, 10ms);

    // The fill.
    uint64_t fill_offset = start + testing::RandomIn(rng, 0, kCluster - 1);
    uint64_t fill_length = testing::RandomIn(rng, 1, start + kCluster - fill_offset);
    if (filler == Filler::kPartialWrite && fill_length == kCluster) --fill_length;  // a whole one reads nothing
    std::string fill_data = testing::RandomBytes(rng, fill_length);
    std::string fill_result(fill_length, 'x');
    Status fill_status;
    std::thread first([&] {
      switch (filler) {
        case Filler::kCopyOnRead:
        case Filler::kThinRead: fill_status = image.Read(fill_offset, fill_result); break;
        case Filler::kPartialWrite: fill_status = image.Write(fill_offset, fill_data); break;
        case Filler::kPopulate: fill_status = image.Populate(start, kCluster, /*wait=*/true); break;
      }
    });
    ASSERT_TRUE(control.WaitForReadStart(start, kCluster, 10s)) << "the fill never read the backing image";

    // The racing write: whole cluster one time in four, else a part.
    uint64_t offset = start, length = kCluster;
    if (testing::RandomIn(rng, 0, 3) != 0) {
      offset = start + testing::RandomIn(rng, 0, kCluster - 1);
      length = testing::RandomIn(rng, 1, start + kCluster - offset);
    }
    std::string data = testing::RandomBytes(rng, length);
    Status write_status = image.Write(offset, data);
    first.join();
    ASSERT_TRUE(fill_status.ok()) << fill_status.message();
    ASSERT_TRUE(write_status.ok()) << write_status.message();

    // What the cluster must hold: the backing data, the first write (it
    // started first and the second waited for its claim), then the racing
    // write on top.
    std::string expected = backing.content.substr(start, kCluster);
    if (filler == Filler::kPartialWrite)
      std::memcpy(expected.data() + (fill_offset - start), fill_data.data(), fill_length);
    std::memcpy(expected.data() + (offset - start), data.data(), length);
    std::string got(kCluster, 'x');
    ASSERT_TRUE(image.Read(start, got).ok());
    ASSERT_EQ(testing::FirstDifference(got, expected, start), "") << "written " << length << " at " << offset;

    if (filler == Filler::kCopyOnRead) {
      // The reader held the claim first: it saw the backing data.
      EXPECT_EQ(testing::FirstDifference(fill_result, backing.content.substr(fill_offset, fill_length)), "");
    }
  }
}

TEST_F(CorRaceTest, WriteRacingCopyOnReadIsNeverLost) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open(true);
  ASSERT_TRUE(image);
  RaceWritesAgainstFills(*image, *control_, Filler::kCopyOnRead, backing_, seed_);
  EXPECT_EQ(image->allocated_clusters(), image->cluster_count());
  // And it is all still there after a reopen.
  std::string expected(kBackingSize, 'x');
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &expected).ok());
  ASSERT_TRUE(image->Close().ok());
  image.reset();
  image = Open(false);
  ASSERT_TRUE(image);
  std::string again;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &again).ok());
  EXPECT_EQ(testing::FirstDifference(again, expected), "");
}

TEST_F(CorRaceTest, WriteRacingThinCloneReadIsNeverLost) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open(false);
  ASSERT_TRUE(image);
  RaceWritesAgainstFills(*image, *control_, Filler::kThinRead, backing_, seed_);
}

TEST_F(CorRaceTest, WriteRacingCopyOnWriteMergeIsNeverLost) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open(true);
  ASSERT_TRUE(image);
  RaceWritesAgainstFills(*image, *control_, Filler::kPartialWrite, backing_, seed_);
}

TEST_F(CorRaceTest, WriteRacingPopulateIsNeverLost) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto image = Open(true);
  ASSERT_TRUE(image);
  RaceWritesAgainstFills(*image, *control_, Filler::kPopulate, backing_, seed_);
}

TEST_F(CorRaceTest, FailingBackingReadSurfacesAndLeavesTheClusterUnallocated) {
  auto image = Open(true);
  ASSERT_TRUE(image);
  const uint64_t start = 3 * kCluster;
  control_->SetFailingReads(start, kCluster, EIO);

  std::string buf(1000, 'x');
  Status status = image->Read(start + 100, buf);
  EXPECT_EQ(status.code(), EIO);
  EXPECT_FALSE(status.message().empty());
  // A partial write needs the backing data too.
  status = image->Write(start + 10, std::string(100, 'w'));
  EXPECT_EQ(status.code(), EIO);
  EXPECT_EQ(image->allocated_clusters(), 0u);

  // Other clusters are fine meanwhile.
  ASSERT_TRUE(image->Read(start + kCluster, buf).ok());
  EXPECT_EQ(buf, Backing(start + kCluster, 1000));

  // The failure clears: the cluster is copied as if nothing happened.
  control_->ClearFailingReads();
  ASSERT_TRUE(image->Read(start + 100, buf).ok());
  EXPECT_EQ(buf, Backing(start + 100, 1000));
  EXPECT_EQ(image->allocated_clusters(), 2u);

  // A write of whole clusters never reads the backing image, so it works
  // even while the backing image fails.
  control_->SetFailingReads(0, kBackingSize, EIO);
  std::string whole(kCluster, 'z');
  ASSERT_TRUE(image->Write(10 * kCluster, whole).ok());
  std::string back(kCluster, 'x');
  ASSERT_TRUE(image->Read(10 * kCluster, back).ok());
  EXPECT_EQ(back, whole);
  EXPECT_EQ(image->guest_io_in_flight(), 0);
}

}  // namespace
}  // namespace corfs::overlay
