#pragma once
// ImageTable: the images of a corfs mount, for the FUSE server (by inode)
// and the control socket (by name). The root folder is inode 1; the images
// given at mount time get 2, 3, ... in order, and each image added later
// the next number. An inode is never given to another image within a mount
// (the kernel caches inodes and their attributes), so an image removed and
// added again is a new file.
//
// Images come and go while FUSE threads serve requests: the table is a map
// under a reader-writer lock, held only to look up, add or remove (never
// across I/O). Lookups hand out shared_ptrs, so what a request found stays
// alive until it is done. An image with open files cannot be removed
// (Remove refuses it), which is what lets requests on an open file use the
// plain pointer of ByInode.
//
// Threading: every method may be called from any thread.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "mount/mounted_image.h"

namespace corfs::mount {

class ImageTable {
 public:
  static constexpr uint64_t kRootInode = 1;

  explicit ImageTable(std::vector<std::unique_ptr<MountedImage>> images);

  size_t size() const;
  // The images now, in inode order (the order they joined the mount).
  std::vector<std::shared_ptr<MountedImage>> Snapshot() const;
  // The image with inode `ino`, or nullptr.
  std::shared_ptr<MountedImage> Get(uint64_t ino) const;
  // The image called `name`, or nullptr.
  std::shared_ptr<MountedImage> Find(const std::string& name) const;

  // For requests on an open file only (read, write, flush, ...): the image
  // with inode `ino`, or nullptr. The open file keeps it in the table, so
  // the pointer stays valid for the request without a reference count.
  MountedImage* ByInode(uint64_t ino) const;

  // A FUSE open: the image with inode `ino`, its open-file count raised, or
  // nullptr. Each successful Open is paired with one Release.
  std::shared_ptr<MountedImage> Open(uint64_t ino);
  void Release(MountedImage& image);

  // Adds `image` under the next inode (written to image->inode). Fails,
  // changing nothing, when an image of that name is there.
  Status Add(std::shared_ptr<MountedImage> image);
  // Takes the image called `name` out of the table and hands it over; no
  // new request finds it. Refused while a file is open on it. The caller
  // closes its overlay (ReleaseWhenUnused) and tells the kernel.
  Status Remove(const std::string& name, std::shared_ptr<MountedImage>* out);

  // Commits and closes every overlay (the mount is going down); returns
  // the first failure.
  Status CloseAll();

  // The table must not be copied: FUSE holds a pointer to it.
  ImageTable(const ImageTable&) = delete;
  ImageTable& operator=(const ImageTable&) = delete;

 private:
  mutable std::shared_mutex mutex_;
  std::map<uint64_t, std::shared_ptr<MountedImage>> by_inode_;  // guarded by mutex_
  uint64_t next_inode_ = kRootInode + 1;                        // guarded by mutex_
};

// Waits until `image` is held by no one else (FUSE requests that found it
// before it left the table finish quickly), then commits and closes its
// overlay on the calling thread, so no request thread pays for the commit.
// After 10 s it stops waiting and leaves the close to the last holder's
// release (the overlay's destructor commits). `image` must no longer be in
// any table, and the caller must hold no other reference to it.
Status CloseRemoved(std::shared_ptr<MountedImage> image);

}  // namespace corfs::mount
