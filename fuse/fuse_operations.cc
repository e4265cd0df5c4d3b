#include "fuse/fuse_operations.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "mount/image_table.h"

namespace corfs::fuse {

using mount::ImageTable;
using mount::MountedImage;

namespace {

constexpr double kAttrTimeout = 1.0;  // st_blocks changes as the overlay fills
constexpr unsigned kMaxIo = 1 << 20;

ImageTable& Table(fuse_req_t req) { return *static_cast<ImageTable*>(fuse_req_userdata(req)); }

int Errno(const Status& status) { return status.code() > 0 ? status.code() : EIO; }

// A time before 1970 has a negative tv_sec and still a tv_nsec in
// [0, 1e9): division rounded down, not toward zero.
struct timespec ToTimespec(int64_t ns) {
  constexpr int64_t kNsPerSecond = 1000000000;
  int64_t seconds = ns / kNsPerSecond;
  int64_t rest = ns % kNsPerSecond;
  if (rest < 0) {
    rest += kNsPerSecond;
    --seconds;
  }
  return {static_cast<time_t>(seconds), static_cast<long>(rest)};
}

void ImageAttr(const MountedImage& image, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  const overlay::Overlay& ovl = *image.overlay;
  st->st_ino = image.inode;
  st->st_mode = S_IFREG | image.mode.load(std::memory_order_relaxed);
  st->st_nlink = 1;
  const overlay::FileOwner owner = image.Owner();
  st->st_uid = owner.uid;
  st->st_gid = owner.gid;
  st->st_size = static_cast<off_t>(ovl.size());
  // st_blocks counts what the overlay holds, so `du` shows local allocation.
  uint64_t held = std::min(ovl.size(), ovl.allocated_clusters() * ovl.cluster_size());
  st->st_blocks = static_cast<blkcnt_t>((held + 511) / 512);
  st->st_blksize = static_cast<blksize_t>(std::min<uint64_t>(ovl.cluster_size(), kMaxIo));
  st->st_mtim = st->st_ctim = st->st_atim = ToTimespec(image.mtime_ns.load(std::memory_order_relaxed));
}

void RootAttr(struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ImageTable::kRootInode;
  st->st_mode = S_IFDIR | 0755;
  st->st_nlink = 2;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
}

// Fills `st` for inode `ino`; false if there is no such inode.
bool Attr(ImageTable& table, fuse_ino_t ino, struct stat* st) {
  if (ino == ImageTable::kRootInode) {
    RootAttr(st);
    return true;
  }
  std::shared_ptr<MountedImage> image = table.Get(ino);
  if (image == nullptr) return false;
  ImageAttr(*image, st);
  return true;
}

// The largest read worth splicing. libfuse splices through a pipe that must
// hold the whole reply (and a page per buffer more); when it cannot grow the
// pipe that far (above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE)
// it falls back to a buffer it mallocs and frees per request, and page
// faults on fresh memory made 1 MiB O_DIRECT reads 10x slower than our own
// reused buffer. So reads above the limit take the buffer path below; with
// the default pipe-max-size, every read (kMaxRead) is below it.
// CORFS_NO_SPLICE=1 turns splicing off (0), and with it copy-on-read inside
// the kernel, to measure what they bring.
// Below kMinSplice libfuse would copy anyway (through a malloc per request);
// our buffer is cheaper.
constexpr size_t kMinSplice = 8192;
size_t SpliceLimit() {
  static const size_t limit = [] {
    if (std::getenv("CORFS_NO_SPLICE") != nullptr) return size_t{0};
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t header_room = 4 * page;
    size_t pipe_max = 1 << 20;  // the kernel's default
    if (FILE* f = std::fopen("/proc/sys/fs/pipe-max-size", "r")) {
      unsigned long value = 0;
      if (std::fscanf(f, "%lu", &value) == 1) pipe_max = value;
      std::fclose(f);
    }
    return pipe_max > header_room ? pipe_max - header_room : 0;
  }();
  return limit;
}

void OnInit(void*, fuse_conn_info* conn) {
  conn->max_write = kMaxIo;
  conn->max_read = kMaxRead;  // must equal the max_read mount option
  conn->max_readahead = kMaxIo;
  // Every change to an image passes through this mount, so the kernel's
  // page cache stays valid; no need to drop it when times change.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  // Reads of local data go from the overlay file to /dev/fuse by splice
  // (OnRead), without a copy through our memory.
  if ((conn->capable & FUSE_CAP_SPLICE_WRITE) && SpliceLimit() > 0) conn->want |= FUSE_CAP_SPLICE_WRITE;
  // The pieces of an O_DIRECT read larger than kMaxRead are sent at once
  // and served by several threads (libfuse's default, stated here because
  // kMaxRead counts on it).
  if (conn->capable & FUSE_CAP_ASYNC_DIO) conn->want |= FUSE_CAP_ASYNC_DIO;
}

void OnLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  ImageTable& table = Table(req);
  if (parent != ImageTable::kRootInode) return (void)fuse_reply_err(req, ENOTDIR);
  std::shared_ptr<MountedImage> image = table.Find(name);
  if (image == nullptr) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param entry{};
  entry.ino = image->inode;
  entry.generation = 1;  // inodes are never reused within a mount
  entry.attr_timeout = kAttrTimeout;
  entry.entry_timeout = kAttrTimeout;
  ImageAttr(*image, &entry.attr);
  fuse_reply_entry(req, &entry);
}

void OnGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st {};
  if (!Attr(Table(req), ino, &st)) return (void)fuse_reply_err(req, ENOENT);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

// Size, owner and mode: each durable before it shows (the overlay's header,
// MountedImage), each refused whole. Who may chown or chmod is the kernel's
// call (the mount uses default_permissions), as on any file system.
Status SetImageAttributes(MountedImage& image, const struct stat& attr, int to_set) {
  if (to_set & FUSE_SET_ATTR_SIZE) {
    // A disk grows (`truncate -s`) but never shrinks under its guest:
    // EPERM, "Operation not permitted", as for a growing fallocate.
    const uint64_t size = static_cast<uint64_t>(attr.st_size);
    if (size < image.overlay->size()) {
      return Status::Error(EPERM, "image '" + image.name() + "' cannot shrink");
    }
    CORFS_RETURN_IF_ERROR(image.overlay->Resize(size));
  }
  if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    std::optional<uint32_t> uid;
    std::optional<uint32_t> gid;
    if (to_set & FUSE_SET_ATTR_UID) uid = attr.st_uid;
    if (to_set & FUSE_SET_ATTR_GID) gid = attr.st_gid;
    CORFS_RETURN_IF_ERROR(image.SetOwner(uid, gid));
  }
  if (to_set & FUSE_SET_ATTR_MODE) CORFS_RETURN_IF_ERROR(image.SetMode(attr.st_mode & 07777));
  return Status::Ok();
}

// While an image is exported (image-export-prep), its size may not change
// and its mode may not gain a write bit: EROFS, as a read-only file system
// says. Owner and the other bits do not touch the disk's bytes.
bool RefusedWhileExported(const MountedImage& image, const struct stat& attr, int to_set) {
  if (to_set & FUSE_SET_ATTR_SIZE) return true;
  if (!(to_set & FUSE_SET_ATTR_MODE)) return false;
  const uint32_t added = (attr.st_mode & 07777) & ~image.mode.load(std::memory_order_relaxed);
  return (added & 0222) != 0;
}

void OnSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  ImageTable& table = Table(req);
  std::shared_ptr<MountedImage> image = table.Get(ino);  // no open file need pin it
  if (image == nullptr) return (void)fuse_reply_err(req, ino == ImageTable::kRootInode ? EPERM : ENOENT);
  mount::ExportGateEntry gate(image->export_gate);
  if (!gate.entered() && RefusedWhileExported(*image, *attr, to_set)) return (void)fuse_reply_err(req, EROFS);
  Status status = SetImageAttributes(*image, *attr, to_set);
  if (!status.ok()) return (void)fuse_reply_err(req, Errno(status));
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    image->mtime_ns.store(WallClockNs(), std::memory_order_relaxed);
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    image->mtime_ns.store(int64_t{attr->st_mtim.tv_sec} * 1000000000 + attr->st_mtim.tv_nsec,
                          std::memory_order_relaxed);
  }
  struct stat st {};
  ImageAttr(*image, &st);
  fuse_reply_attr(req, &st, kAttrTimeout);
}

// Offsets are 1 for ".", 2 for ".." and an image's inode + 1 for the
// image: inodes only grow and are never reused, so a listing read in
// several calls stays right while images come and go (each image is listed
// at most once; one added meanwhile may or may not be).
void OnReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  ImageTable& table = Table(req);
  if (ino != ImageTable::kRootInode) return (void)fuse_reply_err(req, ENOTDIR);
  std::vector<char> buf(size);
  size_t used = 0;
  auto add = [&](const char* name, uint64_t entry_ino, mode_t type, off_t next) {
    struct stat st {};
    st.st_ino = entry_ino;
    st.st_mode = type;
    size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    if (need > size - used) return false;
    used += need;
    return true;
  };
  bool room = true;
  if (offset < 1) room = add(".", ImageTable::kRootInode, S_IFDIR, 1);
  if (room && offset < 2) room = add("..", ImageTable::kRootInode, S_IFDIR, 2);
  for (const std::shared_ptr<MountedImage>& image : table.Snapshot()) {
    if (!room) break;
    const off_t next = static_cast<off_t>(image->inode + 1);
    if (next <= offset) continue;
    room = add(image->name().c_str(), image->inode, S_IFREG, next);
  }
  fuse_reply_buf(req, buf.data(), used);
}

// An open file pins its image: the image cannot be removed until the
// kernel releases the file (OnRelease).
void OnOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  ImageTable& table = Table(req);
  std::shared_ptr<MountedImage> image = table.Open(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ino == ImageTable::kRootInode ? EISDIR : ENOENT);
  if ((fi->flags & O_ACCMODE) != O_RDONLY && (image->config.read_only || image->export_gate.closed())) {
    table.Release(*image);
    return (void)fuse_reply_err(req, EROFS);
  }
  // A disk never shrinks, so O_TRUNC is refused as a truncate to 0 is (the
  // kernel hands it to the open, since libfuse asks for atomic O_TRUNC).
  // Ignoring it let `cp --sparse=auto` and `dd conv=sparse` onto an image
  // succeed while the old disk showed through the holes they skipped.
  if ((fi->flags & O_TRUNC) != 0 && image->overlay->size() > 0) {
    table.Release(*image);
    return (void)fuse_reply_err(req, EPERM);
  }
  // All changes pass through this mount, so cached pages stay valid across
  // opens. O_DIRECT opens bypass the page cache in the kernel anyway.
  fi->keep_cache = 1;
  // An open the caller gave up on (interrupted) gets no release.
  if (fuse_reply_open(req, fi) == -ENOENT) table.Release(*image);
}

void OnRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  ImageTable& table = Table(req);
  if (MountedImage* image = table.ByInode(ino)) table.Release(*image);
  fuse_reply_err(req, 0);
}

// Each I/O handler below counts its request in the image's IoStats (before
// the reply, so a guest that sees its request done sees it counted), and
// logs a failure with the image, offset and length: what a guest's EIO is
// traced back by. The counting is two clock reads and relaxed atomic adds,
// so the read path stays cheap.
using Clock = std::chrono::steady_clock;

class GuestRequest {
 public:
  GuestRequest(fuse_req_t req, MountedImage& image, mount::IoKind kind, uint64_t offset, uint64_t bytes)
      : req_(req), image_(image), kind_(kind), offset_(offset), bytes_(bytes) {}

  // Counts the request as done; the caller replies next.
  void Succeeded() { image_.io_stats.Record(kind_, bytes_, Clock::now() - start_, true); }

  // Counts the request as failed, replies its error and logs it. A write to
  // a read-only image is refused without a log line: that is the image's
  // setting, not a failure.
  void Failed(const Status& status) {
    image_.io_stats.Record(kind_, bytes_, Clock::now() - start_, false);
    const int error = Errno(status);
    fuse_reply_err(req_, error);
    if (error == EROFS) return;
    static constexpr const char* kNames[] = {"read", "write", "flush", "discard"};
    spdlog::warn("image {}: guest {} of {} bytes at {} failed ({}): {}", image_.name(),
                 kNames[static_cast<size_t>(kind_)], bytes_, offset_, std::strerror(error), status.message());
  }

  // Runs `serve`, which replies when it succeeds; counts, and replies a failure.
  template <typename Serve>
  void Run(Serve serve) {
    Status status = serve(*this);
    if (!status.ok()) Failed(status);
  }

  fuse_req_t req() const { return req_; }

 private:
  fuse_req_t req_;
  MountedImage& image_;
  mount::IoKind kind_;
  uint64_t offset_;
  uint64_t bytes_;
  Clock::time_point start_ = Clock::now();
};

// Replies with [off, off + length) of the file `fd`, which holds it at those
// offsets (the overlay's data file, or a raw layer's file): libfuse splices
// the file range into the reply, so the bytes go from that file's page cache
// to the reader without a copy through here. `move` lets the kernel take
// clean pages of the file's page cache into the mount's own instead of
// copying them (SPLICE_F_MOVE): right for local data, never for a
// template's file, whose pages the copy into the overlay after the reply is
// about to read (and pages just copied into the overlay are dirty, so
// there is nothing to take).
void ReplySpliced(GuestRequest& request, int fd, uint64_t off, size_t length, bool move) {
  fuse_bufvec data = FUSE_BUFVEC_INIT(length);
  data.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
  data.buf[0].fd = fd;
  data.buf[0].pos = static_cast<off_t>(off);
  request.Succeeded();
  fuse_reply_data(request.req(), &data, move ? FUSE_BUF_SPLICE_MOVE : static_cast<fuse_buf_copy_flags>(0));
}

// Warns that the guest had its data but the overlay could not keep its copy
// (those clusters stay the chain's): not the guest's error.
void WarnNotKept(const MountedImage& image, uint64_t off, size_t length, const Status& status) {
  spdlog::warn("image {}: keeping the clusters of a guest read of {} bytes at {} failed: {}", image.name(), length, off,
               status.message());
}

Status ServeRead(GuestRequest& request, MountedImage& image, uint64_t off, size_t length) {
  image.NoteGuestRead(off, length);  // a boot profile's record or replay; every read, local or not
  if (length >= kMinSplice && length <= SpliceLimit()) {
    const int fd = image.overlay->LocalDataFd(off, length);
    if (fd >= 0) {
      ReplySpliced(request, fd, off, length, /*move=*/true);
      return Status::Ok();
    }
    // Not all local: copy-on-read inside the kernel where it can (FaultIn),
    // and the same splice, from a raw template's file before its clusters
    // are copied when the whole read is that template's, else from the
    // overlay after. A cold read thus costs one copy into the overlay and
    // one to the reader, and the guest waits for the second only, where a
    // read through a buffer costs three (from the template, into the
    // overlay, to the reader). Smaller reads stay on the buffer path: for
    // them it measured the same.
    bool replied = false;
    Status status = image.overlay->FaultIn(off, length, [&](int source) {
      ReplySpliced(request, source, off, length, /*move=*/false);
      replied = true;
    });
    if (replied) {
      if (!status.ok()) WarnNotKept(image, off, length, status);
      return Status::Ok();
    }
    CORFS_RETURN_IF_ERROR(status);
  }
  thread_local std::vector<char> buf;
  if (buf.size() < length) buf.resize(std::max<size_t>(length, kMaxIo));
  // The reply goes as soon as the bytes are read: a cold read's clusters
  // are written into the overlay after it (ReadEarly), so the guest does
  // not wait for that copy.
  bool replied = false;
  Status status = image.overlay->ReadEarly(off, std::span(buf.data(), length), [&] {
    request.Succeeded();
    fuse_reply_buf(request.req(), buf.data(), length);
    replied = true;
  });
  if (replied) {
    if (!status.ok()) WarnNotKept(image, off, length, status);
    return Status::Ok();
  }
  return status;
}

void OnRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t offset, fuse_file_info*) {
  MountedImage* image = Table(req).ByInode(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ENOENT);
  const uint64_t disk = image->overlay->size();
  const uint64_t off = static_cast<uint64_t>(offset);
  if (off >= disk) return (void)fuse_reply_buf(req, nullptr, 0);
  const size_t length = static_cast<size_t>(std::min<uint64_t>(size, disk - off));
  GuestRequest(req, *image, mount::IoKind::kRead, off, length).Run([&](GuestRequest& request) {
    return ServeRead(request, *image, off, length);
  });
}

void OnWrite(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t offset, fuse_file_info* fi) {
  MountedImage* image = Table(req).ByInode(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (image->config.read_only) return (void)fuse_reply_err(req, EROFS);
  const mount::ExportGateEntry gate(image->export_gate);
  if (!gate.entered()) return (void)fuse_reply_err(req, EROFS);  // exported: image-export-prep
  const uint64_t disk = image->overlay->size();
  const uint64_t off = static_cast<uint64_t>(offset);
  // Like a block device: a write reaching past the end is cut short there,
  // and one starting at the end has no space. A direct write reaching past
  // the end has no space either, and changes nothing: the kernel reports a
  // short asynchronous direct write as EIO (the mount asks for async direct
  // I/O), and an error must leave the disk as it was.
  if (off >= disk || ((fi->flags & O_DIRECT) != 0 && size > disk - off)) {
    return (void)fuse_reply_err(req, ENOSPC);
  }
  const size_t length = static_cast<size_t>(std::min<uint64_t>(size, disk - off));
  GuestRequest(req, *image, mount::IoKind::kWrite, off, length).Run([&](GuestRequest& request) {
    CORFS_RETURN_IF_ERROR(image->overlay->Write(off, std::span(data, length)));
    image->mtime_ns.store(WallClockNs(), std::memory_order_relaxed);
    request.Succeeded();
    fuse_reply_write(req, length);
    return Status::Ok();
  });
}

void FlushImage(fuse_req_t req, fuse_ino_t ino) {
  MountedImage* image = Table(req).ByInode(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ino == ImageTable::kRootInode ? 0 : ENOENT);
  if (image->config.read_only) return (void)fuse_reply_err(req, 0);
  GuestRequest(req, *image, mount::IoKind::kFlush, 0, 0).Run([&](GuestRequest& request) {
    CORFS_RETURN_IF_ERROR(image->overlay->FlushGuestWrites());
    request.Succeeded();
    fuse_reply_err(req, 0);
    return Status::Ok();
  });
}

// close() and fsync() both make the guest's writes durable, as QEMU's FUSE
// export does: a guest that closes its disk expects what it wrote to be
// there. A guest that wrote nothing since the last commit waits for nothing
// (Overlay::FlushGuestWrites).
void OnFlush(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { FlushImage(req, ino); }
void OnFsync(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) { FlushImage(req, ino); }

void OnFallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info*) {
  MountedImage* image = Table(req).ByInode(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (image->config.read_only) return (void)fuse_reply_err(req, EROFS);
  const mount::ExportGateEntry gate(image->export_gate);
  if (!gate.entered()) return (void)fuse_reply_err(req, EROFS);  // exported: image-export-prep
  const uint64_t disk = image->overlay->size();
  const uint64_t off = static_cast<uint64_t>(offset);
  const uint64_t end = off + static_cast<uint64_t>(length);
  const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
  if (end > disk && !keep_size) return (void)fuse_reply_err(req, EPERM);  // would grow the disk
  const int op = mode & ~FALLOC_FL_KEEP_SIZE;
  if (op == 0) return (void)fuse_reply_err(req, 0);  // preallocation: a disk is always all there
  if (op != FALLOC_FL_PUNCH_HOLE && op != FALLOC_FL_ZERO_RANGE) return (void)fuse_reply_err(req, EOPNOTSUPP);
  if (off >= disk) return (void)fuse_reply_err(req, 0);
  const uint64_t bytes = std::min(end, disk) - off;
  GuestRequest(req, *image, mount::IoKind::kDiscard, off, bytes).Run([&](GuestRequest& request) {
    CORFS_RETURN_IF_ERROR(image->overlay->Discard(off, bytes));
    image->mtime_ns.store(WallClockNs(), std::memory_order_relaxed);
    request.Succeeded();
    fuse_reply_err(req, 0);
    return Status::Ok();
  });
}

// SEEK_DATA / SEEK_HOLE over the whole chain, so `cp --sparse` and
// `qemu-img convert` skip what no image holds.
void OnLseek(fuse_req_t req, fuse_ino_t ino, off_t offset, int whence, fuse_file_info*) {
  MountedImage* image = Table(req).ByInode(ino);
  if (image == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return (void)fuse_reply_err(req, EINVAL);
  const uint64_t disk = image->overlay->size();
  uint64_t pos = static_cast<uint64_t>(offset);
  if (offset < 0 || pos >= disk) return (void)fuse_reply_err(req, ENXIO);
  while (pos < disk) {
    overlay::BlockStatus status;
    Status got = image->overlay->GetBlockStatus(pos, disk - pos, &status);
    if (!got.ok()) return (void)fuse_reply_err(req, Errno(got));
    const bool data = status.allocation == overlay::Allocation::kData;
    if (data == (whence == SEEK_DATA)) return (void)fuse_reply_lseek(req, static_cast<off_t>(pos));
    pos += status.length;
  }
  if (whence == SEEK_DATA) return (void)fuse_reply_err(req, ENXIO);
  fuse_reply_lseek(req, static_cast<off_t>(disk));
}

void OnStatfs(fuse_req_t req, fuse_ino_t) {
  const std::vector<std::shared_ptr<MountedImage>> images = Table(req).Snapshot();
  struct statvfs st {};
  // Space is what the overlays' folder has: that is where faulted-in data goes.
  if (!images.empty()) {
    std::string dir = std::filesystem::path(images.front()->overlay->path()).parent_path().string();
    if (::statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) std::memset(&st, 0, sizeof st);
  }
  st.f_files = images.size() + 1;
  st.f_ffree = 0;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}

// The folder holds exactly the images of the mount (the YAML file's, and
// those added over the control socket).
void RefuseEntry(fuse_req_t req) { fuse_reply_err(req, EPERM); }
void OnMknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { RefuseEntry(req); }
void OnMkdir(fuse_req_t req, fuse_ino_t, const char*, mode_t) { RefuseEntry(req); }
void OnUnlink(fuse_req_t req, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnRmdir(fuse_req_t req, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnSymlink(fuse_req_t req, const char*, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnRename(fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) { RefuseEntry(req); }
void OnLink(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { RefuseEntry(req); }
void OnCreate(fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) { RefuseEntry(req); }

fuse_lowlevel_ops MakeOperations() {
  fuse_lowlevel_ops ops{};
  ops.init = OnInit;
  ops.lookup = OnLookup;
  ops.getattr = OnGetattr;
  ops.setattr = OnSetattr;
  ops.readdir = OnReaddir;
  ops.open = OnOpen;
  ops.release = OnRelease;
  ops.read = OnRead;
  ops.write = OnWrite;
  ops.flush = OnFlush;
  ops.fsync = OnFsync;
  ops.fallocate = OnFallocate;
  ops.lseek = OnLseek;
  ops.statfs = OnStatfs;
  ops.mknod = OnMknod;
  ops.mkdir = OnMkdir;
  ops.unlink = OnUnlink;
  ops.rmdir = OnRmdir;
  ops.symlink = OnSymlink;
  ops.rename = OnRename;
  ops.link = OnLink;
  ops.create = OnCreate;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& CorfsOperations() {
  static const fuse_lowlevel_ops ops = MakeOperations();
  return ops;
}

}  // namespace corfs::fuse
