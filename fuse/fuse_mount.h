#pragma once
// FuseMount: one mounted corfs filesystem, owned like a file descriptor.
// Mount() mounts; Run() serves requests on a pool of threads until the
// filesystem is unmounted, the process gets SIGINT or SIGTERM, or
// RequestExit() is called; the destructor unmounts. SIGHUP never ends it
// (libfuse's handlers would): a reload signal must never take a guest's
// disks away. Re-reading the configuration on SIGHUP is the caller's
// (cli/mount_session.h takes the signal on a thread of its own); the
// handler here only guards a process that does not.

#include <pthread.h>

#include <cstdint>
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

  // Tell the kernel that an image joined or left the root folder, so that
  // neither a cached lookup nor cached attributes of the folder hide the
  // change. From any thread but a FUSE request's (the kernel may wait for
  // requests in flight); best effort: what the kernel does not cache is
  // not there to drop.
  void NotifyAdded(const std::string& name);
  void NotifyRemoved(const std::string& name, uint64_t ino);

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
