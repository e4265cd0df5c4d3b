// Overlay::Resize: a disk grows while in use. The new part reads as zeros
// whatever the template holds there, and is the overlay's at once (a
// stream still ends standalone); a smaller size is refused; the grow is
// durable, and a power cut or failure at any step leaves an overlay that
// opens at the old size or the new one and reads right.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "overlay/overlay.h"
#include "overlay/overlay_inspect.h"
#include "tests/faulty_file_system.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using namespace std::chrono_literals;
using testing::FaultOp;
using testing::FaultTarget;
using testing::FaultyFileSystem;

constexpr uint64_t kCluster = 64 * 1024;
// A partial last cluster, over a template longer than the disk: its bytes
// past the old end must never show.
constexpr uint64_t kOldSize = 16 * kCluster + 4096;
constexpr uint64_t kTemplateSize = 40 * kCluster;
constexpr uint64_t kNewSize = 32 * kCluster + 512;

class OverlayResizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(11);
    // Every block holds data that is not zero: zeros are never the template's.
    backing_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kTemplateSize, rng, 1.0);
    expected_ = backing_.content.substr(0, kOldSize);
  }

  void Create(uint64_t size = kOldSize, uint64_t cluster = kCluster) {
    CreateOptions create;
    create.backing = {{backing_.path, "raw"}};
    create.size = size;
    create.cluster_size = cluster;
    create.file_system = fs_;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
    expected_ = backing_.content.substr(0, size);
  }

  void Open(bool read_only = false) {
    image_.reset();
    OpenOptions open;
    open.commit_interval = 0ms;
    open.file_system = fs_;
    open.read_only = read_only;
    Status status = Overlay::Open(path_, open, &image_);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  void Write(uint64_t offset, const std::string& data) {
    ASSERT_TRUE(image_->Write(offset, data).ok());
    expected_.replace(offset, data.size(), data);
  }

  // The disk as it must read at `size` bytes: what it held, then zeros.
  std::string Expected(uint64_t size) const {
    std::string disk = expected_.substr(0, std::min<uint64_t>(size, expected_.size()));
    disk.resize(size, '\0');
    return disk;
  }

  void ExpectDisk(uint64_t size) {
    ASSERT_EQ(image_->size(), size);
    std::string disk;
    ASSERT_TRUE(testing::ReadWholeDisk(*image_, &disk, 3 * kCluster + 4096).ok());
    EXPECT_EQ(testing::FirstDifference(disk, Expected(size)), "");
  }

  CheckReport Check() const {
    CheckReport report;
    CheckOverlay(path_, OpenImage, &report);
    return report;
  }

  testing::TempDir dir_;
  std::string path_ = dir_.File("vm.img");
  // The data file while the overlay is unfinished (it has a chain).
  std::string data_path_ = PartialDataPath(path_);
  std::shared_ptr<FaultyFileSystem> fs_ = std::make_shared<FaultyFileSystem>();
  testing::SparseLayer backing_;
  std::unique_ptr<Overlay> image_;
  std::string expected_;  // the disk up to its old size
};

TEST_F(OverlayResizeTest, GrowKeepsTheDataAndReadsZerosPastTheOldEnd) {
  Create();
  Open();
  Write(3 * kCluster + 100, std::string(5000, 'a'));
  Write(kOldSize - 10, std::string(10, 'b'));  // the partial last cluster
  std::string some(100, '\0');
  ASSERT_TRUE(image_->Read(5 * kCluster, some).ok());  // copy-on-read
  const uint64_t lacking = image_->lacking_clusters();
  ASSERT_TRUE(image_->Resize(kNewSize).ok());
  ExpectDisk(kNewSize);
  EXPECT_EQ(image_->cluster_count(), (kNewSize + kCluster - 1) / kCluster);
  // The new clusters are the overlay's; only the old ones it lacked are lacking.
  EXPECT_LE(image_->lacking_clusters(), lacking);
  EXPECT_EQ(image_->header().virtual_size, kNewSize);
  EXPECT_EQ(testing::ReadFileBytes(data_path_).size(), kNewSize);

  // Durable: a reopen (the chain then shows the template up to the new
  // size) reads the same, and so does a power cut.
  fs_->Crash();
  Open();
  ExpectDisk(kNewSize);
  EXPECT_TRUE(Check().sound());
  EXPECT_TRUE(Check().notes.empty()) << ::testing::PrintToString(Check().notes);
}

TEST_F(OverlayResizeTest, AStreamOverTheOldPartEndsStandaloneWithTheTemplateAndAZeroTail) {
  Create();
  Open();
  ASSERT_TRUE(image_->Populate(0, 5 * kCluster, /*wait=*/true).ok());  // a stream, begun before the grow
  ASSERT_TRUE(image_->Resize(kNewSize).ok());
  ASSERT_TRUE(image_->Populate(0, kOldSize, /*wait=*/true).ok());  // ... and ended after it
  EXPECT_EQ(image_->lacking_clusters(), 0u);
  EXPECT_EQ(image_->allocated_clusters(), image_->cluster_count());
  Status dropped = image_->DropBacking();
  ASSERT_TRUE(dropped.ok()) << dropped.message();
  ASSERT_TRUE(image_->Close().ok());
  image_.reset();
  // The data file is a plain image: the template's first kOldSize bytes, then zeros.
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(path_), Expected(kNewSize)), "");
  Open();
  EXPECT_TRUE(image_->header().standalone);
  ExpectDisk(kNewSize);
}

TEST_F(OverlayResizeTest, ShrinkIsRefusedAndTheSameSizeChangesNothing) {
  Create();
  Open();
  Status shrink = image_->Resize(kOldSize - 1);
  EXPECT_EQ(shrink.code(), EINVAL);
  EXPECT_NE(shrink.message().find("cannot shrink"), std::string::npos) << shrink.message();
  const uint64_t sequence = image_->header().sequence;
  EXPECT_TRUE(image_->Resize(kOldSize).ok());
  EXPECT_EQ(image_->header().sequence, sequence);
  EXPECT_EQ(image_->size(), kOldSize);
  EXPECT_EQ(image_->Resize(uint64_t{1} << 61).code(), EINVAL);  // past what a header holds
  ExpectDisk(kOldSize);
  Open(/*read_only=*/true);
  EXPECT_EQ(image_->Resize(kNewSize).code(), EROFS);
}

// Small clusters, so that the grow crosses bitmap pages (and segments).
TEST_F(OverlayResizeTest, GrowAcrossBitmapPagesIsDurable) {
  Create(kOldSize, 4096);
  Open();
  Write(4096 * 7, std::string(4096, 'c'));
  const uint64_t grown = 4096 * (AllocationBitmap::kClustersPerPage * 3 + 5);  // pages 0..3
  ASSERT_TRUE(image_->Resize(grown).ok());
  ASSERT_TRUE(image_->Flush().ok());
  Open();
  ASSERT_EQ(image_->size(), grown);
  bool local = false;
  uint64_t run = 0;
  ASSERT_TRUE(image_->GetLocalRun(kOldSize, grown - kOldSize, &local, &run).ok());
  EXPECT_TRUE(local);
  EXPECT_EQ(run, grown - kOldSize);
  std::string tail(8192, 'x');
  ASSERT_TRUE(image_->Read(grown - tail.size(), tail).ok());
  EXPECT_EQ(tail, std::string(tail.size(), '\0'));
  std::string head(kOldSize, 'x');
  ASSERT_TRUE(image_->Read(0, head).ok());
  EXPECT_EQ(testing::FirstDifference(head, expected_), "");
  EXPECT_TRUE(Check().sound());
}

// Guest reads while the disk grows again and again: every read inside the
// size it saw reads what the disk holds there.
TEST_F(OverlayResizeTest, ReadsDuringGrowsReadRight) {
  Create();
  Open();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::string buf;
      while (!done.load()) {
        const uint64_t size = image_->size();
        const uint64_t offset = rng() % size;
        const uint64_t length = 1 + rng() % std::min<uint64_t>(size - offset, 3 * kCluster);
        buf.assign(length, 'x');
        if (!image_->Read(offset, buf).ok()) {
          wrong.fetch_add(1);
          continue;
        }
        for (uint64_t i = 0; i < length; ++i) {
          const uint64_t at = offset + i;
          const char want = at < kOldSize ? expected_[at] : '\0';
          if (buf[i] != want) {
            wrong.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  uint64_t size = kOldSize;
  for (int step = 0; step < 20; ++step) {
    size += 4096 * (1 + step) + 512;
    Status grown = image_->Resize(size);
    ASSERT_TRUE(grown.ok()) << grown.message();
  }
  done = true;
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(wrong.load(), 0u);
  ExpectDisk(size);
}

// A failure at each step of the grow (the steps after it never happen),
// then a power cut: the overlay opens at the old size or the new one,
// reads right, and passes `corfs check`.
TEST_F(OverlayResizeTest, EveryStepOfTheGrowSurvivesAFailureAndAPowerCut) {
  struct Point {
    FaultOp op;
    FaultTarget target;
  };
  for (Point point :
       {Point{FaultOp::kWrite, FaultTarget::kDataFile}, Point{FaultOp::kSync, FaultTarget::kDataFile},
        Point{FaultOp::kWrite, FaultTarget::kMetadataFile}, Point{FaultOp::kSync, FaultTarget::kMetadataFile}}) {
    for (uint64_t nth = 1;; ++nth) {
      SCOPED_TRACE(::testing::Message() << "op " << static_cast<int>(point.op) << " target "
                                        << static_cast<int>(point.target) << " nth " << nth);
      fs_ = std::make_shared<FaultyFileSystem>();
      Create(kOldSize);
      Open();
      Write(2 * kCluster, std::string(kCluster, 'w'));
      ASSERT_TRUE(image_->Flush().ok());
      fs_->FailNth(point.op, point.target, nth, EIO);
      Status grown = image_->Resize(kNewSize);
      fs_->ClearFaults();
      if (!grown.ok()) {
        EXPECT_EQ(image_->size(), kOldSize);  // nothing changed that readers see
      }
      fs_->Crash();
      image_.reset();
      CheckReport report = Check();
      EXPECT_TRUE(report.sound()) << ::testing::PrintToString(report.problems);
      Open();
      const uint64_t size = image_->size();
      EXPECT_TRUE(size == kOldSize || size == kNewSize) << size;
      if (grown.ok()) {
        EXPECT_EQ(size, kNewSize);
      }
      ExpectDisk(size);
      // Grown now (again): the overlay is right either way.
      ASSERT_TRUE(image_->Resize(kNewSize).ok());
      ExpectDisk(kNewSize);
      image_.reset();
      ASSERT_EQ(::unlink(data_path_.c_str()), 0);
      ASSERT_EQ(::unlink((path_ + ".cor").c_str()), 0);
      if (grown.ok()) break;  // the fault came after the last step of that kind
    }
  }
}

// The states an interrupted grow leaves before its header update, built by
// hand: a longer data file, and bitmap bits past the last cluster in a
// longer metadata file. Both open at the old size; a read-write open cuts
// the data file back.
TEST_F(OverlayResizeTest, WhatAnInterruptedGrowLeavesOpensAtTheOldSize) {
  Create();
  testing::TruncateFile(data_path_, kNewSize);
  testing::TruncateFile(path_ + ".cor", kBitmapOffset + 2 * kBitmapPageSize);
  // Clusters 17.. (past the last one, 16) set, as the grow writes them.
  testing::PatchFile(path_ + ".cor", kBitmapOffset + 2, std::string(1, '\xfe'));
  testing::PatchFile(path_ + ".cor", kBitmapOffset + 3, std::string(1, '\xff'));
  CheckReport report = Check();
  EXPECT_TRUE(report.sound()) << ::testing::PrintToString(report.problems);
  EXPECT_EQ(report.notes.size(), 2u) << ::testing::PrintToString(report.notes);

  Open(/*read_only=*/true);
  ExpectDisk(kOldSize);
  EXPECT_EQ(image_->allocated_clusters(), 0u);
  Open();
  ExpectDisk(kOldSize);
  image_.reset();
  EXPECT_EQ(testing::ReadFileBytes(data_path_).size(), kOldSize);
  Open();
  ASSERT_TRUE(image_->Resize(kNewSize).ok());
  EXPECT_EQ(image_->allocated_clusters() + image_->lacking_clusters(), image_->cluster_count());
  ExpectDisk(kNewSize);
  image_.reset();
  EXPECT_TRUE(Check().sound());
}

}  // namespace
}  // namespace corfs::overlay
