#include "common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/unique_fd.h"

namespace corfs {

Status PreadFull(int fd, std::span<char> buf, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read " + what);
    }
    if (n == 0) {  // end of file: the rest reads as zeros
      std::memset(buf.data() + done, 0, buf.size() - done);
      break;
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status PwriteFull(int fd, std::span<const char> data, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status CopyFileRange(int src, uint64_t src_offset, int dst, uint64_t dst_offset, uint64_t length,
                     const std::string& what, uint64_t* copied) {
  *copied = 0;
  while (*copied < length) {
    loff_t in = static_cast<loff_t>(src_offset + *copied);
    loff_t out = static_cast<loff_t>(dst_offset + *copied);
    ssize_t n = ::copy_file_range(src, &in, dst, &out, length - *copied, 0);
    if (n > 0) {
      *copied += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) return Status::Ok();  // the source ends here
    if (errno == EINTR) continue;
    // Not possible between these two files: the caller copies by hand.
    if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP || errno == EBADF) {
      return Status::Ok();
    }
    return Status::FromErrno("copy " + what);
  }
  return Status::Ok();
}

Status SyncData(int fd, const std::string& what) {
  while (::fdatasync(fd) != 0) {
    if (errno != EINTR) return Status::FromErrno("sync " + what);
  }
  return Status::Ok();
}

Status SyncParentDirectory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return Status::FromErrno("open folder " + parent.string());
  if (::fsync(dir.get()) != 0) return Status::FromErrno("sync folder " + parent.string());
  return Status::Ok();
}

Status ReplaceFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("create " + tmp);
  Status status = PwriteFull(fd.get(), text, 0, tmp);
  if (status.ok()) status = SyncData(fd.get(), tmp);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) status = Status::FromErrno("rename " + tmp);
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  return SyncParentDirectory(path);
}

bool IsAllZero(std::span<const char> data) {
  // Check the first 16 bytes by hand, then compare the buffer with itself
  // shifted by 16: memcmp is vectorised, a byte loop is not.
  size_t head = data.size() < 16 ? data.size() : 16;
  for (size_t i = 0; i < head; ++i) {
    if (data[i] != 0) return false;
  }
  if (data.size() <= 16) return true;
  return std::memcmp(data.data(), data.data() + 16, data.size() - 16) == 0;
}

Status OpenDiskFile(const std::string& path, int flags, UniqueFd* out, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC | O_NONBLOCK, mode));
  const bool creating = (flags & O_CREAT) != 0;
  if (!fd.valid()) return Status::FromErrno((creating ? "create " : "open ") + path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path);
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode)    ? "a folder"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a file";
    return Status::Invalid(path + " is " + what + ", not a regular file or a block device");
  }
  const int status_flags = ::fcntl(fd.get(), F_GETFL);
  if (status_flags < 0 || ::fcntl(fd.get(), F_SETFL, status_flags & ~O_NONBLOCK) != 0) {
    return Status::FromErrno("fcntl " + path);
  }
  *out = std::move(fd);
  return Status::Ok();
}

}  // namespace corfs
