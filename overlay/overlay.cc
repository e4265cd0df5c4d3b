#include "overlay/overlay.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>

#include "common/file_io.h"
#include "common/size.h"
#include "overlay/image_identity.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

namespace {

// Scratch memory for copying clusters: not zero-initialised, unlike a vector.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : data_(new char[bytes]), size_(bytes) {}
  std::span<char> span() { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

// Where a backing path stored in a header points to: relative paths are
// relative to the overlay's folder, as for qcow2 backing files.
std::string ResolveBackingPath(const std::string& overlay_path, const std::string& stored) {
  fs::path p(stored);
  if (p.is_absolute()) return stored;
  return (fs::path(overlay_path).parent_path() / p).lexically_normal().string();
}

// The path to store for a backing image a user named relative to the
// current folder: relative to the overlay's folder, so both can move together.
std::string StoredBackingPath(const std::string& overlay_path, const std::string& user_path) {
  if (fs::path(user_path).is_absolute()) return user_path;
  fs::path overlay_dir = fs::absolute(overlay_path).parent_path();
  return fs::absolute(user_path).lexically_normal().lexically_relative(overlay_dir).string();
}

Status RangeCheck(uint64_t offset, uint64_t length, uint64_t size, const char* what) {
  if (offset > size || length > size - offset) {
    return Status::Invalid(std::string(what) + " of " + std::to_string(length) + " bytes at " +
                           std::to_string(offset) + " is past the end of the disk (" + std::to_string(size) + ")");
  }
  return Status::Ok();
}

struct OpenedChain {
  std::vector<std::unique_ptr<BlockDriver>> drivers;
};

// Opens each image of `specs` and checks it against the identity recorded
// in `refs`; the error names both images when they differ.
Status OpenVerifiedChain(const std::vector<ImageSpec>& specs, const std::vector<BackingRef>& refs,
                         const ImageOpener& opener, OpenedChain* out) {
  // A stream down to a base shortens the overlay's chain: the caller's
  // chain (as a YAML file names it) may then be longer, and its bottom part
  // is what the overlay still uses.
  if (specs.size() < refs.size()) {
    return Status::Invalid("the backing chain has " + std::to_string(specs.size()) +
                           " images, but the overlay was made over " + std::to_string(refs.size()));
  }
  const size_t skip = specs.size() - refs.size();
  for (size_t i = 0; i < refs.size(); ++i) {
    const ImageSpec& spec = specs[skip + i];
    std::unique_ptr<BlockDriver> driver;
    Status opened = opener(spec.path, spec.format.empty() ? refs[i].format : spec.format, &driver);
    if (!opened.ok()) return opened.WithContext("backing image '" + spec.path + "'");
    ImageIdentity found;
    CORFS_RETURN_IF_ERROR(ComputeIdentity(*driver, &found));
    ImageIdentity recorded{refs[i].size, refs[i].fingerprint};
    if (found != recorded) {
      return Status::Invalid("backing image '" + spec.path + "' (" + found.ToString() +
                             ") is not the image this overlay was made over: '" + refs[i].path + "' (" +
                             recorded.ToString() + ")");
    }
    out->drivers.push_back(std::move(driver));
  }
  return Status::Ok();
}

// Counts a guest request in flight for as long as it lives, and in the
// mount's activity.
class GuestIo {
 public:
  GuestIo(std::atomic<int64_t>& counter, GuestActivity& activity) : counter_(counter) {
    counter_.fetch_add(1, std::memory_order_relaxed);
    activity.Note();
  }
  ~GuestIo() { counter_.fetch_sub(1, std::memory_order_relaxed); }
  GuestIo(const GuestIo&) = delete;
  GuestIo& operator=(const GuestIo&) = delete;

 private:
  std::atomic<int64_t>& counter_;
};

}  // namespace

std::string MetadataPath(const std::string& path) { return path + ".cor"; }

Status ValidateClusterSize(uint64_t cluster_size) {
  if (!std::has_single_bit(cluster_size)) {
    return Status::Invalid("cluster size " + std::to_string(cluster_size) + " is not a power of two");
  }
  if (cluster_size < (uint64_t{1} << kMinClusterBits) || cluster_size > (uint64_t{1} << kMaxClusterBits)) {
    return Status::Invalid("cluster size " + FormatSize(cluster_size) + " is outside 4 KiB .. 2 MiB");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Create and open

Status Overlay::Create(const std::string& path, const CreateOptions& options) {
  CORFS_RETURN_IF_ERROR(ValidateClusterSize(options.cluster_size));
  if (path.empty() || path.back() == '/') return Status::Invalid("overlay path '" + path + "' names no file");
  const std::string meta_path = MetadataPath(path);
  if (!options.force) {
    for (const std::string& p : {path, meta_path}) {
      if (fs::exists(fs::symlink_status(p))) {
        return Status::Error(EEXIST, p + " already exists (use --force to replace the overlay)");
      }
    }
  }

  OverlayHeader header;
  header.sequence = 0;
  header.cluster_bits = static_cast<uint32_t>(std::countr_zero(options.cluster_size));
  std::error_code ec;
  std::vector<ImageSpec> backing;
  CORFS_RETURN_IF_ERROR(ExpandImageList(options.backing, &backing));
  for (const ImageSpec& spec : backing) {
    if (fs::exists(path) && fs::equivalent(spec.path, path, ec)) {
      return Status::Invalid("backing image '" + spec.path + "' is the overlay itself");
    }
    std::unique_ptr<BlockDriver> driver;
    Status opened = options.opener(spec.path, spec.format, &driver);
    if (!opened.ok()) return opened.WithContext("backing image '" + spec.path + "'");
    ImageIdentity identity;
    CORFS_RETURN_IF_ERROR(ComputeIdentity(*driver, &identity));
    header.chain.push_back({StoredBackingPath(path, spec.path), driver->format(), identity.size, identity.fingerprint});
  }
  header.virtual_size = options.size;
  if (header.virtual_size == 0) {
    if (header.chain.empty()) return Status::Invalid("an overlay without a backing image needs a size");
    header.virtual_size = header.chain.front().size;
  }
  if (header.virtual_size == 0) return Status::Invalid("the disk size is zero");
  header.standalone = header.chain.empty();
  CORFS_RETURN_IF_ERROR(header.Validate());

  // Everything is checked: now write. The metadata file appears last and
  // whole (write, sync, rename), so an interrupted create leaves no overlay.
  const std::string tmp_path = meta_path + ".tmp";
  UniqueFd meta(::open(tmp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!meta.valid()) return Status::FromErrno("create " + tmp_path);
  auto fail = [&](Status status) {
    ::unlink(tmp_path.c_str());
    return status;
  };
  if (::ftruncate(meta.get(), static_cast<off_t>(header.metadata_file_size())) != 0) {
    return fail(Status::FromErrno("size " + tmp_path));
  }
  for (uint64_t seq : {0, 1}) {  // both slots valid from the start
    header.sequence = seq;
    Status written = WriteHeaderSlot(meta.get(), tmp_path, header);
    if (!written.ok()) return fail(written);
  }

  UniqueFd data(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (options.force ? O_TRUNC : O_EXCL), 0644));
  if (!data.valid()) return fail(Status::FromErrno("create " + path));
  if (::ftruncate(data.get(), static_cast<off_t>(header.virtual_size)) != 0 || ::fsync(data.get()) != 0) {
    Status status = Status::FromErrno("size " + path);
    ::unlink(path.c_str());
    return fail(status);
  }
  if (::rename(tmp_path.c_str(), meta_path.c_str()) != 0) return fail(Status::FromErrno("rename " + tmp_path));
  return SyncParentDirectory(path);
}

Status Overlay::Open(const std::string& path, const OpenOptions& options, std::unique_ptr<Overlay>* out) {
  const std::string meta_path = MetadataPath(path);
  const int mode = options.read_only ? O_RDONLY : O_RDWR;
  UniqueFd meta(::open(meta_path.c_str(), mode | O_CLOEXEC));
  if (!meta.valid()) {
    if (errno == ENOENT) return Status::NotFound(meta_path + " does not exist (make the overlay with `corfs create`)");
    return Status::FromErrno("open " + meta_path);
  }
  // One writer per overlay, like QEMU's image locking; the lock goes with
  // the process, so a killed daemon leaves no stale lock.
  if (::flock(meta.get(), (options.read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return Status::Error(EBUSY, "overlay " + path + " is in use by another process");
    return Status::FromErrno("lock " + meta_path);
  }

  OverlayHeader header;
  CORFS_RETURN_IF_ERROR(ReadHeader(meta.get(), meta_path, &header));
  struct stat st {};
  if (::fstat(meta.get(), &st) != 0) return Status::FromErrno("stat " + meta_path);
  if (static_cast<uint64_t>(st.st_size) < header.metadata_file_size()) {
    return Status::Corrupt(meta_path + ": the bitmap is shorter than the disk (file has " +
                           std::to_string(st.st_size) + " bytes, the header needs " +
                           std::to_string(header.metadata_file_size()) + ")");
  }

  UniqueFd data(::open(path.c_str(), mode | O_CLOEXEC));
  if (!data.valid()) return Status::FromErrno("open data file " + path);
  if (::fstat(data.get(), &st) != 0) return Status::FromErrno("stat " + path);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != header.virtual_size) {
    return Status::Corrupt("data file " + path + " has " + std::to_string(st.st_size) +
                           " bytes, the header says the disk has " + std::to_string(header.virtual_size));
  }

  OpenedChain opened;
  if (!header.standalone) {
    std::vector<ImageSpec> specs;
    if (options.expected_backing) {
      CORFS_RETURN_IF_ERROR(ExpandImageList(*options.expected_backing, &specs));
    } else {
      for (const BackingRef& ref : header.chain) specs.push_back({ResolveBackingPath(path, ref.path), ref.format});
    }
    CORFS_RETURN_IF_ERROR(OpenVerifiedChain(specs, header.chain, options.opener, &opened));
  }

  std::unique_ptr<Overlay> overlay(new Overlay(header.cluster_count()));
  overlay->path_ = path;
  overlay->meta_path_ = meta_path;
  overlay->size_ = header.virtual_size;
  overlay->cluster_bits_ = header.cluster_bits;
  overlay->read_only_ = options.read_only;
  overlay->copy_on_read_ = options.copy_on_read && !options.read_only;
  overlay->chain_ = std::make_shared<BackingChain>(std::move(opened.drivers), header.virtual_size);
  overlay->header_ = std::move(header);

  // Load the bitmap in 1 MiB pieces: a 1 TiB disk of 64 KiB clusters has
  // a 2 MiB bitmap, and no copy of it beyond the in-memory one is kept.
  const uint64_t bitmap_bytes = overlay->header_.bitmap_bytes();
  Scratch piece(std::min<uint64_t>(bitmap_bytes, 1 << 20));
  for (uint64_t at = 0; at < bitmap_bytes; at += piece.span().size()) {
    std::span<char> part = piece.span().first(std::min<uint64_t>(piece.span().size(), bitmap_bytes - at));
    CORFS_RETURN_IF_ERROR(PreadFull(meta.get(), part, kBitmapOffset + at, meta_path));
    overlay->bitmap_.Load(at, part);
  }
  if (overlay->bitmap_.HasBitsPastEnd()) {
    return Status::Corrupt(meta_path + ": the bitmap has bits set past the last cluster");
  }

  if (options.guest_activity) overlay->guest_activity_ = options.guest_activity;
  overlay->data_fd_ = std::move(data);
  overlay->meta_fd_ = std::move(meta);
  if (!options.read_only && options.commit_interval.count() > 0) {
    Overlay* self = overlay.get();
    auto interval = options.commit_interval;
    self->committer_ = std::jthread([self, interval](std::stop_token stop) {
      std::unique_lock lock(self->committer_mutex_);
      while (!stop.stop_requested()) {
        self->committer_wakeup_.wait_for(lock, stop, interval, [&] { return stop.stop_requested(); });
        if (stop.stop_requested()) break;
        // A failed commit leaves its pages dirty, for the next Flush to report.
        if (self->bitmap_.HasDirtyPages()) (void)self->Commit();
      }
    });
  }
  *out = std::move(overlay);
  return Status::Ok();
}

Overlay::~Overlay() { (void)Close(); }

Status Overlay::Close() {
  if (committer_.joinable()) {
    committer_.request_stop();
    committer_.join();
  }
  if (closed_) return Status::Ok();
  Status status = read_only_ ? Status::Ok() : Commit();
  closed_ = true;
  return status;
}

OverlayHeader Overlay::header() const {
  std::lock_guard lock(header_mutex_);
  return header_;
}

std::shared_ptr<BackingChain> Overlay::chain() const {
  std::lock_guard lock(header_mutex_);
  return chain_;
}

// ---------------------------------------------------------------------------
// Commit: data first, then the bitmap (design.md, durability rules)

Status Overlay::Commit() {
  if (read_only_) return Status::Ok();
  std::lock_guard lock(commit_mutex_);
  // Take the dirty pages *before* syncing the data: every bit in them was set
  // after its cluster's data was written, so the sync below covers that data.
  std::vector<AllocationBitmap::Page> pages = bitmap_.TakeDirtyPages();
  Status status = SyncData(data_fd_.get(), path_);
  for (size_t i = 0; status.ok() && i < pages.size(); ++i) {
    status = PwriteFull(meta_fd_.get(), pages[i].bytes, kBitmapOffset + pages[i].index * kBitmapPageSize, meta_path_);
  }
  if (status.ok() && !pages.empty()) status = SyncData(meta_fd_.get(), meta_path_);
  if (!status.ok()) bitmap_.MarkDirty(pages);
  return status;
}

// ---------------------------------------------------------------------------
// Storing clusters

Status Overlay::PunchData(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Ok();
  // A range that holds no data is a hole already (the usual case: a stream
  // recording a template's hole in a fresh overlay). Punching it anyway would
  // take the file's lock exclusively and wait for every copy into the file:
  // a stream over a sparse template spent a tenth of its time there.
  const off_t data = ::lseek(data_fd_.get(), static_cast<off_t>(offset), SEEK_DATA);
  if ((data < 0 && errno == ENXIO) || (data >= 0 && static_cast<uint64_t>(data) >= offset + length)) {
    return Status::Ok();
  }
  if (::fallocate(data_fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return Status::Ok();
  }
  if (errno != EOPNOTSUPP) return Status::FromErrno("punch hole in " + path_);
  // No hole punching here: write the zeros.
  static const std::vector<char> zeros(1 << 20, 0);
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
    CORFS_RETURN_IF_ERROR(PwriteFull(data_fd_.get(), std::span(zeros.data(), n), offset + done, path_));
    done += n;
  }
  return Status::Ok();
}

Status Overlay::StoreBytes(uint64_t offset, std::span<const char> bytes) {
  // Zero detection in 4 KiB blocks aligned to the disk: a template that is
  // not sparse on disk still makes a sparse overlay.
  constexpr uint64_t kBlock = 4096;
  auto block_end = [&](uint64_t pos) {
    return std::min<uint64_t>(bytes.size(), (offset + pos) / kBlock * kBlock + kBlock - offset);
  };
  uint64_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t end = block_end(pos);
    const bool zero = IsAllZero(bytes.subspan(pos, end - pos));
    while (end < bytes.size()) {
      uint64_t next = block_end(end);
      if (IsAllZero(bytes.subspan(end, next - end)) != zero) break;
      end = next;
    }
    if (zero) {
      // Punch even over a hole: the file may hold data a crash left behind
      // in a cluster whose bit never reached the disk.
      CORFS_RETURN_IF_ERROR(PunchData(offset + pos, end - pos));
    } else {
      CORFS_RETURN_IF_ERROR(PwriteFull(data_fd_.get(), bytes.subspan(pos, end - pos), offset + pos, path_));
    }
    pos = end;
  }
  return Status::Ok();
}

uint64_t Overlay::CopyInKernel(int source, uint64_t offset, uint64_t length) {
  // A stream copies a raw layer's bytes with copy_file_range: they go from
  // page cache to page cache without the two copies through a buffer here,
  // which made streaming 2-4x faster on the machines we measured (most of
  // all on virtual machines, where touching process memory is dear). The
  // kernel copies zero blocks as data, so unlike StoreBytes this keeps only
  // the template's own holes (skipped by GetBlockStatus) sparse.
  uint64_t copied = 0;
  // On a failure the caller's buffered copy takes over where this stopped,
  // and reports the error if it is real.
  (void)CopyFileRange(source, offset, data_fd_.get(), offset, length, path_, &copied);
  return copied;
}

Status Overlay::FillClaimed(const ClaimedRun& run, std::span<char> out) {
  const uint64_t start = ClusterStart(run.first());
  const uint64_t end = ClusterEnd(run.first() + run.count() - 1);
  std::shared_ptr<BackingChain> backing = chain();
  // When the caller wants no data (a stream), bytes are copied in pieces of
  // at most this many. On a kernel without preemption (preempt=none, usual
  // on servers) a thread inside a long read or copy keeps its CPU until the
  // call returns, and a guest request woken meanwhile waits for it; small
  // pieces bound that wait.
  constexpr uint64_t kMaxPiece = 128 << 10;
  std::unique_ptr<Scratch> scratch;
  uint64_t pos = start;
  while (pos < end) {
    BlockStatus status;
    size_t layer = 0;
    CORFS_RETURN_IF_ERROR(backing->GetBlockStatus(pos, end - pos, backing->depth(), &status, &layer));
    uint64_t length = std::min(status.length, end - pos);
    if (status.allocation != Allocation::kData) {
      if (!out.empty()) std::memset(out.data() + (pos - start), 0, length);
      CORFS_RETURN_IF_ERROR(PunchData(pos, length));
    } else if (!out.empty()) {
      // A guest read: the bytes go to the caller and into the overlay.
      std::span<char> piece = out.subspan(pos - start, length);
      CORFS_RETURN_IF_ERROR(backing->Read(pos, piece));
      CORFS_RETURN_IF_ERROR(StoreBytes(pos, piece));
    } else {
      // A stream: the bytes are only stored, in the kernel when the layer is
      // a raw file, else through a scratch buffer; the whole run in pieces.
      const int source = backing->layer(layer).data_fd();
      const uint64_t run_end = pos + length;
      while (pos < run_end) {
        uint64_t piece = std::min(run_end - pos, kMaxPiece);
        const uint64_t copied = source >= 0 ? CopyInKernel(source, pos, piece) : 0;
        if (copied > 0) {
          piece = copied;
        } else {
          if (!scratch) scratch = std::make_unique<Scratch>(std::min(kMaxPiece, end - start));
          std::span<char> bytes = scratch->span().first(piece);
          CORFS_RETURN_IF_ERROR(backing->Read(pos, bytes));
          CORFS_RETURN_IF_ERROR(StoreBytes(pos, bytes));
        }
        pos += piece;
      }
      continue;
    }
    pos += length;
  }
  MarkAllocated(run.first(), run.count());
  return Status::Ok();
}

Status Overlay::MergeIntoCluster(uint64_t cluster, uint64_t offset, std::span<const char> data,
                                 uint64_t zero_length, bool* done) {
  ClaimedRun run(claims_, cluster);
  *done = run.Extend(/*wait=*/true);
  if (!*done) return Status::Ok();  // allocated meanwhile: the caller takes the direct path
  const uint64_t start = ClusterStart(cluster);
  Scratch scratch(ClusterEnd(cluster) - start);
  std::span<char> bytes = scratch.span();
  CORFS_RETURN_IF_ERROR(chain()->Read(start, bytes));
  if (data.empty()) {
    std::memset(bytes.data() + (offset - start), 0, zero_length);
  } else {
    std::memcpy(bytes.data() + (offset - start), data.data(), data.size());
  }
  CORFS_RETURN_IF_ERROR(StoreBytes(start, bytes));
  MarkAllocated(cluster, 1);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Guest I/O

int Overlay::LocalDataFd(uint64_t offset, uint64_t length) const {
  if (length == 0 || offset >= size_ || length > size_ - offset) return -1;
  const uint64_t cluster = offset >> cluster_bits_;
  const uint64_t clusters = ((offset + length - 1) >> cluster_bits_) - cluster + 1;
  if (bitmap_.RunLength(cluster, clusters, true) != clusters) return -1;
  guest_activity_->Note();  // the caller serves a guest read with it
  return data_fd_.get();
}

Status Overlay::Read(uint64_t offset, std::span<char> buf) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, buf.size(), size_, "read"));
  GuestIo in_flight(guest_io_, *guest_activity_);
  const uint64_t end = offset + buf.size();
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t cluster = pos >> cluster_bits_;
    const uint64_t clusters_left = ((end - 1) >> cluster_bits_) - cluster + 1;
    std::span<char> rest = buf.subspan(pos - offset);

    if (bitmap_.Test(cluster)) {
      uint64_t n = bitmap_.RunLength(cluster, clusters_left, true);
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(PreadFull(data_fd_.get(), rest.first(run_end - pos), pos, path_));
      pos = run_end;
      continue;
    }

    uint64_t n = bitmap_.RunLength(cluster, clusters_left, false);
    if (!copy_on_read_) {
      // A thin clone: read through to the chain, keep nothing. A write that
      // races this read is ordered after it.
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(chain()->Read(pos, rest.first(run_end - pos)));
      pos = run_end;
      continue;
    }

    ClaimedRun run(claims_, cluster);
    while (run.count() < n && run.Extend(/*wait=*/true)) {
    }
    if (run.count() == 0) continue;  // someone else filled it: read it from the overlay
    const uint64_t run_start = ClusterStart(cluster);
    const uint64_t run_end = ClusterEnd(cluster + run.count() - 1);
    const uint64_t copy_end = std::min(end, run_end);
    if (pos == run_start && copy_end == run_end) {
      // The request covers the whole run: fill straight into the caller's buffer.
      CORFS_RETURN_IF_ERROR(FillClaimed(run, rest.first(run_end - run_start)));
    } else {
      Scratch scratch(run_end - run_start);
      CORFS_RETURN_IF_ERROR(FillClaimed(run, scratch.span()));
      std::memcpy(rest.data(), scratch.span().data() + (pos - run_start), copy_end - pos);
    }
    pos = copy_end;
  }
  return Status::Ok();
}

Status Overlay::Write(uint64_t offset, std::span<const char> data) {
  return Change(offset, data.size(), data);
}

Status Overlay::Discard(uint64_t offset, uint64_t length) { return Change(offset, length, {}); }

Status Overlay::Change(uint64_t offset, uint64_t length, std::span<const char> data) {
  const bool discard = data.empty();
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size_, discard ? "discard" : "write"));
  GuestIo in_flight(guest_io_, *guest_activity_);
  const uint64_t end = offset + length;
  // Writes the data of [pos, pos+n) to the data file, or punches it out.
  auto store = [&](uint64_t pos, uint64_t n) {
    return discard ? PunchData(pos, n) : PwriteFull(data_fd_.get(), data.subspan(pos - offset, n), pos, path_);
  };
  uint64_t pos = offset;
  while (pos < end) {
    const uint64_t cluster = pos >> cluster_bits_;
    const uint64_t clusters_left = ((end - 1) >> cluster_bits_) - cluster + 1;

    if (bitmap_.Test(cluster)) {
      uint64_t n = bitmap_.RunLength(cluster, clusters_left, true);
      uint64_t run_end = std::min(end, ClusterStart(cluster + n));
      CORFS_RETURN_IF_ERROR(store(pos, run_end - pos));
      pos = run_end;
      continue;
    }

    if (pos == ClusterStart(cluster) && end >= ClusterEnd(cluster)) {
      // Whole clusters: nothing of the chain survives, so no backing read.
      // The claim still matters: it keeps a copy-on-read of these clusters
      // from landing after this change.
      uint64_t whole = (end == size_) ? clusters_left : (end >> cluster_bits_) - cluster;
      uint64_t n = bitmap_.RunLength(cluster, whole, false);
      ClaimedRun run(claims_, cluster);
      while (run.count() < n && run.Extend(/*wait=*/true)) {
      }
      if (run.count() == 0) continue;  // allocated meanwhile: the direct path
      uint64_t run_end = ClusterEnd(cluster + run.count() - 1);
      CORFS_RETURN_IF_ERROR(store(pos, run_end - pos));
      MarkAllocated(cluster, run.count());
      pos = run_end;
      continue;
    }

    // Part of a cluster the overlay lacks: copy-on-write.
    uint64_t part_end = std::min(end, ClusterEnd(cluster));
    bool done = false;
    std::span<const char> part = discard ? std::span<const char>() : data.subspan(pos - offset, part_end - pos);
    CORFS_RETURN_IF_ERROR(MergeIntoCluster(cluster, pos, part, part_end - pos, &done));
    if (done) pos = part_end;
  }
  return Status::Ok();
}

Status Overlay::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size_, "block status"));
  if (length == 0) return Status::Invalid("block status of an empty range");
  const uint64_t cluster = offset >> cluster_bits_;
  const uint64_t clusters_left = ((offset + length - 1) >> cluster_bits_) - cluster + 1;
  const bool allocated = bitmap_.Test(cluster);
  const uint64_t n = bitmap_.RunLength(cluster, clusters_left, allocated);
  const uint64_t run = std::min(offset + length, ClusterStart(cluster + n)) - offset;
  if (allocated) {
    // Inside the overlay, holes of the data file are zeros.
    return ProbeSparseRun(data_fd_.get(), offset, run, Allocation::kZero, path_, out);
  }
  return chain()->GetBlockStatus(offset, run, out);
}

std::unique_ptr<WriteBehind> Overlay::OpenWriteBehind(uint64_t batch, uint64_t window) const {
  // The same file through /proc, not by name: the name may point elsewhere
  // by now. A new open gives the descriptor its own writeback-error cursor.
  const std::string self = "/proc/self/fd/" + std::to_string(data_fd_.get());
  UniqueFd fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return nullptr;
  return std::make_unique<WriteBehind>(std::move(fd), batch, window);
}

Status Overlay::Populate(uint64_t offset, uint64_t length, bool wait) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size_, "populate"));
  if (length == 0) return Status::Ok();
  uint64_t cluster = offset >> cluster_bits_;
  const uint64_t last = (offset + length - 1) >> cluster_bits_;
  while (cluster <= last) {
    if (bitmap_.Test(cluster)) {
      cluster += bitmap_.RunLength(cluster, last - cluster + 1, true);
      continue;
    }
    uint64_t n = bitmap_.RunLength(cluster, last - cluster + 1, false);
    ClaimedRun run(claims_, cluster);
    while (run.count() < n && run.Extend(wait)) {
    }
    if (run.count() == 0) {
      ++cluster;  // in use or just allocated: the other party fills it
      continue;
    }
    CORFS_RETURN_IF_ERROR(FillClaimed(run, {}));
    cluster += run.count();
  }
  return Status::Ok();
}


// ---------------------------------------------------------------------------
// Streaming support: planning, and changing the chain

Status Overlay::PlanStream(uint64_t offset, uint64_t length, size_t end_layer, StreamRun* out) {
  CORFS_RETURN_IF_ERROR(RangeCheck(offset, length, size_, "stream"));
  if (length == 0) return Status::Invalid("stream plan of an empty range");
  const uint64_t cluster = offset >> cluster_bits_;
  const uint64_t clusters_left = ((offset + length - 1) >> cluster_bits_) - cluster + 1;
  const bool allocated = bitmap_.Test(cluster);
  const uint64_t n = bitmap_.RunLength(cluster, clusters_left, allocated);
  const uint64_t run = std::min(offset + length, ClusterStart(cluster + n)) - offset;
  if (allocated) {
    *out = {StreamWork::kLocal, run};
    return Status::Ok();
  }
  std::shared_ptr<BackingChain> backing = chain();
  end_layer = std::min(end_layer, backing->depth());
  if (end_layer < backing->depth()) {
    // Past the end of an image above the base the disk reads zeros, while
    // the base may hold data there: once the base is the backing image it
    // would show. Record those zeros in the overlay.
    //
    // Today the base shows up to visible_size(end_layer), which is already
    // cut at the end of every image above it; once those are dropped it
    // shows up to its own size (cut at the disk's). The zeros to record are
    // in between. (This used to compare visible_size(end_layer - 1) with
    // visible_size(end_layer), which can never form a non-empty range, so
    // ShortenChain exposed the base's hidden tail to the guest.)
    const uint64_t hidden_from = backing->visible_size(end_layer);
    const uint64_t base_end = std::min(size_, backing->layer(end_layer).size());
    if (offset >= hidden_from && offset < base_end) {
      *out = {StreamWork::kZero, std::min(run, base_end - offset)};
      return Status::Ok();
    }
  }
  BlockStatus status;
  CORFS_RETURN_IF_ERROR(backing->GetBlockStatus(offset, run, end_layer, &status));
  switch (status.allocation) {
    case Allocation::kData:
      *out = {StreamWork::kCopy, status.length};
      break;
    case Allocation::kZero:
      *out = {StreamWork::kZero, status.length};
      break;
    case Allocation::kUnallocated:
      // Above a base, what no upper image holds stays with the base; in a
      // whole-image stream it is zeros to record.
      *out = {end_layer < backing->depth() ? StreamWork::kBelowBase : StreamWork::kZero, status.length};
      break;
  }
  return Status::Ok();
}

Status Overlay::FindBackingLayer(const std::string& path, size_t* index) const {
  OverlayHeader current = header();
  std::string names;
  for (size_t i = 0; i < current.chain.size(); ++i) {
    const std::string resolved = ResolveBackingPath(path_, current.chain[i].path);
    std::error_code ec;
    if (current.chain[i].path == path || resolved == path || fs::equivalent(resolved, path, ec)) {
      *index = i;
      return Status::Ok();
    }
    names += (i ? ", " : "") + current.chain[i].path;
  }
  return Status::NotFound("'" + path + "' is not in the backing chain of " + path_ +
                          (names.empty() ? " (it has none)" : " (" + names + ")"));
}

void Overlay::MarkAllocated(uint64_t first, uint64_t count) {
  bitmap_.SetRange(first, count);
  uint64_t threshold = write_threshold_.load(std::memory_order_relaxed);
  if (threshold == 0 || allocated_bytes() <= threshold) return;
  // One-shot: whoever swaps the threshold to 0 reports it.
  if (!write_threshold_.compare_exchange_strong(threshold, 0)) return;
  ThresholdHandler handler;
  {
    std::lock_guard lock(threshold_mutex_);
    handler = threshold_handler_;
  }
  if (handler) handler(threshold, allocated_bytes() - threshold);
}

void Overlay::SetWriteThreshold(uint64_t bytes, ThresholdHandler on_exceeded) {
  {
    std::lock_guard lock(threshold_mutex_);
    threshold_handler_ = std::move(on_exceeded);
  }
  write_threshold_.store(bytes, std::memory_order_relaxed);
}

Status Overlay::UpdateHeader(OverlayHeader next, std::shared_ptr<BackingChain> new_chain) {
  next.sequence += 1;
  CORFS_RETURN_IF_ERROR(WriteHeaderSlot(meta_fd_.get(), meta_path_, next));
  std::lock_guard lock(header_mutex_);
  header_ = std::move(next);
  chain_ = std::move(new_chain);  // the old chain closes once no reader holds it
  return Status::Ok();
}

Status Overlay::DropBacking() {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(header_update_mutex_);
  OverlayHeader next = header();
  if (next.standalone) return Status::Ok();
  if (allocated_clusters() != cluster_count()) {
    return Status::Invalid(path_ + " still lacks " + std::to_string(cluster_count() - allocated_clusters()) +
                           " clusters; the backing chain is still needed");
  }
  // Data and bitmap durable first: a crash after this point finds either
  // the old header over a complete overlay, or the standalone header.
  CORFS_RETURN_IF_ERROR(Commit());
  next.standalone = true;
  next.chain.clear();
  return UpdateHeader(std::move(next), std::make_shared<BackingChain>());
}

Status Overlay::ShortenChain(size_t new_top) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(header_update_mutex_);
  OverlayHeader next = header();
  if (new_top == 0) return Status::Ok();
  if (next.standalone || new_top >= next.chain.size()) {
    return Status::Invalid("cannot make layer " + std::to_string(new_top) + " the top of a chain of " +
                           std::to_string(next.chain.size()));
  }
  CORFS_RETURN_IF_ERROR(Commit());
  next.chain.erase(next.chain.begin(), next.chain.begin() + static_cast<long>(new_top));
  return UpdateHeader(std::move(next), chain()->Suffix(new_top, size_));
}

}  // namespace corfs::overlay
