#include "overlay/overlay_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "common/file_io.h"
#include "overlay/image_location.h"
#include "overlay/scratch_buffer.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

std::string MetadataPath(const std::string& path) { return path + ".cor"; }

std::string PartialDataPath(const std::string& path) { return path + ".part"; }

std::string DataFilePath(const std::string& path, const OverlayHeader& header) {
  return header.partial_data_file && !header.standalone ? PartialDataPath(path) : path;
}

namespace {

// Whether `path` names anything (a dangling symbolic link too), or the error
// that kept stat from telling.
Status Exists(const std::string& path, bool* exists) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    *exists = true;
    return Status::Ok();
  }
  if (errno != ENOENT) return Status::FromErrno("stat " + path);
  *exists = false;
  return Status::Ok();
}

}  // namespace

Status LocateDataFile(const std::string& path, const OverlayHeader& header, DataFileLocation* out) {
  if (!header.partial_data_file) {
    *out = {path, false};
    return Status::Ok();
  }
  const std::string part = PartialDataPath(path);
  bool whole_exists = false;
  bool part_exists = false;
  CORFS_RETURN_IF_ERROR(Exists(path, &whole_exists));
  CORFS_RETURN_IF_ERROR(Exists(part, &part_exists));
  if (whole_exists && part_exists) {
    return Status::Corrupt("overlay " + path + " has two data files, " + path + " and " + part +
                           ", and corfs cannot tell which one is the disk (" +
                           (header.standalone ? "the header says it is complete" : "the header says it is unfinished") +
                           "); move the wrong one away");
  }
  if (!header.standalone) {
    if (whole_exists) {
      return Status::Corrupt("overlay " + path + " is unfinished, so its data file is " + part + ", but only " + path +
                             " exists (renamed by hand?)");
    }
    if (!part_exists) return Status::NotFound("data file " + part + " of overlay " + path + " does not exist");
    *out = {part, false};
    return Status::Ok();
  }
  if (!whole_exists && !part_exists) {
    return Status::NotFound("data file " + path + " of overlay " + path + " does not exist (nor " + part + ")");
  }
  *out = {whole_exists ? path : part, !whole_exists};
  return Status::Ok();
}

Status FinishDataFileRename(const std::string& path, FileSystem& file_system) {
  Status status = file_system.Rename(PartialDataPath(path), path);
  if (status.ok()) status = file_system.SyncParentDirectory(path);
  if (status.ok()) return Status::Ok();
  return Status::Error(EIO, "overlay " + path + " is complete, but renaming its data file " + PartialDataPath(path) +
                                " to " + path + " failed (" + status.message() +
                                "); the next writable open tries again");
}

std::string ResolveBackingPath(const std::string& overlay_path, const std::string& stored) {
  if (IsUri(stored)) return stored;
  fs::path p(stored);
  if (p.is_absolute()) return stored;
  return (fs::path(overlay_path).parent_path() / p).lexically_normal().string();
}

std::string StoredBackingPath(const std::string& overlay_path, const std::string& user_path) {
  if (IsUri(user_path)) return RedactCredentials(user_path);
  if (fs::path(user_path).is_absolute()) return user_path;
  fs::path overlay_dir = fs::absolute(overlay_path).parent_path();
  return fs::absolute(user_path).lexically_normal().lexically_relative(overlay_dir).string();
}

Status ReadMetadataHeader(int fd, const std::string& meta_path, OverlayHeader* out) {
  OverlayHeader header;
  CORFS_RETURN_IF_ERROR(ReadHeader(fd, meta_path, &header));
  CORFS_RETURN_IF_ERROR(CheckBitmapLength(fd, meta_path, header));
  *out = std::move(header);
  return Status::Ok();
}

Status CheckBitmapLength(int fd, const std::string& meta_path, const OverlayHeader& header) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno("stat " + meta_path);
  if (static_cast<uint64_t>(st.st_size) < header.metadata_file_size()) {
    return Status::Corrupt(meta_path + ": the bitmap is shorter than the disk (file has " + std::to_string(st.st_size) +
                           " bytes, the header needs " + std::to_string(header.metadata_file_size()) + ")");
  }
  return Status::Ok();
}

Status LoadBitmap(int fd, const std::string& meta_path, const OverlayHeader& header, AllocationBitmap* bitmap) {
  // In 1 MiB pieces: a 1 TiB disk of 64 KiB clusters has a 2 MiB bitmap,
  // and no copy of it beyond the in-memory one is kept.
  const uint64_t bytes = header.bitmap_bytes();
  ScratchBuffer piece(std::min<uint64_t>(bytes, 1 << 20));
  for (uint64_t at = 0; at < bytes; at += piece.span().size()) {
    std::span<char> part = piece.span().first(std::min<uint64_t>(piece.span().size(), bytes - at));
    CORFS_RETURN_IF_ERROR(PreadFull(fd, part, kBitmapOffset + at, meta_path));
    bitmap->Load(at, part);
  }
  return Status::Ok();
}

}  // namespace corfs::overlay
