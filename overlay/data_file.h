#pragma once
// DataFile: the overlay's data file, NAME: a sparse raw file of the disk's
// size, cluster i of the disk at the same offset once the overlay holds it.
//
// Every byte the overlay keeps goes through here, and zeros stay holes:
// Store punches out 4 KiB blocks of zeros instead of writing them, and Punch
// leaves a range that holds no data alone.
//
// Threading: every method may be called from several threads at once; each
// is one or a few positional system calls on one descriptor (pread, pwrite,
// fallocate, copy_file_range, lseek for SEEK_DATA, whose moving of the file
// offset nothing else here depends on). Which thread writes which range is
// the overlay's business (cluster claims).

#include <cstdint>
#include <span>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"
#include "overlay/block_driver.h"

namespace corfs::overlay {

class DataFile {
 public:
  DataFile() = default;
  DataFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  Status Read(uint64_t offset, std::span<char> buf) const;
  // Writes `data` as it is (a guest write: its zeros are data too).
  Status Write(uint64_t offset, std::span<const char> data);
  // Writes `bytes` copied from the chain; 4 KiB blocks of zeros (aligned to
  // the disk) become holes instead.
  Status Store(uint64_t offset, std::span<const char> bytes);
  // Makes the range read as zeros, as a hole where the file system can.
  Status Punch(uint64_t offset, uint64_t length);
  // Copies `length` bytes at `offset` from the raw file `source` to the
  // same offset here without a buffer; returns how many it copied (0: it
  // cannot, and the caller copies through a buffer).
  uint64_t CopyFrom(int source, uint64_t offset, uint64_t length);
  // Allocation of a range the overlay holds: kData, or kZero for its holes.
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) const;
  Status Sync() const;

 private:
  UniqueFd fd_;
  std::string path_;
};

}  // namespace corfs::overlay
