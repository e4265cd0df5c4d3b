#include "common/file_id.h"

#include <sys/stat.h>

namespace corfs {

Status IdentifyFile(const std::string& path, FileId* out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(path);
  *out = {static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  return Status::Ok();
}

bool SameFile(const std::string& a, const std::string& b) {
  FileId ia, ib;
  return IdentifyFile(a, &ia).ok() && IdentifyFile(b, &ib).ok() && ia == ib;
}

}  // namespace corfs
