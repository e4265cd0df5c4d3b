// What the header keeps beside the disk from version 3 on: the file's owner
// and mode as set through a mount, and the wish for a whole-image stream to
// resume. Each survives a reopen; an owner or mode moves an older overlay to
// version 3, a stream wish never does.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include "common/unique_fd.h"
#include "overlay/overlay.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

class OverlayFileAttributesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(3);
    template_ = testing::MakeRandomSparseLayer(dir_.File("template.raw"), 1 << 20, rng, 0.5);
    Create(false);
  }

  void Create(bool force) {
    CreateOptions create;
    create.backing = {{template_.path, ""}};
    create.force = force;
    Status status = Overlay::Create(path_, create);
    ASSERT_TRUE(status.ok()) << status.message();
  }

  std::unique_ptr<Overlay> Open() {
    std::unique_ptr<Overlay> overlay;
    Status status = Overlay::Open(path_, OpenOptions{}, &overlay);
    EXPECT_TRUE(status.ok()) << status.message();
    return overlay;
  }

  // Rewrites both header slots at `version`, as an older corfs made them.
  void MakeVersion(uint32_t version) {
    UniqueFd fd(::open((path_ + ".cor").c_str(), O_RDWR));
    ASSERT_TRUE(fd.valid());
    OverlayHeader header;
    ASSERT_TRUE(ReadHeader(fd.get(), path_, &header).ok());
    header.version = version;
    if (version < kFileAttributesVersion && header.partial_data_file) {
      // Older versions keep the data in NAME, unfinished or not.
      header.partial_data_file = false;
      ASSERT_EQ(::rename(PartialDataPath(path_).c_str(), path_.c_str()), 0);
    }
    for (BackingImage& image : header.chain) {
      if (version >= 2) continue;
      image.identity.stamp.reset();
      image.identity.content.reset();
    }
    for (int i = 0; i < 2; ++i, ++header.sequence) ASSERT_TRUE(WriteHeaderSlot(fd.get(), path_, header).ok());
  }

  testing::TempDir dir_;
  testing::SparseLayer template_;
  std::string path_ = dir_.File("disk.img");
};

TEST_F(OverlayFileAttributesTest, OwnerModeAndStreamWishSurviveAReopen) {
  auto overlay = Open();
  EXPECT_EQ(overlay->header().version, kLatestHeaderVersion);
  EXPECT_FALSE(overlay->header().owner);
  EXPECT_FALSE(overlay->header().mode);
  EXPECT_FALSE(overlay->header().stream_wish);
  ASSERT_TRUE(overlay->SetOwner({64055, 64055}).ok());
  ASSERT_TRUE(overlay->SetMode(0600).ok());
  ASSERT_TRUE(overlay->SetStreamWish(StreamWish{1 << 20, "ignore"}).ok());
  ASSERT_TRUE(overlay->Close().ok());
  overlay.reset();

  overlay = Open();
  const OverlayHeader header = overlay->header();
  EXPECT_EQ(header.owner, (FileOwner{64055, 64055}));
  EXPECT_EQ(header.mode, 0600u);
  EXPECT_EQ(header.stream_wish, (StreamWish{1 << 20, "ignore"}));
  ASSERT_TRUE(overlay->SetStreamWish(std::nullopt).ok());
  overlay.reset();
  EXPECT_FALSE(Open()->header().stream_wish);
}

TEST_F(OverlayFileAttributesTest, SettingWhatIsThereWritesNoHeader) {
  auto overlay = Open();
  ASSERT_TRUE(overlay->SetMode(0640).ok());
  const uint64_t sequence = overlay->header().sequence;
  ASSERT_TRUE(overlay->SetMode(0640).ok());
  ASSERT_TRUE(overlay->SetStreamWish(std::nullopt).ok());
  EXPECT_EQ(overlay->header().sequence, sequence);
}

TEST_F(OverlayFileAttributesTest, AnOwnerOrModeMovesAnOlderOverlayToVersion3) {
  for (uint32_t version : {1u, 2u}) {
    SCOPED_TRACE(version);
    MakeVersion(version);
    auto overlay = Open();
    ASSERT_EQ(overlay->header().version, version);
    ASSERT_TRUE(overlay->SetMode(0600).ok());
    EXPECT_EQ(overlay->header().version, 3u);
    overlay.reset();
    overlay = Open();
    EXPECT_EQ(overlay->header().version, 3u);
    EXPECT_EQ(overlay->header().mode, 0600u);
    overlay.reset();
    Create(true);
  }
}

TEST_F(OverlayFileAttributesTest, AStreamWishLeavesAnOlderOverlayAlone) {
  MakeVersion(2);
  auto overlay = Open();
  const OverlayHeader before = overlay->header();
  Status status = overlay->SetStreamWish(StreamWish{});
  EXPECT_EQ(status.code(), ENOTSUP) << status.message();
  EXPECT_NE(status.message().find("version 2"), std::string::npos) << status.message();
  EXPECT_TRUE(overlay->SetStreamWish(std::nullopt).ok());  // nothing to clear
  EXPECT_EQ(overlay->header(), before);
}

TEST_F(OverlayFileAttributesTest, AReadOnlyOverlayRefuses) {
  std::unique_ptr<Overlay> overlay;
  OpenOptions options;
  options.read_only = true;
  ASSERT_TRUE(Overlay::Open(path_, options, &overlay).ok());
  EXPECT_EQ(overlay->SetMode(0600).code(), EROFS);
  EXPECT_EQ(overlay->SetOwner({1, 1}).code(), EROFS);
}

}  // namespace
}  // namespace corfs::overlay
