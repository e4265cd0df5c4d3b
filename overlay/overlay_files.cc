#include "overlay/overlay_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "common/file_io.h"
#include "overlay/scratch_buffer.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

std::string MetadataPath(const std::string& path) { return path + ".cor"; }

std::string ResolveBackingPath(const std::string& overlay_path, const std::string& stored) {
  fs::path p(stored);
  if (p.is_absolute()) return stored;
  return (fs::path(overlay_path).parent_path() / p).lexically_normal().string();
}

std::string StoredBackingPath(const std::string& overlay_path, const std::string& user_path) {
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
