#pragma once
// DataFile: the overlay's data file, NAME: a sparse raw file of the disk's
// size, cluster i of the disk at the same offset once the overlay holds it.
//
// Every byte the overlay keeps goes through here, and zeros stay holes:
// Store punches out 4 KiB blocks of zeros instead of writing them, and Punch
// leaves a range that holds no data alone.
//
// The file itself is a File of the overlay's FileSystem (file_system.h), so
// tests can fail or forget what is done to it.
//
// Threading: every method may be called from several threads at once; each
// is one or a few positional calls on the File (read, write, punch, copy,
// block status). Which thread writes which range is the overlay's business
// (cluster claims).

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "overlay/block_driver.h"
#include "overlay/file_system.h"

namespace corfs::overlay {

class DataFile {
 public:
  DataFile() = default;
  explicit DataFile(std::unique_ptr<File> file) : file_(std::move(file)) {}

  int fd() const { return file_->fd(); }
  const std::string& path() const { return file_->path(); }

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
  Status Sync() const { return file_->Sync(); }
  // Sets the file's size; what it adds is a hole (zeros).
  Status Truncate(uint64_t size) { return file_->Truncate(size); }

 private:
  std::unique_ptr<File> file_;
};

}  // namespace corfs::overlay
