#include "overlay/raw_driver.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/file_io.h"

namespace corfs::overlay {

Status RawDriver::Open(const std::string& path, bool writable, std::unique_ptr<RawDriver>* out) {
  UniqueFd fd;
  CORFS_RETURN_IF_ERROR(OpenDiskFile(path, writable ? O_RDWR : O_RDONLY, &fd));
  return Adopt(std::move(fd), path, writable, out);
}

Status RawDriver::Adopt(UniqueFd fd, const std::string& path, bool writable, std::unique_ptr<RawDriver>* out) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path);
  uint64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd.get(), BLKGETSIZE64, &size) != 0) return Status::FromErrno("size of " + path);
  } else {
    return Status::Invalid(path + " is neither a regular file nor a block device");
  }
  out->reset(new RawDriver(path, std::move(fd), size, writable, S_ISREG(st.st_mode)));
  return Status::Ok();
}

Status RawDriver::Read(uint64_t offset, std::span<char> buf) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd_.get(), buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + path_);
    }
    if (n == 0) {
      if (offset + done < size_) {
        Status changed = CheckUnchanged();
        return changed.ok() ? Status::Error(EIO, "read " + path_ + ": the file ends before its size") : changed;
      }
      std::memset(buf.data() + done, 0, buf.size() - done);  // past the image's end: zeros
      break;
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status RawDriver::SizeChanged(uint64_t now) const {
  return Status::Error(EIO, path_ + " now has " + std::to_string(now) + " bytes, not the " + std::to_string(size_) +
                                " it had when opened: the image changed under the overlay");
}

Status RawDriver::CheckUnchanged() const {
  if (!regular_) return Status::Ok();
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno("stat " + path_);
  if (static_cast<uint64_t>(st.st_size) != size_) return SizeChanged(static_cast<uint64_t>(st.st_size));
  return Status::Ok();
}

Status RawDriver::Write(uint64_t offset, std::span<const char> data) {
  if (!writable_) return Status::Error(EROFS, path_ + " is open read-only");
  return PwriteFull(fd_.get(), data, offset, path_);
}

Status RawDriver::Flush() {
  if (!writable_) return Status::Ok();
  return SyncData(fd_.get(), path_);
}

Status RawDriver::Discard(uint64_t offset, uint64_t length) {
  if (!writable_) return Status::Error(EROFS, path_ + " is open read-only");
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) != 0) {
    return Status::FromErrno("punch hole in " + path_);
  }
  return Status::Ok();
}

Status RawDriver::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  CORFS_RETURN_IF_ERROR(ProbeSparseRun(fd_.get(), offset, length, Allocation::kUnallocated, path_, out));
  // Past the end of a file SEEK_DATA answers as for a hole at its end: a
  // file cut short would look like a hole, and read as zeros. One fstat per
  // hole that reaches the end of the query tells them apart.
  if (out->allocation == Allocation::kUnallocated && out->length == length) return CheckUnchanged();
  return Status::Ok();
}

Status ProbeSparseRun(int fd, uint64_t offset, uint64_t length, Allocation hole_as, const std::string& what,
                      BlockStatus* out) {
  off_t data = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
  if (data < 0) {
    if (errno == ENXIO) {  // no data from here to the end of the file
      *out = {hole_as, length};
      return Status::Ok();
    }
    if (errno == EINVAL || errno == EOPNOTSUPP) {  // no sparse support: all data
      *out = {Allocation::kData, length};
      return Status::Ok();
    }
    return Status::FromErrno("seek data in " + what);
  }
  if (static_cast<uint64_t>(data) > offset) {
    *out = {hole_as, std::min<uint64_t>(length, static_cast<uint64_t>(data) - offset)};
    return Status::Ok();
  }
  off_t hole = ::lseek(fd, static_cast<off_t>(offset), SEEK_HOLE);
  if (hole < 0) return Status::FromErrno("seek hole in " + what);
  *out = {Allocation::kData, std::min<uint64_t>(length, static_cast<uint64_t>(hole) - offset)};
  if (out->length == 0) out->length = length;  // defensive: a racing extension of the file
  return Status::Ok();
}

}  // namespace corfs::overlay
