#pragma once
// ImageTable: the files of a corfs mount. The root folder is inode 1; image
// i of the table is inode i + 2. The table is fixed for the life of a mount
// (no files come or go), so lookups need no lock; the few attributes that
// change (mode, times) are atomics.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "overlay/overlay.h"

namespace corfs::fuse {

struct MountedImage {
  std::string name;
  std::unique_ptr<overlay::Overlay> overlay;
  bool read_only = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::atomic<uint32_t> mode{0644};  // permission bits only
  std::atomic<int64_t> mtime_ns{0};  // last write, or mount time
};

class ImageTable {
 public:
  static constexpr uint64_t kRootInode = 1;

  explicit ImageTable(std::vector<std::unique_ptr<MountedImage>> images) : images_(std::move(images)) {}

  size_t size() const { return images_.size(); }
  MountedImage& at(size_t index) const { return *images_[index]; }
  static uint64_t InodeOf(size_t index) { return index + 2; }

  // The image with inode `ino`, or nullptr.
  MountedImage* ByInode(uint64_t ino) const {
    if (ino < 2 || ino - 2 >= images_.size()) return nullptr;
    return images_[ino - 2].get();
  }
  // The index of the image called `name`, or -1.
  long IndexOf(const std::string& name) const {
    for (size_t i = 0; i < images_.size(); ++i) {
      if (images_[i]->name == name) return static_cast<long>(i);
    }
    return -1;
  }

  // Commits every image; returns the first failure.
  Status FlushAll();

 private:
  std::vector<std::unique_ptr<MountedImage>> images_;
};

}  // namespace corfs::fuse
