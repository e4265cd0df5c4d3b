#pragma once
// BlockDriver: the small interface every image format implements.
//
// A driver presents one image as a flat array of bytes of size() bytes. Reads
// never fail for being past the end of the underlying file: such bytes read as
// zeros. GetBlockStatus tells, for a range, whether the image itself holds the
// data (kData), knows it is zero (kZero), or holds nothing so that a lower
// layer of a chain shows through (kUnallocated), and how long that run is.
//
// Threading: every method may be called from several threads at once on one
// driver. A backing image is read together by its overlay's guest requests
// and stream workers, and, through SharedImageCache, by every overlay over
// the same template. The drivers allow it: RawDriver makes only positional
// system calls (pread, pwrite, fallocate, fdatasync, and lseek with
// SEEK_DATA / SEEK_HOLE, whose moving of the file offset no call relies
// on); Qcow2Driver is read-only and locks its caches; FaultInjectionDriver
// counts its failures with atomics; the ForwardingDriver wrappers (it, and
// the shared image cache's handles) add no other state. A new driver must
// allow it too.

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace corfs::overlay {

enum class Allocation { kData, kZero, kUnallocated };

struct BlockStatus {
  Allocation allocation = Allocation::kUnallocated;
  uint64_t length = 0;  // bytes from the queried offset with this allocation; > 0
};

class BlockDriver {
 public:
  virtual ~BlockDriver() = default;

  // The image's virtual size in bytes.
  virtual uint64_t size() const = 0;
  // The file the driver reads, for messages.
  virtual const std::string& path() const = 0;
  // "raw", "qcow2", ...
  virtual std::string format() const = 0;

  virtual Status Read(uint64_t offset, std::span<char> buf) = 0;
  virtual Status Write(uint64_t offset, std::span<const char> data) = 0;
  virtual Status Flush() = 0;
  // Makes [offset, offset+length) read as zeros, releasing space if it can.
  virtual Status Discard(uint64_t offset, uint64_t length) = 0;
  // Allocation of [offset, offset+length); `length` > 0 and within size().
  virtual Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) = 0;

  // Fails with EIO when the image's file is no longer what was opened as far
  // as its size tells (a template truncated or grown in place): checked
  // before an overlay stops needing its chain, since data copied from such
  // an image cannot be trusted. Drivers that cannot tell keep the default.
  virtual Status CheckUnchanged() const { return Status::Ok(); }

  // A file that holds the image's bytes at their own offsets (a raw image),
  // so a copy out of it can stay in the kernel (copy_file_range); -1 when
  // there is none. Wrappers keep the default: their reads must pass through
  // them.
  virtual int data_fd() const { return -1; }

  // What the image's server says identifies this version of it (HTTP: the
  // ETag, else Last-Modified, as "etag:..." / "last-modified:..."), part of
  // its identity; "" when there is none (local files have their stamp).
  virtual std::string version_tag() const { return ""; }

  // The driver whose content defines the image's identity: itself, except
  // for wrappers (fault injection) that present another image.
  virtual BlockDriver& identity_source() { return *this; }
};

}  // namespace corfs::overlay
