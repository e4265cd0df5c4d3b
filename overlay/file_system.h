#pragma once
// FileSystem and File: the seam between the overlay and its own two files
// (the data file, NAME or NAME.part, and NAME.cor), in the manner of LevelDB's Env. Every change the
// overlay makes to them (open, create, write, punch, copy into, sync,
// truncate, rename, lock) goes through here, so a test can slip in a file
// system that fails the Nth sync or write, or that forgets what was never
// synced (tests/faulty_file_system.h).
//
// The real one (PosixFileSystem) is a thin layer over the system calls and
// keeps each file's descriptor visible (File::fd), for what must stay in the
// kernel: splicing a guest read (Overlay::LocalDataFd), the stream's
// write-behind hints, and reading the metadata at open. A wrapper must hand
// out the real descriptor of the same file; what goes around the seam that
// way only reads or hints, it never changes data.
//
// Threading: a FileSystem may be used from several threads at once. A File's
// methods may be called from several threads at once too (they are
// positional calls on one descriptor); which thread writes which range is
// the caller's business, as with pwrite.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"
#include "overlay/block_driver.h"

namespace corfs::overlay {

class File {
 public:
  virtual ~File() = default;

  // The path the file was opened by, for messages.
  virtual const std::string& path() const = 0;
  // The descriptor of the real file (see above).
  virtual int fd() const = 0;

  // Reads buf.size() bytes; past the end of the file reads zeros.
  virtual Status Read(uint64_t offset, std::span<char> buf) = 0;
  // Writes all of `data`.
  virtual Status Write(uint64_t offset, std::span<const char> data) = 0;
  // Deallocates the range, keeping the size (fallocate PUNCH_HOLE); fails
  // with EOPNOTSUPP where the file system cannot.
  virtual Status PunchHole(uint64_t offset, uint64_t length) = 0;
  // Copies up to `length` bytes of the file `source` at `offset` to the same
  // offset here inside the kernel (copy_file_range); returns how many it
  // copied, 0 when it cannot (the caller then copies through a buffer).
  virtual uint64_t CopyFrom(int source, uint64_t offset, uint64_t length) = 0;
  // Allocation of the range: kData, or `hole_as` for a hole (SEEK_DATA /
  // SEEK_HOLE).
  virtual Status GetBlockStatus(uint64_t offset, uint64_t length, Allocation hole_as, BlockStatus* out) = 0;
  // Size of the file in bytes.
  virtual Status GetSize(uint64_t* size) = 0;
  virtual Status Truncate(uint64_t size) = 0;
  // fdatasync: what was written before it is durable once it returns Ok.
  virtual Status Sync() = 0;
  // Takes an advisory lock (flock) without waiting; it goes with the File.
  // EBUSY, naming the holder when it can be found, if another holds it.
  virtual Status TryLock(bool exclusive) = 0;
};

enum class OpenMode {
  kRead,       // an existing file, read-only
  kReadWrite,  // an existing file
  kCreate,     // a new file; fails if one exists
  kReplace,    // a new file, or an existing one emptied
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Status Open(const std::string& path, OpenMode mode, std::unique_ptr<File>* out) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // Makes the directory entry of `path` durable (fsync of its folder).
  virtual Status SyncParentDirectory(const std::string& path) = 0;
};

// The system's file system. Stateless: one shared instance.
std::shared_ptr<FileSystem> DefaultFileSystem();

// Who holds a lock on the file open as `fd`, as " (pid N, NAME)" from
// /proc/locks, or "" when that cannot be told.
std::string DescribeLockHolder(int fd);

}  // namespace corfs::overlay
