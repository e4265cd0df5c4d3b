#include "common/status.h"

#include <cerrno>
#include <cstring>

namespace corfs {

Status Status::FromErrno(const std::string& context) {
  int code = errno;
  if (code == 0) code = EIO;
  return Status(code, context + ": " + std::strerror(code));
}

Status Status::Invalid(std::string message) { return Status(EINVAL, std::move(message)); }
Status Status::Corrupt(std::string message) { return Status(EUCLEAN, std::move(message)); }
Status Status::NotFound(std::string message) { return Status(ENOENT, std::move(message)); }

Status Status::WithContext(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

}  // namespace corfs
