// A stream's write-behind keeps about a window of what it wrote in the page
// cache, and loses nothing of it.

#include "overlay/write_behind.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/test_support.h"

namespace corfs::overlay {
namespace {

// Bytes of [0, length) of `fd` in the page cache.
size_t ResidentBytes(int fd, size_t length) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0);
  if (map == MAP_FAILED) return SIZE_MAX;
  std::vector<unsigned char> pages((length + page - 1) / page);
  const bool ok = ::mincore(map, length, pages.data()) == 0;
  ::munmap(map, length);
  if (!ok) return SIZE_MAX;
  return static_cast<size_t>(std::count_if(pages.begin(), pages.end(), [](unsigned char p) { return p & 1; })) * page;
}

TEST(WriteBehind, KeepsAboutAWindowInThePageCache) {
  constexpr size_t kChunk = 512 << 10, kTotal = 64 << 20, kBatch = 4 << 20, kWindow = 8 << 20;
  corfs::testing::TempDir dir;
  const std::string path = dir.File("data");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_TRUE(fd.valid());
  struct statfs fs {};
  ASSERT_EQ(::fstatfs(fd.get(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) {
    GTEST_SKIP() << "the test folder is in memory (tmpfs): its pages cannot be written back or dropped";
  }

  WriteBehind write_behind(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), kBatch, kWindow);
  std::string chunk(kChunk, '\0');
  for (size_t offset = 0; offset < kTotal; offset += kChunk) {
    std::fill(chunk.begin(), chunk.end(), static_cast<char>('a' + offset / kChunk % 26));
    ASSERT_EQ(::pwrite(fd.get(), chunk.data(), kChunk, static_cast<off_t>(offset)), static_cast<ssize_t>(kChunk));
    write_behind.Written(offset, kChunk);
  }
  // The window in flight, plus the batch not started yet.
  EXPECT_LE(ResidentBytes(fd.get(), kTotal), kWindow + kBatch);

  std::string read(kChunk, '\0');
  for (size_t offset = 0; offset < kTotal; offset += kChunk) {
    ASSERT_EQ(::pread(fd.get(), read.data(), kChunk, static_cast<off_t>(offset)), static_cast<ssize_t>(kChunk));
    ASSERT_EQ(read, std::string(kChunk, static_cast<char>('a' + offset / kChunk % 26))) << "at " << offset;
  }
}

}  // namespace
}  // namespace corfs::overlay
