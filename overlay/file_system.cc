#include "overlay/file_system.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

namespace {

class PosixFile final : public File {
 public:
  PosixFile(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}

  const std::string& path() const override { return path_; }
  int fd() const override { return fd_.get(); }

  Status Read(uint64_t offset, std::span<char> buf) override { return PreadFull(fd_.get(), buf, offset, path_); }
  Status Write(uint64_t offset, std::span<const char> data) override {
    return PwriteFull(fd_.get(), data, offset, path_);
  }
  Status PunchHole(uint64_t offset, uint64_t length) override {
    if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) != 0) {
      return Status::FromErrno("punch hole in " + path_);
    }
    return Status::Ok();
  }
  uint64_t CopyFrom(int source, uint64_t offset, uint64_t length) override {
    uint64_t copied = 0;
    // On a failure the caller's buffered copy takes over where this stopped,
    // and reports the error if it is real.
    (void)CopyFileRange(source, offset, fd_.get(), offset, length, path_, &copied);
    return copied;
  }
  Status GetBlockStatus(uint64_t offset, uint64_t length, Allocation hole_as, BlockStatus* out) override {
    return ProbeSparseRun(fd_.get(), offset, length, hole_as, path_, out);
  }
  Status GetSize(uint64_t* size) override {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) return Status::FromErrno("stat " + path_);
    if (!S_ISREG(st.st_mode)) return Status::Invalid(path_ + " is not a regular file");
    *size = static_cast<uint64_t>(st.st_size);
    return Status::Ok();
  }
  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) return Status::FromErrno("size " + path_);
    return Status::Ok();
  }
  Status Sync() override { return SyncData(fd_.get(), path_); }
  Status TryLock(bool exclusive) override {
    if (::flock(fd_.get(), (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0) return Status::Ok();
    if (errno != EWOULDBLOCK) return Status::FromErrno("lock " + path_);
    return Status::Error(EBUSY, "in use by another process" + DescribeLockHolder(fd_.get()));
  }

 private:
  UniqueFd fd_;
  std::string path_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Status Open(const std::string& path, OpenMode mode, std::unique_ptr<File>* out) override {
    int flags = 0;
    switch (mode) {
      case OpenMode::kRead: flags |= O_RDONLY; break;
      case OpenMode::kReadWrite: flags |= O_RDWR; break;
      case OpenMode::kCreate: flags |= O_RDWR | O_CREAT | O_EXCL; break;
      case OpenMode::kReplace: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
    }
    UniqueFd fd;
    CORFS_RETURN_IF_ERROR(OpenDiskFile(path, flags, &fd));
    *out = std::make_unique<PosixFile>(std::move(fd), path);
    return Status::Ok();
  }
  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Status::FromErrno("rename " + from + " to " + to);
    return Status::Ok();
  }
  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Status::FromErrno("remove " + path);
    return Status::Ok();
  }
  Status SyncParentDirectory(const std::string& path) override { return corfs::SyncParentDirectory(path); }
};

}  // namespace

std::shared_ptr<FileSystem> DefaultFileSystem() {
  static const std::shared_ptr<FileSystem> instance = std::make_shared<PosixFileSystem>();
  return instance;
}

std::string DescribeLockHolder(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return "";
  char device[64];
  std::snprintf(device, sizeof device, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  // Lines such as "3: FLOCK  ADVISORY  WRITE 4242 00:2e:1234 0 EOF"; waiters
  // have "->" after the number and are not holders.
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string number, kind, advisory, access, pid, where;
    fields >> number >> kind >> advisory >> access >> pid >> where;
    if (kind == "->" || where != device) continue;
    std::ifstream comm("/proc/" + pid + "/comm");
    std::string name;
    std::getline(comm, name);
    return " (pid " + pid + (name.empty() ? "" : ", " + name) + ")";
  }
  return "";
}

}  // namespace corfs::overlay
