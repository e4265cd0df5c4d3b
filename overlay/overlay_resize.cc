// Overlay::Resize: growing the disk while it is in use.
//
// The new part of the disk reads as zeros: it is beyond every backing
// image as the overlay saw them (a layer shows only up to the old size,
// BackingChain), and QEMU too zeroes what a grow adds over a longer
// backing file. So its clusters are the overlay's from the start: set in
// the bitmap, a hole in the data file.
//
// The order, so that a crash anywhere leaves the old disk or the new one:
//   1. the old last cluster, if it is partial and not held, is copied in
//      (its part past the old end must read zeros, and after a reopen the
//      chain would show a longer backing image's bytes there);
//   2. the data file is extended (a hole);
//   3. NAME.cor is extended and a commit writes the dirty pages and the
//      grown bitmap pages, new clusters set, after the data sync;
//   4. the header with the new size is written (the commit point);
//   5. the in-memory bitmap grows, then the size is published.
// Before 4 the header still says the old size: open accepts a data file or
// a bitmap longer than that header needs, and ignores bits past its last
// cluster (overlay_open.cc, overlay_inspect.cc). After 4 every new cluster
// is already set on disk, so the new size never shows a backing image's
// bytes.

#include "overlay/overlay.h"

namespace corfs::overlay {

Status Overlay::Resize(uint64_t new_size) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  if (has_write_hooks_.load(std::memory_order_acquire)) {
    return Status::Error(EBUSY, "cannot resize " + path_ + " while a job copies its writes (mirror, backup, commit)");
  }
  std::lock_guard lock(header_update_mutex_);
  const uint64_t old_size = size();
  if (new_size < old_size) {
    return Status::Invalid("cannot shrink " + path_ + " from " + std::to_string(old_size) + " to " +
                           std::to_string(new_size) + " bytes: a disk only grows");
  }
  if (new_size == old_size) return Status::Ok();
  OverlayHeader next = header();
  next.virtual_size = new_size;
  CORFS_RETURN_IF_ERROR(next.Validate());
  CORFS_RETURN_IF_ERROR(FillPartialLastCluster(old_size));
  return CommitGrowth(next);
}

Status Overlay::FillPartialLastCluster(uint64_t disk_size) {
  const uint64_t last = (disk_size - 1) >> cluster_bits_;
  if ((disk_size & (cluster_size() - 1)) == 0 || bitmap_.Test(last)) return Status::Ok();
  // Waits for a guest request filling it: once this returns it is held.
  return Populate(ClusterStart(last), disk_size - ClusterStart(last), /*wait=*/true);
}

Status Overlay::CommitGrowth(const OverlayHeader& next) {
  std::lock_guard lock(commit_mutex_);
  const uint64_t new_clusters = next.cluster_count();
  const uint64_t first_page = bitmap_.clusters() / AllocationBitmap::kClustersPerPage;
  const uint64_t end_page = AllocationBitmap::PagesFor(new_clusters);
  CORFS_RETURN_IF_ERROR(data_.Truncate(next.virtual_size));
  CORFS_RETURN_IF_ERROR(meta_->Truncate(next.metadata_file_size()));
  // The page holding the old end keeps bits of old clusters: copied before
  // the data sync, like every page a commit writes.
  AllocationBitmap::Page boundary;
  auto snapshot = [&] { boundary = bitmap_.GrownPage(first_page, new_clusters); };
  auto write_grown = [&]() -> Status {
    CORFS_RETURN_IF_ERROR(meta_->Write(kBitmapOffset + first_page * kBitmapPageSize, boundary.bytes));
    for (uint64_t page = first_page + 1; page < end_page; ++page) {
      CORFS_RETURN_IF_ERROR(meta_->Write(kBitmapOffset + page * kBitmapPageSize,
                                         bitmap_.GrownPage(page, new_clusters).bytes));
    }
    return Status::Ok();
  };
  CORFS_RETURN_IF_ERROR(CommitLocked(snapshot, write_grown));
  CORFS_RETURN_IF_ERROR(UpdateHeader(next, chain()));
  // Still under commit_mutex_: no commit writes the boundary page from a
  // bitmap without the new bits between the header update and here.
  bitmap_.Grow(new_clusters, /*set_new=*/true);
  size_.store(next.virtual_size, std::memory_order_release);
  write_threshold_.Check(allocated_bytes());
  return Status::Ok();
}

}  // namespace corfs::overlay
