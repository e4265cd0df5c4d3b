#include "overlay/image_opener.h"

#include <fcntl.h>

#include <array>
#include <cstring>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/fault_injection_driver.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

Status DetectFormat(const std::string& path, std::string* format) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open " + path);
  std::array<char, 8> magic{};
  CORFS_RETURN_IF_ERROR(PreadFull(fd.get(), magic, 0, path));
  if (std::memcmp(magic.data(), "QFI\xfb", 4) == 0) {
    *format = "qcow2";
  } else if (std::memcmp(magic.data(), "CORFSHDR", 8) == 0) {
    *format = "corfs";
  } else {
    *format = "raw";
  }
  return Status::Ok();
}

Status OpenImage(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out) {
  std::string actual = format;
  if (actual.empty() || actual == "auto") CORFS_RETURN_IF_ERROR(DetectFormat(path, &actual));
  if (actual == "raw") {
    std::unique_ptr<RawDriver> raw;
    CORFS_RETURN_IF_ERROR(RawDriver::Open(path, /*writable=*/false, &raw));
    *out = std::move(raw);
    return Status::Ok();
  }
  if (actual == "blkdebug") return FaultInjectionDriver::Open(path, OpenImage, out);
  if (actual == "corfs") {
    return Status::Invalid(path + " is a corfs metadata file; name the overlay's data file instead");
  }
  return Status::Invalid(path + ": image format '" + actual + "' is not supported yet");
}

}  // namespace corfs::overlay
