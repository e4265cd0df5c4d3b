// ImageTable: images joining and leaving a running mount while FUSE
// threads look them up. Inodes are stable and never reused, an open image
// cannot be removed, a removed image stays alive for whoever found it
// before, and CloseRemoved closes it only once they are done.

#include "mount/image_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_support.h"

namespace corfs::mount {
namespace {

using corfs::testing::TempDir;

class ImageTableTest : public ::testing::Test {
 protected:
  // A mounted image over a blank 1 MiB overlay of its own.
  std::unique_ptr<MountedImage> MakeImage(const std::string& name) {
    const std::string path = dir_.File(name);
    overlay::CreateOptions create;
    create.size = 1 << 20;
    EXPECT_TRUE(overlay::Overlay::Create(path, create).ok());
    auto image = std::make_unique<MountedImage>();
    image->config.name = name;
    image->config.overlay_path = path;
    EXPECT_TRUE(overlay::Overlay::Open(path, {}, &image->overlay).ok());
    return image;
  }

  std::vector<std::string> Names(const ImageTable& table) {
    std::vector<std::string> names;
    for (const auto& image : table.Snapshot()) names.push_back(image->name());
    return names;
  }

  TempDir dir_;
};

TEST_F(ImageTableTest, InodesFollowTheOrderAndAreNeverReused) {
  std::vector<std::unique_ptr<MountedImage>> images;
  images.push_back(MakeImage("a"));
  images.push_back(MakeImage("b"));
  ImageTable table(std::move(images));
  EXPECT_EQ(table.Find("a")->inode, 2u);
  EXPECT_EQ(table.Find("b")->inode, 3u);
  EXPECT_EQ(table.Get(3)->name(), "b");
  EXPECT_EQ(table.ByInode(2)->name(), "a");
  EXPECT_EQ(table.Get(ImageTable::kRootInode), nullptr);

  ASSERT_TRUE(table.Add(MakeImage("c")).ok());
  EXPECT_EQ(table.Find("c")->inode, 4u);
  std::shared_ptr<MountedImage> removed;
  ASSERT_TRUE(table.Remove("b", &removed).ok());
  ASSERT_TRUE(CloseRemoved(std::move(removed)).ok());
  EXPECT_EQ(table.Get(3), nullptr);
  EXPECT_EQ(table.Find("b"), nullptr);
  ASSERT_TRUE(table.Add(MakeImage("b2")).ok());
  EXPECT_EQ(table.Find("b2")->inode, 5u);  // not 3: the kernel may still know 3
  EXPECT_EQ(Names(table), (std::vector<std::string>{"a", "c", "b2"}));
  EXPECT_EQ(table.size(), 3u);
  EXPECT_TRUE(table.CloseAll().ok());
}

TEST_F(ImageTableTest, AddRefusesANameInUse) {
  std::vector<std::unique_ptr<MountedImage>> images;
  images.push_back(MakeImage("a"));
  ImageTable table(std::move(images));
  std::shared_ptr<MountedImage> again = MakeImage("a2");
  again->config.name = "a";
  Status added = table.Add(again);
  EXPECT_EQ(added.code(), EEXIST) << added.message();
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(again->inode, 0u);
  EXPECT_TRUE(again->overlay->Close().ok());
  EXPECT_TRUE(table.CloseAll().ok());
}

TEST_F(ImageTableTest, AnOpenImageCannotBeRemoved) {
  std::vector<std::unique_ptr<MountedImage>> images;
  images.push_back(MakeImage("a"));
  ImageTable table(std::move(images));
  std::shared_ptr<MountedImage> opened = table.Open(2);
  ASSERT_NE(opened, nullptr);
  ASSERT_NE(table.Open(2), nullptr);  // a second open file
  std::shared_ptr<MountedImage> removed;
  Status refused = table.Remove("a", &removed);
  EXPECT_EQ(refused.code(), EBUSY);
  EXPECT_NE(refused.message().find("2 open file(s)"), std::string::npos) << refused.message();
  EXPECT_EQ(removed, nullptr);
  table.Release(*opened);
  EXPECT_EQ(table.Remove("a", &removed).code(), EBUSY);
  table.Release(*opened);
  opened.reset();
  ASSERT_TRUE(table.Remove("a", &removed).ok());
  EXPECT_EQ(table.Open(2), nullptr);
  EXPECT_EQ(table.Remove("a", &removed).code(), ENOENT);
  EXPECT_TRUE(CloseRemoved(std::move(removed)).ok());
}

TEST_F(ImageTableTest, ARemovedImageClosesOnlyOnceItsLastFinderIsDone) {
  std::vector<std::unique_ptr<MountedImage>> images;
  images.push_back(MakeImage("a"));
  ImageTable table(std::move(images));
  std::shared_ptr<MountedImage> found = table.Get(2);  // a request in flight
  std::shared_ptr<MountedImage> removed;
  ASSERT_TRUE(table.Remove("a", &removed).ok());
  EXPECT_EQ(table.Get(2), nullptr);
  std::atomic<bool> released{false};
  std::thread request([&] {
    // The request still reads what it found.
    EXPECT_EQ(found->overlay->size(), 1u << 20);
    released = true;
    found.reset();
  });
  EXPECT_TRUE(CloseRemoved(std::move(removed)).ok());
  EXPECT_TRUE(released);
  request.join();
}

// Lookups, opens and listings on many threads while images come and go: run
// under ASan (scripts/test-asan.sh) this finds a request that outlives its
// image.
TEST_F(ImageTableTest, LookupsWhileImagesComeAndGo) {
  std::vector<std::unique_ptr<MountedImage>> images;
  images.push_back(MakeImage("steady"));
  ImageTable table(std::move(images));
  // Every round adds images of its own, as image-add and SIGHUP make a new
  // MountedImage each time: a reader may still hold one a round removed.
  std::vector<std::shared_ptr<MountedImage>> made;
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!stop) {
        for (uint64_t ino = 2; ino < 40; ++ino) {
          if (std::shared_ptr<MountedImage> image = table.Get(ino)) {
            ASSERT_EQ(image->inode, ino);
          }
          if (std::shared_ptr<MountedImage> image = table.Open(ino)) {
            ASSERT_EQ(table.ByInode(ino), image.get());  // pinned by the open
            ASSERT_GT(image->overlay->size(), 0u);
            table.Release(*image);
          }
        }
        for (const auto& image : table.Snapshot()) ASSERT_FALSE(image->name().empty());
      }
    });
  }
  for (int round = 0; round < 8; ++round) {
    std::vector<std::shared_ptr<MountedImage>> spares;
    for (int i = 0; i < 4; ++i) {
      spares.push_back(MakeImage("spare" + std::to_string(round) + "-" + std::to_string(i)));
      made.push_back(spares.back());
      ASSERT_TRUE(table.Add(spares.back()).ok());
    }
    for (auto& spare : spares) {
      std::shared_ptr<MountedImage> removed;
      // A reader may hold it open for a moment.
      while (!table.Remove(spare->name(), &removed).ok()) std::this_thread::yield();
    }
  }
  stop = true;
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(Names(table), std::vector<std::string>{"steady"});
  EXPECT_EQ(table.Find("steady")->inode, 2u);
  for (auto& spare : made) EXPECT_TRUE(spare->overlay->Close().ok());
  EXPECT_TRUE(table.CloseAll().ok());
}

}  // namespace
}  // namespace corfs::mount
