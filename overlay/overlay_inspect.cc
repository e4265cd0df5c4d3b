#include "overlay/overlay_inspect.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/image_identity.h"
#include "overlay/overlay.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

namespace {

std::string Resolve(const std::string& overlay_path, const std::string& stored) {
  if (fs::path(stored).is_absolute()) return stored;
  return (fs::path(overlay_path).parent_path() / stored).lexically_normal().string();
}

Status LoadBitmap(int fd, const std::string& meta_path, const OverlayHeader& header, AllocationBitmap* bitmap) {
  std::string piece(1 << 20, '\0');
  const uint64_t bytes = header.bitmap_bytes();
  for (uint64_t at = 0; at < bytes; at += piece.size()) {
    std::span<char> part(piece.data(), std::min<uint64_t>(piece.size(), bytes - at));
    CORFS_RETURN_IF_ERROR(PreadFull(fd, part, kBitmapOffset + at, meta_path));
    bitmap->Load(at, part);
  }
  return Status::Ok();
}

}  // namespace

Status InspectOverlay(const std::string& path, OverlayInfo* out) {
  const std::string meta_path = MetadataPath(path);
  UniqueFd meta(::open(meta_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!meta.valid()) {
    if (errno == ENOENT) return Status::NotFound(meta_path + " does not exist: " + path + " is not a corfs overlay");
    return Status::FromErrno("open " + meta_path);
  }
  OverlayInfo info;
  info.path = path;
  CORFS_RETURN_IF_ERROR(ReadHeader(meta.get(), meta_path, &info.header));
  struct stat st {};
  if (::fstat(meta.get(), &st) != 0) return Status::FromErrno("stat " + meta_path);
  if (static_cast<uint64_t>(st.st_size) < info.header.metadata_file_size()) {
    return Status::Corrupt(meta_path + ": the bitmap is shorter than the disk");
  }
  AllocationBitmap bitmap(info.header.cluster_count());
  CORFS_RETURN_IF_ERROR(LoadBitmap(meta.get(), meta_path, info.header, &bitmap));
  info.allocated_clusters = bitmap.CountSet();
  info.allocated_bytes = std::min(info.header.virtual_size, info.allocated_clusters * info.header.cluster_size());
  if (::stat(path.c_str(), &st) == 0) info.data_file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  for (const BackingRef& ref : info.header.chain) info.chain.push_back({ref, Resolve(path, ref.path)});
  *out = std::move(info);
  return Status::Ok();
}

void CheckOverlay(const std::string& path, const ImageOpener& opener, CheckReport* report) {
  const std::string meta_path = MetadataPath(path);
  UniqueFd meta(::open(meta_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!meta.valid()) {
    report->problems.push_back(Status::FromErrno("open " + meta_path).message());
    return;
  }
  HeaderSlots slots;
  Status read = ReadHeaderSlots(meta.get(), meta_path, &slots);
  if (!read.ok()) {
    report->problems.push_back(read.message());
    return;
  }
  for (int i = 0; i < 2; ++i) {
    if (slots.slot_status[i].ok()) continue;
    std::string text = "header slot " + std::to_string(i) + ": " + slots.slot_status[i].message();
    // One bad slot next to a good one is what an interrupted header update
    // leaves; the good slot is used and the next update rewrites the bad one.
    if (slots.active >= 0) {
      report->notes.push_back(text + " (an interrupted update; slot " + std::to_string(slots.active) +
                              " is in use)");
    } else {
      report->problems.push_back(text);
    }
  }
  if (slots.active < 0) return;
  const OverlayHeader& header = slots.slot_header[slots.active];

  struct stat st {};
  if (::fstat(meta.get(), &st) != 0) {
    report->problems.push_back(Status::FromErrno("stat " + meta_path).message());
    return;
  }
  if (static_cast<uint64_t>(st.st_size) < header.metadata_file_size()) {
    report->problems.push_back(meta_path + ": the bitmap is shorter than the disk (file has " +
                               std::to_string(st.st_size) + " bytes, needs " +
                               std::to_string(header.metadata_file_size()) + ")");
  } else {
    AllocationBitmap bitmap(header.cluster_count());
    Status loaded = LoadBitmap(meta.get(), meta_path, header, &bitmap);
    if (!loaded.ok()) {
      report->problems.push_back(loaded.message());
    } else {
      if (bitmap.HasBitsPastEnd()) report->problems.push_back(meta_path + ": bitmap bits are set past the last cluster");
      if (header.standalone && bitmap.CountSet() != header.cluster_count()) {
        report->problems.push_back("the overlay is marked standalone but holds only " +
                                   std::to_string(bitmap.CountSet()) + " of " +
                                   std::to_string(header.cluster_count()) + " clusters");
      }
    }
  }

  if (::stat(path.c_str(), &st) != 0) {
    report->problems.push_back(Status::FromErrno("data file " + path).message());
  } else if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) != header.virtual_size) {
    report->problems.push_back("data file " + path + " has " + std::to_string(st.st_size) +
                               " bytes, the header says the disk has " + std::to_string(header.virtual_size));
  }

  for (const BackingRef& ref : header.chain) {
    const std::string resolved = Resolve(path, ref.path);
    std::unique_ptr<BlockDriver> driver;
    Status opened = opener(resolved, ref.format, &driver);
    if (!opened.ok()) {
      report->problems.push_back("backing image '" + resolved + "': " + opened.message());
      continue;
    }
    ImageIdentity found;
    Status hashed = ComputeIdentity(*driver, &found);
    if (!hashed.ok()) {
      report->problems.push_back(hashed.message());
    } else if (found != ImageIdentity{ref.size, ref.fingerprint}) {
      report->problems.push_back("backing image '" + resolved + "' (" + found.ToString() +
                                 ") is not the image this overlay was made over (" +
                                 ImageIdentity{ref.size, ref.fingerprint}.ToString() + ")");
    }
  }
}

}  // namespace corfs::overlay
