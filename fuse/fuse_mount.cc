#include "fuse/fuse_mount.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "fuse/fuse_operations.h"

namespace corfs::fuse {

namespace {

// True if `path` (an absolute, resolved folder) is a mount point, from
// /proc/self/mountinfo (field 5 is the mount point, with octal escapes).
bool IsMountPoint(const std::string& path) {
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    std::string unescaped;
    for (size_t i = 0; i < point.size(); ++i) {
      if (point[i] == '\\' && i + 3 < point.size()) {
        unescaped.push_back(static_cast<char>(std::stoi(point.substr(i + 1, 3), nullptr, 8)));
        i += 3;
      } else {
        unescaped.push_back(point[i]);
      }
    }
    if (unescaped == path) return true;
  }
  return false;
}

// SIGHUP asks daemons to re-read their configuration; a process that does
// not take it elsewhere (corfs mount does, on a thread of its own) must not
// unmount instead. Only async-signal-safe calls here.
void OnSighup(int /*signal*/) {
  static constexpr char kMessage[] = "corfs: SIGHUP: nothing to re-read here; still serving\n";
  (void)!::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

Status KeepServingOnSighup() {
  struct sigaction action {};
  action.sa_handler = OnSighup;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(SIGHUP, &action, nullptr) != 0) return Status::FromErrno("setting the SIGHUP handler");
  return Status::Ok();
}

}  // namespace

Status CheckMountpoint(const std::string& mountpoint) {
  struct stat st {};
  // statfs first: FUSE never caches it, so a mount whose daemon was killed
  // answers ENOTCONN at once, where stat may still answer from the
  // attribute cache for a moment.
  struct statvfs vfs {};
  int probe = ::statvfs(mountpoint.c_str(), &vfs);
  if (probe != 0 || ::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status::Error(ENOTCONN, "mountpoint " + mountpoint +
                                         " is a stale mount left by a corfs that was killed; unmount it with "
                                         "`fusermount3 -u " +
                                         mountpoint + "` (or `umount -l " + mountpoint + "`) and mount again");
    }
    if (errno == ENOENT) {
      return Status::NotFound("mountpoint " + mountpoint + " does not exist; create it with `mkdir -p " + mountpoint +
                              "`");
    }
    return Status::FromErrno("mountpoint " + mountpoint);
  }
  if (!S_ISDIR(st.st_mode)) return Status::Invalid("mountpoint " + mountpoint + " is not a folder");
  char resolved[PATH_MAX];
  if (::realpath(mountpoint.c_str(), resolved) != nullptr && IsMountPoint(resolved)) {
    return Status::Error(EBUSY, "mountpoint " + mountpoint +
                                    " is busy: something is already mounted there (another corfs?); unmount it "
                                    "first with `fusermount3 -u " +
                                    mountpoint + "`");
  }
  return Status::Ok();
}

Status FuseMount::Mount(const MountOptions& options, mount::ImageTable* table, std::unique_ptr<FuseMount>* out) {
  CORFS_RETURN_IF_ERROR(CheckMountpoint(options.mountpoint));
  std::vector<std::string> args = {
      "corfs", "-o", "fsname=corfs,subtype=corfs,default_permissions,max_read=" + std::to_string(kMaxRead)};
  if (options.allow_other) args.insert(args.end(), {"-o", "allow_other"});
  if (options.debug) args.push_back("-d");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  std::unique_ptr<FuseMount> mount(new FuseMount());
  mount->mountpoint_ = options.mountpoint;
  mount->max_threads_ = options.max_threads;
  const fuse_lowlevel_ops& ops = CorfsOperations();
  mount->session_ = fuse_session_new(&fargs, &ops, sizeof ops, table);
  fuse_opt_free_args(&fargs);
  if (mount->session_ == nullptr) return Status::Error(EIO, "could not start a FUSE session (see the message above)");
  // A daemon started in the background of a script inherits SIGINT ignored,
  // and libfuse keeps an ignored signal ignored. `kill -INT` must stop a
  // mount wherever it was started, so start from the default disposition.
  for (int signal : {SIGINT, SIGTERM, SIGHUP}) std::signal(signal, SIG_DFL);
  if (fuse_set_signal_handlers(mount->session_) != 0) return Status::Error(EIO, "could not set signal handlers");
  mount->signal_handlers_ = true;
  CORFS_RETURN_IF_ERROR(KeepServingOnSighup());
  mount->loop_thread_ = ::pthread_self();
  if (fuse_session_mount(mount->session_, options.mountpoint.c_str()) != 0) {
    return Status::Error(EIO,
                         "could not mount at " + options.mountpoint + " (is /dev/fuse there, and fuse3 installed?)");
  }
  mount->mounted_ = true;
  *out = std::move(mount);
  return Status::Ok();
}

Status FuseMount::Run() {
  fuse_loop_config* config = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(config, 0);
  fuse_loop_cfg_set_max_threads(config, max_threads_);
  fuse_loop_cfg_set_idle_threads(config, max_threads_);
  int result = fuse_session_loop_mt(session_, config);
  fuse_loop_cfg_destroy(config);
  if (result < 0) return Status::Error(-result, "serving the mount failed: " + std::string(std::strerror(-result)));
  return Status::Ok();
}

void FuseMount::NotifyAdded(const std::string& name) {
  // A negative entry the kernel may hold for the name, and the folder's
  // attributes; ENOENT (nothing cached) is the common answer.
  (void)fuse_lowlevel_notify_inval_entry(session_, mount::ImageTable::kRootInode, name.c_str(), name.size());
  (void)fuse_lowlevel_notify_inval_inode(session_, mount::ImageTable::kRootInode, 0, 0);
}

void FuseMount::NotifyRemoved(const std::string& name, uint64_t ino) {
  // notify_delete also drops the inode's link count in the kernel, so a
  // process that still holds the path sees it deleted.
  int result = fuse_lowlevel_notify_delete(session_, mount::ImageTable::kRootInode, ino, name.c_str(), name.size());
  if (result == -ENOSYS) {
    (void)fuse_lowlevel_notify_inval_entry(session_, mount::ImageTable::kRootInode, name.c_str(), name.size());
  }
  (void)fuse_lowlevel_notify_inval_inode(session_, mount::ImageTable::kRootInode, 0, 0);
}

void FuseMount::InvalidateAttributes(uint64_t ino) {
  // Attributes only (negative offset): the cached data stays valid.
  (void)fuse_lowlevel_notify_inval_inode(session_, ino, -1, 0);
}

void FuseMount::RequestExit() {
  fuse_session_exit(session_);
  ::pthread_kill(loop_thread_, SIGINT);
}

FuseMount::~FuseMount() {
  if (session_ == nullptr) return;
  if (mounted_) fuse_session_unmount(session_);
  if (signal_handlers_) fuse_remove_signal_handlers(session_);
  fuse_session_destroy(session_);
}

}  // namespace corfs::fuse
