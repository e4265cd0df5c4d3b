// The data file of an unfinished overlay is NAME.part; it becomes NAME only
// after the standalone header is durable (docs/design.md, "The overlay").
// Checked here through the folder itself (which names exist), the header,
// and a rename or folder sync that fails or is lost in a power cut
// (FaultyFileSystem) between the standalone header and the rename.

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

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
using Names = std::vector<std::string>;

// A new file at `path` holding `bytes`.
void MakeFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  ASSERT_TRUE(out.good()) << path;
}

constexpr uint64_t kCluster = 64 * 1024;
constexpr uint64_t kDiskSize = 8 * kCluster;

class PartialDataFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(11);
    backing_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), kDiskSize, rng, 0.6);
  }

  Status Create(bool with_chain, bool force = false) {
    CreateOptions create;
    if (with_chain) create.backing = {{backing_.path, "raw"}};
    create.size = with_chain ? 0 : kDiskSize;
    create.cluster_size = kCluster;
    create.force = force;
    create.file_system = fs_;
    return Overlay::Create(path_, create);
  }

  Status Open(std::unique_ptr<Overlay>* out, bool read_only = false) {
    OpenOptions open;
    open.commit_interval = 0ms;
    open.read_only = read_only;
    open.file_system = fs_;
    open.warn = [this](const std::string& warning) { warnings_.push_back(warning); };
    return Overlay::Open(path_, open, out);
  }

  // Creates the overlay over the template, copies every cluster and asks
  // for the backing link to go; returns what DropBacking said.
  Status CreateAndComplete() {
    Status status = Create(/*with_chain=*/true);
    if (status.ok()) status = Open(&image_);
    if (status.ok()) status = image_->Populate(0, kDiskSize, /*wait=*/true);
    if (status.ok()) status = image_->DropBacking();
    return status;
  }

  void ExpectDisk(Overlay& image) {
    std::string disk;
    ASSERT_TRUE(testing::ReadWholeDisk(image, &disk).ok());
    EXPECT_EQ(testing::FirstDifference(disk, backing_.content), "");
  }

  Names Folder() const { return testing::ListDir(dir_.path()); }

  testing::TempDir dir_;
  std::shared_ptr<FaultyFileSystem> fs_ = std::make_shared<FaultyFileSystem>();
  std::string path_ = dir_.File("vm.img");
  std::string part_ = dir_.File("vm.img.part");
  testing::SparseLayer backing_;
  std::unique_ptr<Overlay> image_;
  std::vector<std::string> warnings_;
};

TEST_F(PartialDataFileTest, AnOverlayOverAChainIsMadeAsNamePart) {
  ASSERT_TRUE(Create(/*with_chain=*/true).ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img.cor", "vm.img.part"}));
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_EQ(image_->data_path(), part_);
  EXPECT_EQ(image_->header().version, kLatestHeaderVersion);
  EXPECT_TRUE(image_->header().partial_data_file);
  ExpectDisk(*image_);
}

TEST_F(PartialDataFileTest, AnOverlayWithoutAChainIsPlainNameAtOnce) {
  ASSERT_TRUE(Create(/*with_chain=*/false).ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  // A NAME.part beside an overlay without the flag is someone else's file.
  MakeFile(part_, "");
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_EQ(image_->data_path(), path_);
  EXPECT_FALSE(image_->header().partial_data_file);
}

TEST_F(PartialDataFileTest, BecomingStandaloneRenamesNamePartToName) {
  ASSERT_TRUE(CreateAndComplete().ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  EXPECT_EQ(image_->data_path(), path_);
  ExpectDisk(*image_);  // through the descriptor opened as NAME.part
  EXPECT_EQ(testing::FirstDifference(testing::ReadFileBytes(path_), backing_.content), "");
  // The standalone header keeps the flag (it is what allows finishing a
  // cut-short rename), and the overlay opens as NAME.
  EXPECT_TRUE(image_->header().standalone);
  EXPECT_TRUE(image_->header().partial_data_file);
  ASSERT_TRUE(image_->Close().ok());
  image_.reset();
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_EQ(image_->data_path(), path_);
  ExpectDisk(*image_);
}

TEST_F(PartialDataFileTest, AFailedRenameIsEioAndTheNextWritableOpenFinishesIt) {
  fs_->FailNth(FaultOp::kRename, FaultTarget::kDataFile, 1, EIO);
  Status dropped = CreateAndComplete();
  EXPECT_EQ(dropped.code(), EIO) << dropped.message();
  EXPECT_NE(dropped.message().find("vm.img.part"), std::string::npos) << dropped.message();
  // Standalone and reading right, but not yet named as a disk.
  EXPECT_TRUE(image_->header().standalone);
  ExpectDisk(*image_);
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img.cor", "vm.img.part"}));
  ASSERT_TRUE(image_->Close().ok());
  image_.reset();

  // Looking (check, info, a read-only open) reads NAME.part and says so.
  CheckReport report;
  CheckOverlay(path_, OpenImage, &report);
  EXPECT_TRUE(report.sound()) << ::testing::PrintToString(report.problems);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("renames it"), std::string::npos) << report.notes[0];
  OverlayInfo info;
  ASSERT_TRUE(InspectOverlay(path_, &info).ok());
  EXPECT_TRUE(info.rename_pending);
  EXPECT_EQ(info.data_file, part_);
  ASSERT_TRUE(Open(&image_, /*read_only=*/true).ok());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("pending"), std::string::npos) << warnings_[0];
  ExpectDisk(*image_);
  image_.reset();
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img.cor", "vm.img.part"}));

  // The template may go now: a standalone overlay no longer needs it.
  ASSERT_EQ(::unlink(backing_.path.c_str()), 0);
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_EQ(Folder(), (Names{"vm.img", "vm.img.cor"}));
  EXPECT_EQ(image_->data_path(), path_);
  ExpectDisk(*image_);
}

TEST_F(PartialDataFileTest, DropBackingAgainRetriesAFailedRename) {
  fs_->FailNth(FaultOp::kRename, FaultTarget::kDataFile, 1, EIO);
  EXPECT_EQ(CreateAndComplete().code(), EIO);
  ASSERT_TRUE(image_->DropBacking().ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  EXPECT_EQ(image_->data_path(), path_);
  ExpectDisk(*image_);
}

TEST_F(PartialDataFileTest, ARenameLostInAPowerCutIsFinishedAtTheNextOpen) {
  // The rename happens, but the folder sync that makes it durable fails;
  // the power cut then takes the rename back.
  fs_->FailNth(FaultOp::kSyncFolder, FaultTarget::kDataFile, 2, EIO);  // the first is the create's
  EXPECT_EQ(CreateAndComplete().code(), EIO);
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  fs_->Crash();
  image_.reset();
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img.cor", "vm.img.part"}));
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_TRUE(image_->header().standalone);
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  ExpectDisk(*image_);
}

TEST_F(PartialDataFileTest, TwoDataFilesAreRefusedNamingBoth) {
  ASSERT_TRUE(Create(/*with_chain=*/true).ok());
  for (bool standalone : {false, true}) {
    SCOPED_TRACE(standalone ? "standalone" : "unfinished");
    if (standalone) {
      ASSERT_TRUE(Open(&image_).ok());
      ASSERT_TRUE(image_->Populate(0, kDiskSize, true).ok());
      ASSERT_TRUE(image_->DropBacking().ok());
      image_.reset();
      MakeFile(part_, "x");
    } else {
      MakeFile(path_, "x");
    }
    testing::FilesSnapshot before({path_, part_, MetadataPath(path_)});
    Status opened = Open(&image_);
    ASSERT_FALSE(opened.ok());
    EXPECT_NE(opened.message().find(path_ + " and " + part_), std::string::npos) << opened.message();
    CheckReport report;
    CheckOverlay(path_, OpenImage, &report);
    ASSERT_EQ(report.problems.size(), 1u);
    EXPECT_NE(report.problems[0].find(part_), std::string::npos) << report.problems[0];
    EXPECT_EQ(before.Differences(), "");
    ASSERT_EQ(::unlink((standalone ? part_ : path_).c_str()), 0);
  }
}

TEST_F(PartialDataFileTest, AMissingOrRenamedDataFileIsRefused) {
  ASSERT_TRUE(Create(/*with_chain=*/true).ok());
  ASSERT_EQ(::rename(part_.c_str(), path_.c_str()), 0);  // an unfinished disk renamed by hand
  Status opened = Open(&image_);
  EXPECT_FALSE(opened.ok());
  EXPECT_NE(opened.message().find("unfinished"), std::string::npos) << opened.message();
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  opened = Open(&image_);
  EXPECT_EQ(opened.code(), ENOENT) << opened.message();
  EXPECT_NE(opened.message().find(part_), std::string::npos) << opened.message();
}

TEST_F(PartialDataFileTest, CreateRefusesALeftoverNamePartAndForceReplacesEitherName) {
  MakeFile(part_, "left over");
  Status created = Create(/*with_chain=*/false);
  EXPECT_EQ(created.code(), EEXIST) << created.message();
  // --force over a complete overlay (NAME) with a chain: NAME goes, NAME.part comes.
  ASSERT_EQ(::unlink(part_.c_str()), 0);
  ASSERT_TRUE(Create(/*with_chain=*/false).ok());
  ASSERT_TRUE(Create(/*with_chain=*/true, /*force=*/true).ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img.cor", "vm.img.part"}));
  ASSERT_TRUE(Open(&image_).ok());
  ExpectDisk(*image_);
  // Not while it is open: the lock on NAME.cor keeps --force out.
  EXPECT_EQ(Create(/*with_chain=*/false, /*force=*/true).code(), EBUSY);
  image_.reset();
  // --force over an unfinished one without a chain: NAME.part goes.
  ASSERT_TRUE(Create(/*with_chain=*/false, /*force=*/true).ok());
  EXPECT_EQ(Folder(), (Names{"template.raw", "vm.img", "vm.img.cor"}));
  ASSERT_TRUE(Open(&image_).ok());
  EXPECT_EQ(image_->allocated_clusters(), 0u);
}

}  // namespace
}  // namespace corfs::overlay
