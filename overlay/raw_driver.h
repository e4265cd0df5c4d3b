#pragma once
// RawDriver: a raw image file (or block device). It is also the protocol
// driver of a local file: the qcow2 driver reads its file through one. Holes of a sparse file are
// reported as kUnallocated, found with SEEK_DATA / SEEK_HOLE, so a chain of
// sparse raw layers works like a chain of thin images.
//
// The file must keep the size it had when opened (its identity, recorded
// in the overlay's header): a read that meets the end of the file before
// that size, or a hole that turns out to be the file's new end, is EIO,
// never zeros, so a template truncated under a mount is never copied into
// an overlay as zeros.

#include <memory>
#include <string>

#include "common/unique_fd.h"
#include "overlay/block_driver.h"

namespace corfs::overlay {

class RawDriver final : public BlockDriver {
 public:
  static Status Open(const std::string& path, bool writable, std::unique_ptr<RawDriver>* out);
  // The same for a file already open as `fd` (a memfd, say); `path` names it.
  static Status Adopt(UniqueFd fd, const std::string& path, bool writable, std::unique_ptr<RawDriver>* out);

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "raw"; }

  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t length) override;
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override;
  Status CheckUnchanged() const override;
  int data_fd() const override { return fd_.get(); }

 private:
  RawDriver(std::string path, UniqueFd fd, uint64_t size, bool writable, bool regular)
      : path_(std::move(path)), fd_(std::move(fd)), size_(size), writable_(writable), regular_(regular) {}

  // The EIO for a file no longer of size_ bytes.
  Status SizeChanged(uint64_t now) const;

  std::string path_;
  UniqueFd fd_;
  uint64_t size_;
  bool writable_;
  bool regular_;  // a regular file (else a block device)
};

// Finds the data/hole run at `offset` in the file `fd`, limited to `length`
// bytes. Holes are reported as `hole_as`. Used by RawDriver and by the
// overlay's own data file (where a hole inside an allocated cluster is zero).
Status ProbeSparseRun(int fd, uint64_t offset, uint64_t length, Allocation hole_as, const std::string& what,
                      BlockStatus* out);

}  // namespace corfs::overlay
