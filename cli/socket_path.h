#pragma once
// Where a mount's control socket lives by default: beside the mountpoint,
// never inside it ("/mnt/vms" -> "/mnt/vms.sock").

#include <filesystem>
#include <string>

namespace corfs::cli {

inline std::string DefaultSocketPath(const std::string& mountpoint) {
  std::filesystem::path path = std::filesystem::absolute(mountpoint).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();  // "mnt/" -> "mnt"
  return path.string() + ".sock";
}

}  // namespace corfs::cli
