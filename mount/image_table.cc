#include "mount/image_table.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace corfs::mount {

ImageTable::ImageTable(std::vector<std::unique_ptr<MountedImage>> images) {
  for (std::unique_ptr<MountedImage>& image : images) {
    image->inode = next_inode_++;
    by_inode_.emplace(image->inode, std::move(image));
  }
}

size_t ImageTable::size() const {
  std::shared_lock lock(mutex_);
  return by_inode_.size();
}

std::vector<std::shared_ptr<MountedImage>> ImageTable::Snapshot() const {
  std::shared_lock lock(mutex_);
  std::vector<std::shared_ptr<MountedImage>> images;
  images.reserve(by_inode_.size());
  for (const auto& [ino, image] : by_inode_) images.push_back(image);
  return images;
}

std::shared_ptr<MountedImage> ImageTable::Get(uint64_t ino) const {
  std::shared_lock lock(mutex_);
  auto it = by_inode_.find(ino);
  return it == by_inode_.end() ? nullptr : it->second;
}

std::shared_ptr<MountedImage> ImageTable::Find(const std::string& name) const {
  std::shared_lock lock(mutex_);
  for (const auto& [ino, image] : by_inode_) {
    if (image->name() == name) return image;
  }
  return nullptr;
}

MountedImage* ImageTable::ByInode(uint64_t ino) const {
  std::shared_lock lock(mutex_);
  auto it = by_inode_.find(ino);
  return it == by_inode_.end() ? nullptr : it->second.get();
}

std::shared_ptr<MountedImage> ImageTable::Open(uint64_t ino) {
  // Shared is enough: Remove, which reads the count, holds the lock
  // exclusively, so it sees every Open that found the image.
  std::shared_lock lock(mutex_);
  auto it = by_inode_.find(ino);
  if (it == by_inode_.end()) return nullptr;
  it->second->open_files.fetch_add(1, std::memory_order_relaxed);
  return it->second;
}

void ImageTable::Release(MountedImage& image) {
  std::shared_lock lock(mutex_);
  image.open_files.fetch_sub(1, std::memory_order_relaxed);
}

Status ImageTable::Add(std::shared_ptr<MountedImage> image) {
  std::unique_lock lock(mutex_);
  for (const auto& [ino, other] : by_inode_) {
    if (other->name() == image->name()) {
      return Status::Error(EEXIST, "image '" + image->name() + "' is in the mount already");
    }
  }
  image->inode = next_inode_++;
  by_inode_.emplace(image->inode, std::move(image));
  return Status::Ok();
}

Status ImageTable::Remove(const std::string& name, std::shared_ptr<MountedImage>* out) {
  std::unique_lock lock(mutex_);
  for (auto it = by_inode_.begin(); it != by_inode_.end(); ++it) {
    if (it->second->name() != name) continue;
    const uint32_t open = it->second->open_files.load(std::memory_order_relaxed);
    if (open != 0) {
      return Status::Error(EBUSY,
                           "image '" + name + "' is open (" + std::to_string(open) + " open file(s)); close it first");
    }
    *out = std::move(it->second);
    by_inode_.erase(it);
    return Status::Ok();
  }
  return Status::NotFound("image '" + name + "' is not in the mount");
}

Status ImageTable::CloseAll() {
  Status first;
  for (const std::shared_ptr<MountedImage>& image : Snapshot()) {
    Status status = image->Close();
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

Status CloseRemoved(std::shared_ptr<MountedImage> image) {
  // Only FUSE lookups and attribute requests can still hold it (nothing
  // finds it any more, and it has no open files), each for microseconds.
  // Should one not let go, its release closes the overlay instead
  // (~Overlay commits), rather than this thread waiting forever.
  constexpr auto kPatience = std::chrono::seconds(10);
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (image.use_count() > 1) {
    if (std::chrono::steady_clock::now() >= deadline) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The other holders' last uses happen before their reference drops (an
  // acq_rel decrement); this fence orders them before the close.
  std::atomic_thread_fence(std::memory_order_acquire);
  Status closed = image->Close();
  image.reset();  // the image goes here, not on a request thread
  return closed;
}

}  // namespace corfs::mount
