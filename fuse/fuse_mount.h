#pragma once
// FuseMount: one mounted corfs filesystem, owned like a file descriptor.
// Mount() mounts; Run() serves requests on a pool of threads until the
// filesystem is unmounted or the process gets SIGINT, SIGTERM or SIGHUP;
// the destructor unmounts.

#include <memory>
#include <string>

#include "common/status.h"
#include "mount/image_table.h"

struct fuse_session;

namespace corfs::fuse {

struct MountOptions {
  std::string mountpoint;
  bool allow_other = false;
  bool debug = false;         // libfuse's request trace on stderr
  unsigned max_threads = 16;  // request threads
};

// Checks that `mountpoint` can take a mount, with a message that says what
// to do when it cannot: missing, not a folder, already mounted, or a stale
// mount left by a killed daemon.
Status CheckMountpoint(const std::string& mountpoint);

class FuseMount {
 public:
  // `table` must outlive the mount.
  static Status Mount(const MountOptions& options, mount::ImageTable* table, std::unique_ptr<FuseMount>* out);
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;
  ~FuseMount();

  Status Run();
  const std::string& mountpoint() const { return mountpoint_; }

 private:
  FuseMount() = default;

  fuse_session* session_ = nullptr;
  std::string mountpoint_;
  unsigned max_threads_ = 16;
  bool mounted_ = false;
  bool signal_handlers_ = false;
};

}  // namespace corfs::fuse
