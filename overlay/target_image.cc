#include "overlay/target_image.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/unique_fd.h"
#include "overlay/image_location.h"
#include "overlay/raw_driver.h"
#include "overlay/remote/nbd_target.h"

namespace corfs::overlay {
namespace {

Status OpenFileTarget(const std::string& path, const TargetOptions& options, std::unique_ptr<BlockDriver>* out) {
  std::unique_ptr<RawDriver> raw;
  if (options.existing) {
    CORFS_RETURN_IF_ERROR(RawDriver::Open(path, /*writable=*/true, &raw));
    if (raw->size() != options.size) {
      return Status::Invalid("target " + path + " has " + std::to_string(raw->size()) + " bytes, the disk " +
                             std::to_string(options.size));
    }
    *out = std::move(raw);
    return Status::Ok();
  }
  // O_EXCL: a target that exists is refused, never overwritten.
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    if (errno == EEXIST) {
      return Status::Error(EEXIST, "target " + path + " exists already (mode \"existing\" writes into it)");
    }
    return Status::FromErrno("cannot create target " + path);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(options.size)) != 0) {
    Status error = Status::FromErrno("cannot size target " + path);
    ::unlink(path.c_str());
    return error;
  }
  Status status = RawDriver::Adopt(std::move(fd), path, /*writable=*/true, &raw);
  if (!status.ok()) {
    ::unlink(path.c_str());
    return status;
  }
  *out = std::move(raw);
  return Status::Ok();
}

}  // namespace

Status OpenTarget(const std::string& name, const TargetOptions& options, std::unique_ptr<BlockDriver>* out) {
  if (IsUri(name)) {
    if (name.rfind("nbd", 0) != 0) {
      return Status::Error(ENOTSUP, "writing to " + RedactCredentials(name) +
                                        ": only NBD servers (nbd://, nbd+unix://) take a target");
    }
    std::unique_ptr<NbdTarget> target;
    CORFS_RETURN_IF_ERROR(NbdTarget::Open(name, options.size, options.remote, &target));
    *out = std::move(target);
    return Status::Ok();
  }
  return OpenFileTarget(name, options, out);
}

}  // namespace corfs::overlay
