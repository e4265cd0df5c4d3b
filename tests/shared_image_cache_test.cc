// Images that share a template open it once.

#include "overlay/shared_image_cache.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

TEST(SharedImageCache, OpensEachFileOnceWhileInUse) {
  corfs::testing::TempDir dir;
  const std::string a = dir.path() + "/a.raw", b = dir.path() + "/b.raw", link = dir.path() + "/a-link.raw";
  std::ofstream(a) << "template a";
  std::ofstream(b) << "template b";
  ASSERT_EQ(::symlink(a.c_str(), link.c_str()), 0);

  int opens = 0;
  SharedImageCache cache([&](const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out) {
    ++opens;
    return OpenImage(path, format, out);
  });
  ImageOpener opener = cache.opener();
  std::unique_ptr<BlockDriver> first, second, via_link, other;
  ASSERT_TRUE(opener(a, "raw", &first).ok());
  ASSERT_TRUE(opener(a, "raw", &second).ok());
  ASSERT_TRUE(opener(link, "raw", &via_link).ok());  // same file by another name
  EXPECT_EQ(opens, 1);
  ASSERT_TRUE(opener(b, "raw", &other).ok());
  EXPECT_EQ(opens, 2);
  EXPECT_EQ(cache.open_images(), 2u);

  std::string text(10, '\0');
  ASSERT_TRUE(second->Read(0, text).ok());
  EXPECT_EQ(text, "template a");

  // Once nobody holds a template, it is closed; the next open opens it anew.
  first.reset();
  second.reset();
  via_link.reset();
  EXPECT_EQ(cache.open_images(), 1u);
  ASSERT_TRUE(opener(a, "raw", &first).ok());
  EXPECT_EQ(opens, 3);
}

// A shared raw template still hands its file on, so a stream copies out of
// it inside the kernel (copy_file_range) rather than through a buffer.
TEST(SharedImageCache, HandsOnTheRawFile) {
  corfs::testing::TempDir dir;
  const std::string a = dir.path() + "/a.raw";
  std::ofstream(a) << "template a";
  SharedImageCache cache(OpenImage);
  std::unique_ptr<BlockDriver> handle;
  ASSERT_TRUE(cache.opener()(a, "raw", &handle).ok());
  ASSERT_GE(handle->data_fd(), 0);
  std::string text(10, '\0');
  ASSERT_EQ(::pread(handle->data_fd(), text.data(), text.size(), 0), 10);
  EXPECT_EQ(text, "template a");
}

}  // namespace
}  // namespace corfs::overlay
