#include "overlay/overlay_inspect.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/commit_intent.h"
#include "overlay/image_identity.h"
#include "overlay/overlay_files.h"

namespace corfs::overlay {

namespace {

// Reports the slots that do not decode; returns the active header, or null
// when neither slot is valid.
const OverlayHeader* CheckHeaderSlots(const HeaderSlots& slots, CheckReport* report) {
  for (int i = 0; i < 2; ++i) {
    if (slots.slot_status[i].ok()) continue;
    std::string text = "header slot " + std::to_string(i) + ": " + slots.slot_status[i].message();
    // One bad slot next to a good one is what an interrupted header update
    // leaves; the good slot is used and the next update rewrites the bad one.
    if (slots.active >= 0) {
      report->notes.push_back(text + " (an interrupted update; slot " + std::to_string(slots.active) + " is in use)");
    } else {
      report->problems.push_back(text);
    }
  }
  return slots.active >= 0 ? &slots.slot_header[slots.active] : nullptr;
}

void CheckBitmap(int meta_fd, const std::string& meta_path, const OverlayHeader& header, CheckReport* report) {
  // The length first: a header that claims an enormous disk over a short
  // file must not size the bitmap in memory (an EiB of 64 KiB clusters
  // would be 2 TiB of bits).
  Status status = CheckBitmapLength(meta_fd, meta_path, header);
  if (!status.ok()) {
    report->problems.push_back(status.message());
    return;
  }
  AllocationBitmap bitmap(header.cluster_count());
  status = LoadBitmap(meta_fd, meta_path, header, &bitmap);
  if (!status.ok()) {
    report->problems.push_back(status.message());
    return;
  }
  if (bitmap.HasBitsPastEnd()) {
    report->notes.push_back(meta_path +
                            ": bitmap bits are set past the last cluster (left by a resize that was interrupted; "
                            "they are ignored)");
  }
  if (header.standalone && bitmap.CountSet() != header.cluster_count()) {
    report->problems.push_back("the overlay is marked standalone but holds only " + std::to_string(bitmap.CountSet()) +
                               " of " + std::to_string(header.cluster_count()) + " clusters");
  }
}

void CheckDataFile(const std::string& path, const OverlayHeader& header, CheckReport* report) {
  DataFileLocation where;
  Status located = LocateDataFile(path, header, &where);
  if (!located.ok()) {
    report->problems.push_back(located.message());
    return;
  }
  if (where.rename_pending) {
    report->notes.push_back("the overlay is complete but its data file is still " + where.path + "; the next " +
                            "writable open (a mount) renames it to " + path);
  }
  struct stat st {};
  if (::stat(where.path.c_str(), &st) != 0) {
    report->problems.push_back(Status::FromErrno("data file " + where.path).message());
  } else if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) < header.virtual_size) {
    report->problems.push_back("data file " + where.path + " has " + std::to_string(st.st_size) +
                               " bytes, the header says the disk has " + std::to_string(header.virtual_size));
  } else if (static_cast<uint64_t>(st.st_size) > header.virtual_size) {
    report->notes.push_back("data file " + where.path + " has " + std::to_string(st.st_size) + " bytes, the disk " +
                            std::to_string(header.virtual_size) +
                            " (left by a resize that was interrupted; the next mount cuts it)");
  }
}

void CheckChain(const std::string& path, const OverlayHeader& header, const ImageOpener& opener, VerifyBacking verify,
                CheckReport* report) {
  for (const BackingImage& image : header.chain) {
    const std::string resolved = ResolveBackingPath(path, image.spec.path);
    std::unique_ptr<BlockDriver> driver;
    Status opened = opener(resolved, image.spec.format, &driver);
    if (!opened.ok()) {
      report->problems.push_back("backing image '" + resolved + "': " + opened.message());
      continue;
    }
    VerifyBacking mode = verify;
    if (mode == VerifyBacking::kFull && !image.identity.content) {
      report->notes.push_back("backing image '" + resolved +
                              "': the overlay records no content hash of it (it was made without `corfs create "
                              "--verify-backing full`), so only its size and sampled fingerprint are verified");
      mode = VerifyBacking::kSampled;
    }
    std::string warning;
    Status verified = VerifyIdentity(*driver, resolved, image.identity, image.spec.path, mode, &warning);
    // As at open: a commit cut short may have changed the image under an
    // overlay it prepared (commit_intent.h), which is then sound.
    if ((!verified.ok() || !warning.empty()) && CoveredByUnfinishedCommit(resolved, path, image.identity, &warning)) {
      verified = Status::Ok();
    }
    if (!verified.ok()) report->problems.push_back(verified.message());
    if (!warning.empty()) report->notes.push_back(warning);
  }
}

}  // namespace

Status InspectOverlay(const std::string& path, OverlayInfo* out) {
  const std::string meta_path = MetadataPath(path);
  UniqueFd meta;
  if (Status opened = OpenDiskFile(meta_path, O_RDONLY, &meta); !opened.ok()) {
    if (opened.code() == ENOENT) {
      return Status::NotFound(meta_path + " does not exist: " + path + " is not a corfs overlay");
    }
    return opened;
  }
  OverlayInfo info;
  info.path = path;
  CORFS_RETURN_IF_ERROR(ReadMetadataHeader(meta.get(), meta_path, &info.header));
  AllocationBitmap bitmap(info.header.cluster_count());
  CORFS_RETURN_IF_ERROR(LoadBitmap(meta.get(), meta_path, info.header, &bitmap));
  info.allocated_clusters = bitmap.CountSet();
  info.allocated_bytes = std::min(info.header.virtual_size, info.allocated_clusters * info.header.cluster_size());
  DataFileLocation where;
  Status located = LocateDataFile(path, info.header, &where);
  info.data_file = located.ok() ? where.path : DataFilePath(path, info.header);
  info.rename_pending = where.rename_pending;
  if (!located.ok()) info.data_file_problem = located.message();
  struct stat st {};
  if (::stat(info.data_file.c_str(), &st) == 0) info.data_file_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  *out = std::move(info);
  return Status::Ok();
}

void CheckOverlay(const std::string& path, const ImageOpener& opener, CheckReport* report, VerifyBacking verify) {
  const std::string meta_path = MetadataPath(path);
  UniqueFd meta;
  if (Status opened = OpenDiskFile(meta_path, O_RDONLY, &meta); !opened.ok()) {
    report->problems.push_back(opened.message());
    return;
  }
  HeaderSlots slots;
  Status read = ReadHeaderSlots(meta.get(), meta_path, &slots);
  if (!read.ok()) {
    report->problems.push_back(read.message());
    return;
  }
  const OverlayHeader* header = CheckHeaderSlots(slots, report);
  if (header == nullptr) return;
  CheckBitmap(meta.get(), meta_path, *header, report);
  CheckDataFile(path, *header, report);
  CheckChain(path, *header, opener, verify, report);
}

}  // namespace corfs::overlay
