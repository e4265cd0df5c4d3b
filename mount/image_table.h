#pragma once
// ImageTable: the images of a corfs mount, for the FUSE server (by inode)
// and the control socket (by name). The root folder is inode 1; image i of
// the table is inode i + 2. The table is fixed for the life of a mount (no
// files come or go), so lookups need no lock and may run on any thread.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mount/mounted_image.h"

namespace corfs::mount {

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
      if (images_[i]->name() == name) return static_cast<long>(i);
    }
    return -1;
  }
  // The image called `name`, or nullptr.
  MountedImage* Find(const std::string& name) const {
    const long index = IndexOf(name);
    return index < 0 ? nullptr : images_[static_cast<size_t>(index)].get();
  }

  // Commits and closes every overlay (the mount is going down); returns
  // the first failure.
  Status CloseAll();

 private:
  std::vector<std::unique_ptr<MountedImage>> images_;
};

}  // namespace corfs::mount
