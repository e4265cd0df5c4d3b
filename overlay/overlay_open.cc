// Overlay::Create and Overlay::Open: from the two files to a running
// Overlay, and back.

#include <sys/stat.h>

#include <bit>
#include <cstdio>
#include <filesystem>

#include "common/file_io.h"
#include "common/size.h"
#include "overlay/commit_intent.h"
#include "overlay/content_hash.h"
#include "overlay/image_identity.h"
#include "overlay/overlay.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

namespace {

// The header of a new overlay at `path`: every backing image opened and
// fingerprinted, every field checked. Writes nothing.
Status NewHeader(const std::string& path, const CreateOptions& options, OverlayHeader* out) {
  OverlayHeader header;
  header.sequence = 0;
  header.cluster_bits = static_cast<uint32_t>(std::countr_zero(options.cluster_size));
  std::error_code ec;
  std::vector<ImageSpec> backing;
  CORFS_RETURN_IF_ERROR(ExpandImageList(options.backing, options.protocol, &backing));
  for (const ImageSpec& spec : backing) {
    for (const std::string& data_path : {path, PartialDataPath(path)}) {
      if (fs::exists(data_path) && fs::equivalent(spec.path, data_path, ec)) {
        return Status::Invalid("backing image '" + spec.path + "' is the overlay itself");
      }
    }
    std::unique_ptr<BlockDriver> driver;
    Status opened = options.opener(spec.path, spec.format, &driver);
    if (!opened.ok()) return opened.WithContext("backing image '" + spec.path + "'");
    BackingImage image{{StoredBackingPath(path, spec.path), driver->format()}, {}};
    CORFS_RETURN_IF_ERROR(ComputeIdentity(*driver, &image.identity));
    if (options.verify_backing == VerifyBacking::kFull) {
      ContentHash content;
      CORFS_RETURN_IF_ERROR(ComputeContentHash(*driver, &content));
      image.identity.content = content;
    }
    header.chain.push_back(std::move(image));
  }
  header.virtual_size = options.size;
  if (header.virtual_size == 0) {
    if (header.chain.empty()) return Status::Invalid("an overlay without a backing image needs a size");
    header.virtual_size = header.chain.front().identity.size;
  }
  if (header.virtual_size == 0) return Status::Invalid("the disk size is zero");
  header.standalone = header.chain.empty();
  // Until the overlay is standalone its data is NAME.part: a file named
  // like the disk is always the whole disk.
  header.partial_data_file = !header.standalone;
  CORFS_RETURN_IF_ERROR(header.Validate());
  *out = std::move(header);
  return Status::Ok();
}

// Takes away, for `corfs create --force`, the overlay it replaces: its
// metadata file first, then the data file under the name the new overlay
// does not use (`keep`), durably before the new data file is touched, so no
// crash can leave the old metadata over the new data file, or two data files.
Status RemoveReplacedOverlay(const std::string& path, const std::string& keep, FileSystem& file_system) {
  bool removed = false;
  for (const std::string& p : {MetadataPath(path), path, PartialDataPath(path)}) {
    if (p == keep || !fs::exists(fs::symlink_status(p))) continue;
    CORFS_RETURN_IF_ERROR(file_system.Remove(p));
    removed = true;
  }
  return removed ? file_system.SyncParentDirectory(path) : Status::Ok();
}

// Writes the two files of a new overlay. The metadata file appears last and
// whole (write, sync, rename), so an interrupted create leaves no overlay.
//
// Without `force`, the data file is made first, and only if it does not
// exist (O_EXCL): of two creates of one overlay at once (two mounts of one
// new image), exactly one gets it and goes on; the other stops there and
// touches nothing of the winner's, not even the temporary metadata file
// they would both name. A failure after it removes the data file it made.
Status WriteNewOverlay(const std::string& path, OverlayHeader header, bool force, FileSystem& fs) {
  const std::string meta_path = MetadataPath(path);
  const std::string tmp_path = meta_path + ".tmp";
  const std::string data_path = DataFilePath(path, header);
  std::unique_ptr<File> data;
  if (!force) CORFS_RETURN_IF_ERROR(fs.Open(data_path, OpenMode::kCreate, &data));
  std::unique_ptr<File> meta;
  Status status = fs.Open(tmp_path, OpenMode::kReplace, &meta);
  auto fail = [&](Status failed) {
    if (meta) (void)fs.Remove(tmp_path);
    if (data) (void)fs.Remove(data_path);
    return failed;
  };
  if (!status.ok()) return fail(status);
  status = meta->Truncate(header.metadata_file_size());
  for (uint64_t seq : {0, 1}) {  // both slots valid from the start
    header.sequence = seq;
    std::string slot;
    if (status.ok()) status = EncodeHeaderSlot(header, &slot);
    if (status.ok()) status = meta->Write(seq * kHeaderSlotSize, slot);
  }
  if (status.ok()) status = meta->Sync();
  if (status.ok() && force) status = RemoveReplacedOverlay(path, data_path, fs);
  if (status.ok() && force) status = fs.Open(data_path, OpenMode::kReplace, &data);
  if (status.ok()) status = data->Truncate(header.virtual_size);
  if (status.ok()) status = data->Sync();
  if (status.ok()) status = fs.Rename(tmp_path, meta_path);
  if (!status.ok()) return fail(status);
  return fs.SyncParentDirectory(path);
}

// Whether the file open as `fd` is still the one `path` names.
bool StillNamedBy(int fd, const std::string& path) {
  struct stat open_file {};
  struct stat named {};
  return ::fstat(fd, &open_file) == 0 && ::stat(path.c_str(), &named) == 0 && open_file.st_dev == named.st_dev &&
         open_file.st_ino == named.st_ino;
}

// Opens the metadata file and takes the lock that keeps a second writer out:
// one writer per overlay, like QEMU's image locking. The lock goes with the
// process, so a killed daemon leaves no stale lock. `corfs create --force`
// takes it too before it puts a new metadata file in place; a file locked
// after that happened is no longer the overlay's, so it is opened again.
Status OpenMetadataFile(const std::string& path, bool read_only, FileSystem& fs, std::unique_ptr<File>* out) {
  const std::string meta_path = MetadataPath(path);
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<File> meta;
    Status opened = fs.Open(meta_path, read_only ? OpenMode::kRead : OpenMode::kReadWrite, &meta);
    if (opened.code() == ENOENT) {
      return Status::NotFound(meta_path + " does not exist (make the overlay with `corfs create`)");
    }
    CORFS_RETURN_IF_ERROR(opened);
    Status locked = meta->TryLock(!read_only);
    if (locked.code() == EBUSY) return Status::Error(EBUSY, "overlay " + path + " is " + locked.message());
    CORFS_RETURN_IF_ERROR(locked);
    if (StillNamedBy(meta->fd(), meta_path)) {
      *out = std::move(meta);
      return Status::Ok();
    }
    if (attempt == 3) return Status::Error(EBUSY, meta_path + " keeps being replaced while it is opened");
  }
}

// Opens the data file and checks that it is a regular file of the disk's
// size. A longer one is what a grow interrupted before its header update
// leaves (overlay_resize.cc): its tail is a hole, cut off here when the
// overlay is opened for writing.
Status OpenDataFile(const std::string& path, bool read_only, uint64_t disk_size, FileSystem& fs,
                    std::unique_ptr<File>* out) {
  std::unique_ptr<File> data;
  Status opened = fs.Open(path, read_only ? OpenMode::kRead : OpenMode::kReadWrite, &data);
  if (!opened.ok()) return opened.WithContext("data file");
  uint64_t size = 0;
  CORFS_RETURN_IF_ERROR(data->GetSize(&size));
  if (size > disk_size && !read_only) {
    CORFS_RETURN_IF_ERROR(data->Truncate(disk_size));
    size = disk_size;
  }
  if (size < disk_size) {
    return Status::Corrupt("data file " + path + " has " + std::to_string(size) +
                           " bytes, the header says the disk has " + std::to_string(disk_size));
  }
  *out = std::move(data);
  return Status::Ok();
}

// Finds the data file the header names (LocateDataFile) and opens it. A
// writable open of a complete overlay whose data file is still NAME.part
// finishes the rename first; a read-only one reads NAME.part and warns.
Status OpenLocatedDataFile(const std::string& path, const OverlayHeader& header, const OpenOptions& options,
                           std::string* data_path, std::unique_ptr<File>* out) {
  DataFileLocation where;
  CORFS_RETURN_IF_ERROR(LocateDataFile(path, header, &where));
  if (where.rename_pending && options.read_only) {
    if (options.warn) {
      options.warn("overlay " + path + " is complete but its data file is still " + where.path + " (a rename to " +
                   path + " is pending; the next writable open does it)");
    }
  } else if (where.rename_pending) {
    CORFS_RETURN_IF_ERROR(FinishDataFileRename(path, *options.file_system));
    where = {path, false};
  }
  CORFS_RETURN_IF_ERROR(OpenDataFile(where.path, options.read_only, header.virtual_size, *options.file_system, out));
  *data_path = where.path;
  return Status::Ok();
}

// Opens each image of `specs` and checks it against the identity recorded
// in `recorded` (VerifyIdentity); the error names both images when they
// differ, and what corfs cannot tell is passed to `options.warn`.
Status OpenVerifiedImages(const std::string& path, const std::vector<ImageSpec>& specs,
                          const std::vector<BackingImage>& recorded, const OpenOptions& options,
                          std::vector<std::unique_ptr<BlockDriver>>* out) {
  // A stream down to a base shortens the overlay's chain: the caller's
  // chain (as a YAML file names it) may then be longer, and its bottom part
  // is what the overlay still uses.
  if (specs.size() < recorded.size()) {
    return Status::Invalid("the backing chain has " + std::to_string(specs.size()) +
                           " images, but the overlay was made over " + std::to_string(recorded.size()));
  }
  const size_t skip = specs.size() - recorded.size();
  for (size_t i = 0; i < recorded.size(); ++i) {
    const ImageSpec& spec = specs[skip + i];
    std::unique_ptr<BlockDriver> driver;
    Status opened = options.opener(spec.path, spec.format.empty() ? recorded[i].spec.format : spec.format, &driver);
    if (!opened.ok()) return opened.WithContext("backing image '" + spec.path + "'");
    std::string warning;
    Status verified = VerifyIdentity(*driver, spec.path, recorded[i].identity, recorded[i].spec.path,
                                     options.verify_backing, &warning);
    if (!verified.ok() || !warning.empty()) {
      // A commit cut short between writing into this image and rewriting
      // the headers over it (commit_intent.h): an overlay it prepared holds
      // every cluster it changed, so the image's new bytes do not show.
      if (CoveredByUnfinishedCommit(spec.path, path, recorded[i].identity, &warning)) verified = Status::Ok();
    }
    CORFS_RETURN_IF_ERROR(verified);
    if (!warning.empty() && options.warn) options.warn("overlay " + path + ": " + warning);
    out->push_back(std::move(driver));
  }
  return Status::Ok();
}

// The backing chain of the overlay at `path`: the images the caller expects
// when it names them, else those the header names, each checked against
// the identity the header records.
Status OpenBackingChain(const std::string& path, const OverlayHeader& header, const OpenOptions& options,
                        std::shared_ptr<BackingChain>* out) {
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  if (!header.standalone) {
    std::vector<ImageSpec> specs;
    if (options.expected_backing) {
      CORFS_RETURN_IF_ERROR(ExpandImageList(*options.expected_backing, options.protocol, &specs));
    } else {
      for (const BackingImage& image : header.chain) {
        specs.push_back({ResolveBackingPath(path, image.spec.path), image.spec.format});
      }
    }
    CORFS_RETURN_IF_ERROR(OpenVerifiedImages(path, specs, header.chain, options, &drivers));
  }
  *out = std::make_shared<BackingChain>(std::move(drivers), header.virtual_size);
  return Status::Ok();
}

}  // namespace

void WarnOnStderr(const std::string& warning) { std::fprintf(stderr, "corfs: warning: %s\n", warning.c_str()); }

Status ValidateClusterSize(uint64_t cluster_size) {
  if (!std::has_single_bit(cluster_size)) {
    return Status::Invalid("cluster size " + std::to_string(cluster_size) + " is not a power of two");
  }
  if (cluster_size < (uint64_t{1} << kMinClusterBits) || cluster_size > (uint64_t{1} << kMaxClusterBits)) {
    return Status::Invalid("cluster size " + FormatSize(cluster_size) + " is outside 4 KiB .. 2 MiB");
  }
  return Status::Ok();
}

Status Overlay::Create(const std::string& path, const CreateOptions& options) {
  CORFS_RETURN_IF_ERROR(ValidateClusterSize(options.cluster_size));
  if (path.empty() || path.back() == '/') return Status::Invalid("overlay path '" + path + "' names no file");
  // An overlay that exists may be open in a mount: take the lock a mount
  // takes, and hold it until the new overlay is in place, so `--force`
  // never pulls the files from under a running mount.
  std::unique_ptr<File> old_meta;
  if (fs::exists(fs::symlink_status(MetadataPath(path)))) {
    CORFS_RETURN_IF_ERROR(OpenMetadataFile(path, /*read_only=*/false, *options.file_system, &old_meta));
  }
  if (!options.force) {
    for (const std::string& p : {path, PartialDataPath(path), MetadataPath(path)}) {
      if (fs::exists(fs::symlink_status(p))) {
        // No advice here: how to replace it is the caller's (create has
        // --force, a mount has none).
        return Status::Error(EEXIST, p + " already exists");
      }
    }
  }
  OverlayHeader header;
  CORFS_RETURN_IF_ERROR(NewHeader(path, options, &header));
  // Everything is checked: now write.
  return WriteNewOverlay(path, std::move(header), options.force, *options.file_system);
}

Status Overlay::Open(const std::string& path, const OpenOptions& options, std::unique_ptr<Overlay>* out) {
  const std::string meta_path = MetadataPath(path);
  FileSystem& file_system = *options.file_system;
  std::unique_ptr<File> meta;
  CORFS_RETURN_IF_ERROR(OpenMetadataFile(path, options.read_only, file_system, &meta));
  OverlayHeader header;
  CORFS_RETURN_IF_ERROR(ReadMetadataHeader(meta->fd(), meta_path, &header));
  std::string data_path;
  std::unique_ptr<File> data;
  CORFS_RETURN_IF_ERROR(OpenLocatedDataFile(path, header, options, &data_path, &data));
  std::shared_ptr<BackingChain> chain;
  CORFS_RETURN_IF_ERROR(OpenBackingChain(path, header, options, &chain));

  std::unique_ptr<Overlay> overlay(new Overlay(header.cluster_count()));
  // Bits past the last cluster (a grow interrupted before its header
  // update) are dropped: those clusters are not part of this disk.
  CORFS_RETURN_IF_ERROR(LoadBitmap(meta->fd(), meta_path, header, &overlay->bitmap_));
  overlay->path_ = path;
  overlay->data_path_ = data_path;
  overlay->meta_path_ = meta_path;
  overlay->file_system_ = options.file_system;
  overlay->size_.store(header.virtual_size);
  overlay->cluster_bits_ = header.cluster_bits;
  overlay->read_only_ = options.read_only;
  overlay->copy_on_read_ = options.copy_on_read && !options.read_only;
  overlay->chain_ = std::move(chain);
  overlay->header_ = std::move(header);
  if (options.guest_activity) overlay->guest_activity_ = options.guest_activity;
  overlay->data_ = DataFile(std::move(data));
  overlay->meta_ = std::move(meta);
  if (!options.read_only && options.commit_interval.count() > 0) {
    Overlay* self = overlay.get();
    overlay->committer_ = std::make_unique<CommitThread>(options.commit_interval, [self] {
      // A failed commit leaves its pages dirty, for the next Flush to report.
      if (self->bitmap_.HasDirtyPages()) (void)self->Commit();
    });
  }
  if (overlay->copy_on_read_) {
    Overlay* self = overlay.get();
    overlay->fill_behind_ =
        std::make_unique<FillBehind>(kFillBehindQueue, kFillBehindNice,
                                     [self](const ClaimedRun& run) { return self->FillClaimed(run, {}); });
  }
  if (overlay->copy_on_read_ && options.read_ahead) {
    Overlay* self = overlay.get();
    overlay->read_ahead_ = std::make_unique<ReadAhead>(
        // A failed fill leaves the clusters to the guest's own read, which reports it.
        [self](uint64_t offset, uint64_t length) { (void)self->Populate(offset, length, /*wait=*/false); },
        [self] { return self->size(); }, options.read_ahead_fillers);
  }
  *out = std::move(overlay);
  return Status::Ok();
}

}  // namespace corfs::overlay
