// BackingChain over sparse raw files: what falls through to which layer,
// zeros past a shorter layer's end, block status runs, partial chains.

#include "overlay/backing_chain.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "overlay/image_opener.h"
#include "overlay/overlay.h"
#include "overlay/raw_driver.h"
#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

using testing::ExpectedChainContent;
using testing::SparseLayer;
using testing::TempDir;

class BackingChainTest : public ::testing::Test {
 protected:
  // Three layers: the top as long as the disk, a shorter middle one (so the
  // base's data past its end must not show), and a base longer than both.
  void SetUp() override {
    seed_ = testing::TestSeed();
    std::mt19937_64 rng(seed_);
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("top.raw"), kDiskSize, rng, 0.25, 0.2));
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("middle.raw"), kMiddleSize, rng, 0.35, 0.1));
    layers_.push_back(testing::MakeRandomSparseLayer(dir_.File("base.raw"), kBaseSize, rng, 0.6));
  }

  std::unique_ptr<BackingChain> OpenChain(size_t first = 0) {
    std::vector<std::unique_ptr<BlockDriver>> drivers;
    for (size_t i = first; i < layers_.size(); ++i) {
      std::unique_ptr<BlockDriver> driver;
      Status opened = OpenImage(layers_[i].path, "raw", &driver);
      EXPECT_TRUE(opened.ok()) << opened.message();
      drivers.push_back(std::move(driver));
    }
    return std::make_unique<BackingChain>(std::move(drivers), kDiskSize);
  }

  static constexpr uint64_t kDiskSize = 1024 * 1024 + 5000;
  static constexpr uint64_t kMiddleSize = 512 * 1024 + 300;  // ends inside a 4 KiB block
  static constexpr uint64_t kBaseSize = 1536 * 1024;

  TempDir dir_;
  uint64_t seed_ = 0;
  std::vector<SparseLayer> layers_;
};

TEST_F(BackingChainTest, ReadsMergeLayersAndZerosPastAShorterLayer) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto chain = OpenChain();
  ASSERT_EQ(chain->depth(), 3u);
  EXPECT_EQ(chain->visible_size(0), kDiskSize);
  EXPECT_EQ(chain->visible_size(1), kMiddleSize);
  EXPECT_EQ(chain->visible_size(2), kMiddleSize);  // cut at the middle layer's end

  const std::string expected = ExpectedChainContent(layers_, kDiskSize);
  std::string all(kDiskSize, 'x');
  ASSERT_TRUE(chain->Read(0, all).ok());
  ASSERT_TRUE(all == expected) << "whole-disk read differs";

  // The base holds data past the middle layer's end that the disk must not show.
  bool base_hidden_data = false;
  for (uint64_t o = kMiddleSize; o < kBaseSize && !base_hidden_data; o += 4096) {
    base_hidden_data = layers_[2].Allocated(o) && !layers_[0].Allocated(o);
  }
  EXPECT_TRUE(base_hidden_data) << "the random layout should hide some base data";

  std::mt19937_64 rng(seed_ + 1);
  for (int i = 0; i < 300; ++i) {
    uint64_t offset = testing::RandomIn(rng, 0, kDiskSize - 1);
    uint64_t length = testing::RandomIn(rng, 1, std::min<uint64_t>(kDiskSize - offset, 70000));
    std::string buf(length, 'x');
    ASSERT_TRUE(chain->Read(offset, buf).ok());
    ASSERT_TRUE(buf == expected.substr(offset, length)) << "read of " << length << " at " << offset;
  }
  // Around the middle layer's end, byte by byte.
  for (uint64_t offset = kMiddleSize - 10; offset < kMiddleSize + 10; ++offset) {
    char c = 'x';
    ASSERT_TRUE(chain->Read(offset, std::span(&c, 1)).ok());
    EXPECT_EQ(c, expected[offset]) << offset;
  }
}

TEST_F(BackingChainTest, BlockStatusRunsMatchTheLayers) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto chain = OpenChain();
  uint64_t offset = 0;
  int runs = 0;
  while (offset < kDiskSize) {
    BlockStatus status;
    ASSERT_TRUE(chain->GetBlockStatus(offset, kDiskSize - offset, &status).ok());
    ASSERT_GT(status.length, 0u);
    ASSERT_LE(status.length, kDiskSize - offset);
    // Raw layers report data or holes, never kZero.
    ASSERT_NE(status.allocation, Allocation::kZero);
    const bool data = status.allocation == Allocation::kData;
    for (uint64_t o = offset; o < offset + status.length; o += 512) {
      ASSERT_EQ(testing::ChainHoldsData(layers_, kDiskSize, o), data)
          << "offset " << o << " in a run at " << offset << " of " << status.length;
    }
    offset += status.length;
    ++runs;
  }
  EXPECT_GT(runs, 10);
}

TEST_F(BackingChainTest, EndLayerAndSuffix) {
  SCOPED_TRACE("seed " + std::to_string(seed_));
  auto chain = OpenChain();
  std::string buf(kDiskSize, 'x');

  // Only the top layer.
  ASSERT_TRUE(chain->Read(0, buf, 1).ok());
  EXPECT_TRUE(buf == ExpectedChainContent({layers_[0]}, kDiskSize));
  // Top and middle.
  ASSERT_TRUE(chain->Read(0, buf, 2).ok());
  EXPECT_TRUE(buf == ExpectedChainContent({layers_[0], layers_[1]}, kDiskSize));
  // No layer: zeros.
  ASSERT_TRUE(chain->Read(0, buf, 0).ok());
  EXPECT_TRUE(buf == std::string(kDiskSize, '\0'));

  // The chain below the top, as left after streaming the top.
  auto suffix = chain->Suffix(1, kDiskSize);
  ASSERT_EQ(suffix->depth(), 2u);
  ASSERT_TRUE(suffix->Read(0, buf).ok());
  EXPECT_TRUE(buf == ExpectedChainContent({layers_[1], layers_[2]}, kDiskSize));

  // The middle and base chain opened on its own agrees.
  auto lower = OpenChain(1);
  std::string other(kDiskSize, 'y');
  ASSERT_TRUE(lower->Read(0, other).ok());
  EXPECT_TRUE(buf == other);
}

TEST(BackingChain, EmptyChainReadsZeros) {
  BackingChain chain;
  std::string buf(10000, 'x');
  ASSERT_TRUE(chain.Read(123, buf).ok());
  EXPECT_TRUE(buf == std::string(10000, '\0'));
  BlockStatus status;
  ASSERT_TRUE(chain.GetBlockStatus(0, 10000, &status).ok());
  EXPECT_EQ(status.allocation, Allocation::kUnallocated);
  EXPECT_EQ(status.length, 10000u);
}

TEST(RawDriver, ReadsZerosPastItsEndAndReportsHoles) {
  TempDir dir;
  std::mt19937_64 rng(7);
  SparseLayer layer = testing::MakeRandomSparseLayer(dir.File("a.raw"), 100000, rng, 0.5);
  std::unique_ptr<RawDriver> raw;
  ASSERT_TRUE(RawDriver::Open(layer.path, false, &raw).ok());
  EXPECT_EQ(raw->size(), 100000u);
  EXPECT_EQ(raw->format(), "raw");
  std::string buf(8192, 'x');
  ASSERT_TRUE(raw->Read(96000, buf).ok());
  EXPECT_TRUE(buf.substr(0, 4000) == layer.content.substr(96000));
  EXPECT_TRUE(buf.substr(4000) == std::string(8192 - 4000, '\0'));
  // Read-only drivers refuse writes.
  EXPECT_EQ(raw->Write(0, buf).code(), EROFS);

  std::unique_ptr<RawDriver> missing;
  Status opened = RawDriver::Open(dir.File("nope.raw"), false, &missing);
  EXPECT_EQ(opened.code(), ENOENT);
  EXPECT_NE(opened.message().find("nope.raw"), std::string::npos);
}

// A backing image named by a relative path is recorded relative to the
// overlay's folder, so the two can move together.
TEST(BackingPaths, RelativePathsMoveWithTheOverlay) {
  TempDir dir;
  std::filesystem::create_directories(dir.File("x/a"));
  std::filesystem::create_directories(dir.File("x/b"));
  std::mt19937_64 rng(3);
  SparseLayer base = testing::MakeRandomSparseLayer(dir.File("x/b/base.raw"), 256 * 1024, rng, 0.5);
  const std::filesystem::path old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  CreateOptions create;
  create.backing = {{"x/b/base.raw", ""}};
  Status status = Overlay::Create("x/a/disk.img", create);
  std::filesystem::current_path(old_cwd);
  ASSERT_TRUE(status.ok()) << status.message();

  std::filesystem::rename(dir.File("x"), dir.File("y"));
  std::unique_ptr<Overlay> image;
  OpenOptions open;
  open.commit_interval = std::chrono::milliseconds(0);
  status = Overlay::Open(dir.File("y/a/disk.img"), open, &image);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(image->header().chain.size(), 1u);
  EXPECT_EQ(image->header().chain[0].spec.path, "../b/base.raw");
  std::string all;
  ASSERT_TRUE(testing::ReadWholeDisk(*image, &all).ok());
  EXPECT_EQ(testing::FirstDifference(all, base.content), "");
  size_t layer = 99;
  ASSERT_TRUE(image->FindBackingLayer(dir.File("y/b/base.raw"), &layer).ok());
  EXPECT_EQ(layer, 0u);
  EXPECT_EQ(image->FindBackingLayer(dir.File("y/b/other.raw"), &layer).code(), ENOENT);
}

}  // namespace
}  // namespace corfs::overlay
