#pragma once
// FuseMount: one mounted corfs filesystem, owned like a file descriptor.
// Mount() mounts; Run() serves requests on a pool of threads until the
// filesystem is unmounted, the process gets SIGINT or SIGTERM, or
// RequestExit() is called; the destructor unmounts. SIGHUP only logs that
// re-reading the configuration is not supported yet: a reload signal must
// never take a guest's disks away.

#include <pthread.h>

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

  // Serves; call it on the thread that called Mount().
  Status Run();
  // Ends Run() from any thread the way SIGINT does: the session is told to
  // exit and the thread in Run() gets SIGINT, whose libfuse handler wakes it.
  void RequestExit();
  const std::string& mountpoint() const { return mountpoint_; }
  // Makes the kernel drop the attributes it caches for inode `ino` (its
  // size changed by another way than this file system); from any thread
  // but a request of this mount's own.
  void InvalidateAttributes(uint64_t ino);

 private:
  FuseMount() = default;

  fuse_session* session_ = nullptr;
  std::string mountpoint_;
  unsigned max_threads_ = 16;
  bool mounted_ = false;
  bool signal_handlers_ = false;
  pthread_t loop_thread_{};  // the thread that mounted, and runs Run()
};

}  // namespace corfs::fuse
