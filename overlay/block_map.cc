#include "overlay/block_map.h"

#include <fcntl.h>
#include <sys/stat.h>

#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/image_identity.h"
#include "overlay/overlay.h"
#include "overlay/overlay_files.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

namespace {

// Appends `run`, merged into the last run when it continues it.
void Append(const MapRun& run, std::vector<MapRun>* out) {
  if (!out->empty() && out->back().SameKind(run) && out->back().start + out->back().length == run.start) {
    out->back().length += run.length;
    return;
  }
  out->push_back(run);
}

// The run at `offset` (at most `length` bytes) as the chain decides it, with
// qemu-img's depths: past the end of backing image i the image above it
// (depth i) reads zeros it does not hold; where no image holds the run, the
// bottom one decides (it reads zeros).
Status ChainRun(BackingChain& chain, uint64_t offset, uint64_t length, MapRun* out) {
  *out = {offset, length, chain.depth(), false, true, false};
  for (size_t i = 0; i < chain.depth(); ++i) {
    if (offset >= chain.visible_size(i)) {
      out->depth = i;
      break;
    }
    out->length = std::min(out->length, chain.visible_size(i) - offset);
    BlockStatus status;
    CORFS_RETURN_IF_ERROR(chain.layer(i).GetBlockStatus(offset, out->length, &status));
    out->length = std::min(out->length, status.length);
    if (status.allocation != Allocation::kUnallocated) {
      *out = {offset,
              out->length,
              i + 1,
              true,
              status.allocation == Allocation::kZero,
              status.allocation == Allocation::kData};
      break;
    }
  }
  return Status::Ok();
}

// The runs of [offset, end), which the overlay all holds or all lacks.
Status MapPart(const MapSources& sources, bool local, uint64_t offset, uint64_t end, std::vector<MapRun>* out) {
  for (uint64_t pos = offset; pos < end;) {
    MapRun run;
    if (local) {
      BlockStatus status;
      CORFS_RETURN_IF_ERROR(sources.local_status(pos, end - pos, &status));
      const bool data = status.allocation == Allocation::kData;
      run = {pos, std::min(status.length, end - pos), 0, true, !data, data};
    } else {
      CORFS_RETURN_IF_ERROR(ChainRun(*sources.chain, pos, end - pos, &run));
    }
    Append(run, out);
    pos += run.length;
  }
  return Status::Ok();
}

// Opens the chain the header of the overlay at `path` names, each image
// checked against its recorded identity.
Status OpenRecordedChain(const std::string& path, const OverlayHeader& header, const ImageOpener& opener,
                         const std::function<void(const std::string&)>& warn, std::shared_ptr<BackingChain>* out) {
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  if (!header.standalone) {
    for (const BackingImage& image : header.chain) {
      const std::string resolved = ResolveBackingPath(path, image.spec.path);
      std::unique_ptr<BlockDriver> driver;
      Status opened = opener(resolved, image.spec.format, &driver);
      if (!opened.ok()) return opened.WithContext("backing image '" + resolved + "'");
      std::string warning;
      CORFS_RETURN_IF_ERROR(VerifyIdentity(*driver, resolved, image.identity, image.spec.path, VerifyBacking::kSampled,
                                           &warning));
      if (!warning.empty() && warn) warn("overlay " + path + ": " + warning);
      drivers.push_back(std::move(driver));
    }
  }
  *out = std::make_shared<BackingChain>(std::move(drivers), header.virtual_size);
  return Status::Ok();
}

}  // namespace

Status MapDisk(const MapSources& sources, std::vector<MapRun>* out) {
  out->clear();
  for (uint64_t pos = 0; pos < sources.disk_size;) {
    bool local = false;
    uint64_t run = 0;
    CORFS_RETURN_IF_ERROR(sources.local_run(pos, sources.disk_size - pos, &local, &run));
    CORFS_RETURN_IF_ERROR(MapPart(sources, local, pos, pos + run, out));
    pos += run;
  }
  return Status::Ok();
}

Status MapOverlayFile(const std::string& path, const ImageOpener& opener,
                      const std::function<void(const std::string&)>& warn, std::vector<MapRun>* out) {
  const std::string meta_path = MetadataPath(path);
  UniqueFd meta;
  CORFS_RETURN_IF_ERROR(OpenDiskFile(meta_path, O_RDONLY, &meta));
  OverlayHeader header;
  CORFS_RETURN_IF_ERROR(ReadMetadataHeader(meta.get(), meta_path, &header));
  AllocationBitmap bitmap(header.cluster_count());
  CORFS_RETURN_IF_ERROR(LoadBitmap(meta.get(), meta_path, header, &bitmap));
  // NAME.part while the overlay is unfinished (overlay_files.h).
  DataFileLocation where;
  CORFS_RETURN_IF_ERROR(LocateDataFile(path, header, &where));
  UniqueFd data;
  CORFS_RETURN_IF_ERROR(OpenDiskFile(where.path, O_RDONLY, &data));
  struct stat st {};
  if (::fstat(data.get(), &st) != 0) return Status::FromErrno("stat " + where.path);
  // Longer is what an interrupted grow leaves (the next mount cuts it back).
  if (static_cast<uint64_t>(st.st_size) < header.virtual_size) {
    return Status::Corrupt("data file " + where.path + " has " + std::to_string(st.st_size) +
                           " bytes, the header says the disk has " + std::to_string(header.virtual_size));
  }
  std::shared_ptr<BackingChain> chain;
  CORFS_RETURN_IF_ERROR(OpenRecordedChain(path, header, opener, warn, &chain));

  const uint32_t bits = header.cluster_bits;
  MapSources sources;
  sources.disk_size = header.virtual_size;
  sources.local_run = [&](uint64_t offset, uint64_t length, bool* local, uint64_t* run) {
    const uint64_t cluster = offset >> bits;
    const uint64_t last = (offset + length - 1) >> bits;
    *local = bitmap.Test(cluster);
    const uint64_t n = bitmap.RunLength(cluster, last - cluster + 1, *local);
    *run = std::min(offset + length, (cluster + n) << bits) - offset;
    return Status::Ok();
  };
  sources.local_status = [&](uint64_t offset, uint64_t length, BlockStatus* status) {
    return ProbeSparseRun(data.get(), offset, length, Allocation::kZero, path, status);
  };
  sources.chain = chain.get();
  return MapDisk(sources, out);
}

Status Overlay::Map(std::vector<MapRun>* out) const {
  std::shared_ptr<BackingChain> backing = chain();
  MapSources sources;
  sources.disk_size = size_;
  sources.local_run = [this](uint64_t offset, uint64_t length, bool* local, uint64_t* run) {
    return GetLocalRun(offset, length, local, run);
  };
  sources.local_status = [this](uint64_t offset, uint64_t length, BlockStatus* status) {
    return data_.GetBlockStatus(offset, length, status);
  };
  sources.chain = backing.get();
  return MapDisk(sources, out);
}

}  // namespace corfs::overlay
