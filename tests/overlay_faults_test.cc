// Faults in the overlay's own files, through FaultyFileSystem: failed syncs,
// a full disk under the data file or the metadata file, and power cuts that
// drop what was never synced. After each, the overlay must pass
// CheckOverlay and, reopened after the power cut, read every write whose
// flush succeeded; every other 4 KiB block reads either its content at the
// last good flush or the newest content written to it.

#include <gtest/gtest.h>

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
constexpr uint64_t kBlock = 4096;
constexpr uint64_t kDiskSize = 16 * kCluster;

class OverlayFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(7);
    // Every block of the template holds data, none of it zeros: a block
    // that reads zeros is never right.
    backing_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kDiskSize, rng, 1.0);
    flushed_ = backing_.content;
    written_ = backing_.content;
    CreateOptions create;
    create.backing = {{backing_.path, "raw"}};
    create.cluster_size = kCluster;
    create.file_system = fs_;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
    Reopen();
  }

  void Reopen() {
    image_.reset();
    OpenOptions open;
    open.commit_interval = 0ms;
    open.file_system = fs_;
    Status status = Overlay::Open(path_, open, &image_);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  // A guest write; `ok` says whether it is expected to succeed.
  void Write(uint64_t offset, const std::string& data, bool ok = true) {
    Status status = image_->Write(offset, data);
    EXPECT_EQ(status.ok(), ok) << status.message();
    written_.replace(offset, data.size(), data);
  }
  std::string Bytes(uint64_t length, char fill) { return std::string(length, fill); }

  Status Flush() {
    Status status = image_->Flush();
    if (status.ok()) flushed_ = written_;
    return status;
  }

  // The power cut: drops what was not synced, then checks the overlay and
  // every block of the disk as the header explains.
  void CrashAndVerify() {
    fs_->Crash();
    image_.reset();  // its last commit fails: the machine is gone
    CheckReport report;
    CheckOverlay(path_, OpenImage, &report);
    EXPECT_TRUE(report.sound()) << ::testing::PrintToString(report.problems);
    Reopen();
    clusters_after_crash_ = image_->allocated_clusters();  // before the reads below fill the rest
    std::string disk;
    ASSERT_TRUE(testing::ReadWholeDisk(*image_, &disk).ok());
    for (uint64_t at = 0; at < kDiskSize; at += kBlock) {
      std::string_view block = std::string_view(disk).substr(at, kBlock);
      if (block == std::string_view(flushed_).substr(at, kBlock)) continue;
      ASSERT_TRUE(block == std::string_view(written_).substr(at, kBlock))
          << "block at " << at << " holds neither its flushed nor its newest content: "
          << testing::FirstDifference(block, std::string_view(written_).substr(at, kBlock), at);
    }
    // Only what was flushed is promised; from here on the model starts over.
    written_ = disk;
    flushed_ = disk;
  }

  testing::TempDir dir_;
  std::string path_ = dir_.File("vm.img");
  std::shared_ptr<FaultyFileSystem> fs_ = std::make_shared<FaultyFileSystem>();
  testing::SparseLayer backing_;
  std::unique_ptr<Overlay> image_;
  std::string flushed_;  // what the disk must hold after a power cut
  std::string written_;  // the newest content of each byte
  uint64_t clusters_after_crash_ = 0;
};

TEST_F(OverlayFaultsTest, PowerCutDropsWhatWasNotFlushed) {
  Write(0, Bytes(kCluster, 'a'));
  Write(3 * kCluster + 100, Bytes(5000, 'b'));
  ASSERT_TRUE(Flush().ok());
  Write(5 * kCluster, Bytes(kCluster, 'c'));
  Write(100, Bytes(10, 'd'));
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 2u);  // the unflushed cluster's bit never reached the disk
  EXPECT_EQ(written_.substr(5 * kCluster, kCluster), backing_.content.substr(5 * kCluster, kCluster));
}

TEST_F(OverlayFaultsTest, CopiesInsideTheKernelAreUnsyncedWritesToo) {
  ASSERT_TRUE(image_->Populate(0, kDiskSize, /*wait=*/true).ok());
  EXPECT_GE(fs_->UnsyncedBytes(FaultTarget::kDataFile), kDiskSize);
  ASSERT_TRUE(Flush().ok());
  EXPECT_EQ(fs_->UnsyncedBytes(FaultTarget::kDataFile), 0u);
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, kDiskSize / kCluster);
}

TEST_F(OverlayFaultsTest, AGuestFlushSyncsOnlyWhenTheGuestChangedTheDisk) {
  // Copy-on-read alone: nothing for a guest's flush to make durable.
  std::string buf(3 * kCluster, '\0');
  ASSERT_TRUE(image_->Read(2 * kCluster, buf).ok());
  const uint64_t unsynced = fs_->UnsyncedBytes(FaultTarget::kDataFile);
  EXPECT_GE(unsynced, 3 * kCluster);
  ASSERT_TRUE(image_->FlushGuestWrites().ok());
  EXPECT_EQ(fs_->UnsyncedBytes(FaultTarget::kDataFile), unsynced);
  // A write, then the guest's flush: all of it is synced, and survives.
  Write(9 * kCluster + 10, Bytes(100, 'w'));
  ASSERT_TRUE(image_->FlushGuestWrites().ok());
  flushed_ = written_;
  EXPECT_EQ(fs_->UnsyncedBytes(FaultTarget::kDataFile), 0u);
  // Reads and a discard: the discard is a change the next flush keeps.
  ASSERT_TRUE(image_->Read(12 * kCluster, buf).ok());
  ASSERT_TRUE(image_->Discard(5 * kCluster, kCluster).ok());
  written_.replace(5 * kCluster, kCluster, std::string(kCluster, '\0'));
  ASSERT_TRUE(image_->FlushGuestWrites().ok());
  flushed_ = written_;
  EXPECT_EQ(fs_->UnsyncedBytes(FaultTarget::kDataFile), 0u);
  CrashAndVerify();
  EXPECT_EQ(written_.substr(9 * kCluster + 10, 100), Bytes(100, 'w'));
  EXPECT_EQ(written_.substr(5 * kCluster, kCluster), std::string(kCluster, '\0'));
}

TEST_F(OverlayFaultsTest, FailedDataSyncKeepsBitsOffTheDiskAndFailsEveryLaterCommit) {
  Write(0, Bytes(kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  Write(2 * kCluster, Bytes(kCluster, 'b'));                         // a new cluster
  ASSERT_TRUE(image_->Populate(6 * kCluster, kCluster, true).ok());  // a stream's copy
  Write(100, Bytes(10, 'c'));                                        // an allocated one
  testing::FilesSnapshot metadata({path_ + ".cor"});

  fs_->FailNth(FaultOp::kSync, FaultTarget::kDataFile, 1, EIO);
  Status first = image_->Flush();
  EXPECT_EQ(first.code(), EIO) << first.message();
  EXPECT_EQ(metadata.Differences(), "");
  // The kernel reports a writeback error once: this sync succeeds, and the
  // data it lost is still lost. The overlay must not say otherwise.
  Status second = image_->Flush();
  EXPECT_EQ(second.code(), EIO) << second.message();
  EXPECT_NE(second.message().find("reopen"), std::string::npos) << second.message();
  EXPECT_EQ(metadata.Differences(), "");
  EXPECT_FALSE(image_->DropBacking().ok());

  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 1u);
  // Opened again, the overlay commits as before.
  Write(9 * kCluster, Bytes(kCluster, 'd'));
  ASSERT_TRUE(Flush().ok());
  CrashAndVerify();
  EXPECT_EQ(written_.substr(9 * kCluster, kCluster), Bytes(kCluster, 'd'));
}

TEST_F(OverlayFaultsTest, NoSpaceForTheDataFileDuringAWrite) {
  Write(0, Bytes(kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  fs_->FailNth(FaultOp::kWrite, FaultTarget::kDataFile, 1, ENOSPC, FaultyFileSystem::kForever);
  Status status = image_->Write(4 * kCluster, Bytes(3 * kCluster, 'b'));  // whole new clusters
  EXPECT_EQ(status.code(), ENOSPC) << status.message();
  written_.replace(4 * kCluster, 3 * kCluster, Bytes(3 * kCluster, 'b'));
  Write(kCluster + 4 * kBlock, Bytes(2 * kBlock, 'c'), /*ok=*/false);  // copy-on-write of a partial cluster
  Write(kBlock, Bytes(4 * kBlock, 'd'), /*ok=*/false);                 // an allocated cluster
  // The disk stays full: a commit still works, for what did reach the file.
  EXPECT_TRUE(image_->Flush().ok());
  flushed_ = written_;  // a block of a failed write may hold either content
  flushed_.replace(4 * kCluster, 3 * kCluster, backing_.content.substr(4 * kCluster, 3 * kCluster));
  flushed_.replace(kCluster + 4 * kBlock, 2 * kBlock, backing_.content.substr(kCluster + 4 * kBlock, 2 * kBlock));
  flushed_.replace(kBlock, 4 * kBlock, Bytes(4 * kBlock, 'a'));
  fs_->ClearFaults();
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 1u);  // no failed write left a bit behind
}

TEST_F(OverlayFaultsTest, NoSpaceForTheDataFileDuringCopyOnRead) {
  Write(0, Bytes(kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  fs_->FailNth(FaultOp::kWrite, FaultTarget::kDataFile, 1, ENOSPC, FaultyFileSystem::kForever);
  std::string buf(2 * kCluster, '\0');
  Status status = image_->Read(3 * kCluster, buf);
  EXPECT_EQ(status.code(), ENOSPC) << status.message();
  status = image_->Populate(0, kDiskSize, /*wait=*/true);
  EXPECT_EQ(status.code(), ENOSPC) << status.message();
  EXPECT_EQ(image_->allocated_clusters(), 1u);
  EXPECT_TRUE(Flush().ok());
  fs_->ClearFaults();
  ASSERT_TRUE(image_->Read(3 * kCluster, buf).ok());
  EXPECT_EQ(buf, backing_.content.substr(3 * kCluster, 2 * kCluster));
  CrashAndVerify();
}

TEST_F(OverlayFaultsTest, NoSpaceForTheMetadataFileDuringACommit) {
  Write(0, Bytes(kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  Write(8 * kCluster, Bytes(kCluster, 'b'));
  fs_->FailNth(FaultOp::kWrite, FaultTarget::kMetadataFile, 1, ENOSPC);
  Status status = image_->Flush();
  EXPECT_EQ(status.code(), ENOSPC) << status.message();
  // The data was synced; the next commit writes the bitmap again.
  ASSERT_TRUE(Flush().ok());
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 2u);
}

TEST_F(OverlayFaultsTest, FailedMetadataSyncIsRetriedByTheNextCommit) {
  Write(8 * kCluster, Bytes(kCluster, 'b'));
  fs_->FailNth(FaultOp::kSync, FaultTarget::kMetadataFile, 1, EIO);
  EXPECT_EQ(image_->Flush().code(), EIO);
  ASSERT_TRUE(Flush().ok());
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 1u);
}

TEST_F(OverlayFaultsTest, NoSpaceOnTheDataSyncOfACommit) {
  Write(0, Bytes(kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  Write(8 * kCluster, Bytes(kCluster, 'b'));
  fs_->FailNth(FaultOp::kSync, FaultTarget::kDataFile, 1, ENOSPC);
  EXPECT_EQ(image_->Flush().code(), ENOSPC);
  EXPECT_EQ(image_->Flush().code(), EIO);
  CrashAndVerify();
  EXPECT_EQ(clusters_after_crash_, 1u);
}

TEST_F(OverlayFaultsTest, FailedPunchDuringADiscard) {
  Write(0, Bytes(2 * kCluster, 'a'));
  ASSERT_TRUE(Flush().ok());
  fs_->FailNth(FaultOp::kPunch, FaultTarget::kDataFile, 1, EIO);
  Status status = image_->Discard(kCluster, kCluster);
  EXPECT_EQ(status.code(), EIO) << status.message();
  ASSERT_TRUE(image_->Discard(kCluster, kCluster).ok());
  written_.replace(kCluster, kCluster, Bytes(kCluster, '\0'));
  ASSERT_TRUE(Flush().ok());
  CrashAndVerify();
  EXPECT_EQ(written_.substr(kCluster, kCluster), Bytes(kCluster, '\0'));
}

}  // namespace
}  // namespace corfs::overlay
