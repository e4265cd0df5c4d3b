#include "config/mount_config.h"

namespace corfs::config {

std::vector<std::string> ChangedKeys(const ImageConfig& a, const ImageConfig& b) {
  std::vector<std::string> keys;
  auto check = [&keys](bool same, const char* key) {
    if (!same) keys.emplace_back(key);
  };
  check(a.overlay_path == b.overlay_path, "overlay");
  check(a.backing == b.backing, "backing");
  check(a.size == b.size, "size");
  check(a.cluster_size == b.cluster_size, "cluster_size");
  check(a.copy_on_read == b.copy_on_read, "copy_on_read");
  check(a.read_only == b.read_only, "read_only");
  check(a.mode == b.mode, "mode");
  check(a.uid == b.uid, "uid");
  check(a.gid == b.gid, "gid");
  check(a.create == b.create, "create");
  check(a.create_dirs == b.create_dirs, "create_dirs");
  check(a.write_threshold == b.write_threshold, "write_threshold");
  check(a.verify_backing == b.verify_backing, "verify_backing");
  check(a.boot_profile == b.boot_profile, "boot_profile");
  check(a.boot_profile_idle == b.boot_profile_idle, "boot_profile_idle");
  const StreamPolicy& s = a.stream;
  const StreamPolicy& t = b.stream;
  check(s.auto_start == t.auto_start, "stream.auto");
  check(s.speed == t.speed, "stream.speed");
  check(s.workers == t.workers, "stream.workers");
  check(s.chunk_size == t.chunk_size, "stream.chunk_size");
  check(s.base == t.base, "stream.base");
  check(s.on_error == t.on_error, "stream.on_error");
  return keys;
}

}  // namespace corfs::config
