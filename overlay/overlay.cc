// Overlay: closing, commits, header updates (the chain's surgery) and the
// queries that need the header or the chain. Create and Open are in
// overlay_open.cc, the I/O path in overlay_io.cc.

#include "overlay/overlay.h"

#include <filesystem>

#include "common/file_io.h"

namespace corfs::overlay {

namespace fs = std::filesystem;

Overlay::~Overlay() { (void)Close(); }

Status Overlay::Close() {
  read_ahead_.reset();   // waits for a fill under way
  fill_behind_.reset();  // copies what it holds
  committer_.reset();    // waits for a commit under way
  if (closed_) return Status::Ok();
  // An Open that failed half way leaves an overlay without files: nothing to commit.
  Status status = read_only_ || !meta_ ? Status::Ok() : Commit();
  closed_ = true;
  return status;
}

OverlayHeader Overlay::header() const {
  std::lock_guard lock(header_mutex_);
  return header_;
}

std::string Overlay::data_path() const {
  std::lock_guard lock(header_mutex_);
  return data_path_;
}

std::shared_ptr<BackingChain> Overlay::chain() const {
  std::lock_guard lock(header_mutex_);
  return chain_;
}

// ---------------------------------------------------------------------------
// Commit: data first, then the bitmap (docs/design.md, "Durability")

Status Overlay::Commit() {
  if (read_only_) return Status::Ok();
  std::lock_guard lock(commit_mutex_);
  return CommitLocked({}, {});
}

Status Overlay::FlushGuestWrites() {
  // A commit under way when the guest flushes may have read the count before
  // the guest's last write; the count it publishes then stays below, and
  // this commits again (after it: commit_mutex_).
  if (guest_changes_.load(std::memory_order_acquire) == committed_guest_changes_.load(std::memory_order_acquire)) {
    return Status::Ok();
  }
  return Commit();
}

Status Overlay::CommitLocked(const std::function<void()>& snapshot, const std::function<Status()>& write_more) {
  // After a failed sync of the data file the kernel may have dropped the
  // pages it could not write and marked them clean: a later sync succeeds
  // without them. No commit can then vouch for the data, so none succeeds
  // until the overlay is opened again; what was not committed before the
  // failure reads as it was at the last commit (or the backing data).
  if (!lost_writes_.ok()) {
    return Status::Error(EIO, "an earlier sync of " + path_ + " failed (" + lost_writes_.message() +
                                  "): writes since the last commit may be lost; close and reopen the image");
  }
  // Take the dirty pages *before* syncing the data: every bit in them was set
  // after its cluster's data was written, so the sync below covers that data.
  const uint64_t guest_changes = guest_changes_.load(std::memory_order_acquire);
  std::vector<AllocationBitmap::Page> pages = bitmap_.TakeDirtyPages();
  if (snapshot) snapshot();
  Status status = data_.Sync();
  if (!status.ok()) lost_writes_ = status;
  for (size_t i = 0; status.ok() && i < pages.size(); ++i) {
    status = meta_->Write(kBitmapOffset + pages[i].index * kBitmapPageSize, pages[i].bytes);
  }
  if (status.ok() && write_more) status = write_more();
  // A failed write or sync of NAME.cor is retried whole by the next commit:
  // it writes the same pages again from memory.
  if (status.ok() && (!pages.empty() || write_more)) status = meta_->Sync();
  if (!status.ok()) bitmap_.MarkDirty(pages);
  if (status.ok()) committed_guest_changes_.store(guest_changes, std::memory_order_release);
  return status;
}

void Overlay::MarkAllocated(uint64_t first, uint64_t count) {
  bitmap_.SetRange(first, count);
  write_threshold_.Check(allocated_bytes());
}

// ---------------------------------------------------------------------------
// Queries

Status Overlay::GetLocalRun(uint64_t offset, uint64_t length, bool* local, uint64_t* run_length) const {
  const uint64_t disk_size = size();
  if (offset > disk_size || length > disk_size - offset) {
    return Status::Invalid("block status of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                           " is past the end of the disk (" + std::to_string(disk_size) + ")");
  }
  if (length == 0) return Status::Invalid("block status of an empty range");
  const uint64_t cluster = offset >> cluster_bits_;
  const bool allocated = bitmap_.Test(cluster);
  const uint64_t n = bitmap_.RunLength(cluster, ClustersUpTo(offset, offset + length), allocated);
  *local = allocated;
  *run_length = std::min(offset + length, ClusterStart(cluster + n)) - offset;
  return Status::Ok();
}

Status Overlay::GetUpperLayersStatus(uint64_t offset, uint64_t length, size_t end_layer, UpperLayersStatus* out) const {
  const uint64_t disk_size = size();
  if (offset > disk_size || length > disk_size - offset || length == 0) {
    return Status::Invalid("chain status of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                           " of a disk of " + std::to_string(disk_size));
  }
  return chain()->GetUpperLayersStatus(offset, length, end_layer, out);
}

Status Overlay::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  bool local = false;
  uint64_t run = 0;
  CORFS_RETURN_IF_ERROR(GetLocalRun(offset, length, &local, &run));
  if (local) return data_.GetBlockStatus(offset, run, out);
  return chain()->GetBlockStatus(offset, run, out);
}

bool Overlay::chain_reads_through_buffer() const {
  std::shared_ptr<BackingChain> backing = chain();
  if (!backing) return false;
  for (size_t i = 0; i < backing->depth(); ++i) {
    if (backing->layer(i).data_fd() < 0) return true;
  }
  return false;
}

Status Overlay::FindBackingLayer(const std::string& path, size_t* index) const {
  OverlayHeader current = header();
  std::string names;
  for (size_t i = 0; i < current.chain.size(); ++i) {
    const std::string& stored = current.chain[i].spec.path;
    const std::string resolved = ResolveBackingPath(path_, stored);
    std::error_code ec;
    if (stored == path || resolved == path || fs::equivalent(resolved, path, ec)) {
      *index = i;
      return Status::Ok();
    }
    names += (i ? ", " : "") + stored;
  }
  return Status::NotFound("'" + path + "' is not in the backing chain of " + path_ +
                          (names.empty() ? " (it has none)" : " (" + names + ")"));
}

// ---------------------------------------------------------------------------
// Header updates: each commits first, then writes the other header slot

Status Overlay::UpdateHeader(OverlayHeader next, std::shared_ptr<BackingChain> new_chain) {
  next.sequence += 1;
  std::string slot;
  CORFS_RETURN_IF_ERROR(EncodeHeaderSlot(next, &slot));
  CORFS_RETURN_IF_ERROR(meta_->Write((next.sequence % 2) * kHeaderSlotSize, slot));
  CORFS_RETURN_IF_ERROR(meta_->Sync());
  {
    std::lock_guard lock(header_mutex_);
    header_ = std::move(next);
    chain_.swap(new_chain);
  }
  // The old chain closes once no reader holds it, here or in the last
  // reader, outside header_mutex_ either way.
  return Status::Ok();
}

Status Overlay::UpdateFileAttributes(const std::function<void(OverlayHeader*)>& change) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(header_update_mutex_);
  const OverlayHeader current = header();
  OverlayHeader next = current;
  change(&next);
  if (next == current) return Status::Ok();
  next.version = std::max(next.version, kFileAttributesVersion);
  return UpdateHeader(std::move(next), chain());
}

Status Overlay::SetOwner(FileOwner owner) {
  return UpdateFileAttributes([&](OverlayHeader* h) { h->owner = owner; });
}

Status Overlay::SetMode(uint32_t mode) {
  return UpdateFileAttributes([&](OverlayHeader* h) { h->mode = mode; });
}

Status Overlay::SetStreamWish(std::optional<StreamWish> wish) {
  if (header().version < kFileAttributesVersion) {
    if (!wish) return Status::Ok();
    return Status::Error(ENOTSUP, path_ + " has header version " + std::to_string(header().version) +
                                      ", which keeps no stream to resume (an overlay made by this corfs does)");
  }
  return UpdateFileAttributes([&](OverlayHeader* h) { h->stream_wish = std::move(wish); });
}

Status Overlay::CheckBackingUnchanged() const { return chain()->CheckUnchanged(); }

Status Overlay::DropBacking() {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(header_update_mutex_);
  OverlayHeader next = header();
  if (next.standalone) return NameCompleteDataFile();
  if (lacking_clusters() != 0) {
    return Status::Invalid(path_ + " still lacks " + std::to_string(lacking_clusters()) +
                           " clusters; the backing chain is still needed");
  }
  // What was copied from a template changed in place is not the disk: such
  // an overlay keeps its chain (and every read of it fails).
  CORFS_RETURN_IF_ERROR(chain()->CheckUnchanged());
  // Data and bitmap durable first: a crash after this point finds either
  // the old header over a complete overlay, or the standalone header.
  CORFS_RETURN_IF_ERROR(Commit());
  next.standalone = true;
  next.chain.clear();
  // The flag stays: it tells an open that finds only NAME.part beside this
  // header that the rename below is what was cut short, so finishing it is
  // safe (a header without the flag never had a NAME.part to rename).
  CORFS_RETURN_IF_ERROR(UpdateHeader(std::move(next), std::make_shared<BackingChain>()));
  return NameCompleteDataFile();
}

Status Overlay::NameCompleteDataFile() {
  if (data_path() == path_) return Status::Ok();
  // After the standalone header is durable: a crash before the rename
  // leaves a complete overlay in NAME.part, which the next writable open
  // renames (LocateDataFile). The open descriptor follows the file.
  CORFS_RETURN_IF_ERROR(FinishDataFileRename(path_, *file_system_));
  std::lock_guard lock(header_mutex_);
  data_path_ = path_;
  return Status::Ok();
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
  CORFS_RETURN_IF_ERROR(chain()->CheckUnchanged());
  CORFS_RETURN_IF_ERROR(Commit());
  next.chain.erase(next.chain.begin(), next.chain.begin() + static_cast<long>(new_top));
  return UpdateHeader(std::move(next), chain()->Suffix(new_top, size()));
}

Status Overlay::RemoveLayers(size_t first, size_t end, const ImageIdentity& base_identity) {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(header_update_mutex_);
  OverlayHeader next = header();
  if (next.standalone || first > end || end >= next.chain.size()) {
    return Status::Invalid("cannot remove layers " + std::to_string(first) + ".." + std::to_string(end) +
                           " from a chain of " + std::to_string(next.chain.size()));
  }
  CORFS_RETURN_IF_ERROR(chain()->CheckUnchanged());
  CORFS_RETURN_IF_ERROR(Commit());
  ImageIdentity& recorded = next.chain[end].identity;
  // The content hash is kept only where one was recorded (an overlay made
  // with --verify-backing full), and the version tag is a server's: a
  // commit's base is a local file, which has none.
  std::optional<ContentHash> content = recorded.content ? base_identity.content : std::nullopt;
  std::optional<FileStamp> stamp = recorded.stamp ? base_identity.stamp : std::nullopt;
  recorded = base_identity;
  recorded.content = content;
  recorded.stamp = stamp;
  next.chain.erase(next.chain.begin() + static_cast<long>(first), next.chain.begin() + static_cast<long>(end));
  std::shared_ptr<BackingChain> new_chain = first == end ? chain() : chain()->Without(first, end, size());
  return UpdateHeader(std::move(next), std::move(new_chain));
}

Status Overlay::ForgetLocalClusters() {
  if (read_only_) return Status::Error(EROFS, path_ + " is read-only");
  std::lock_guard lock(commit_mutex_);
  bitmap_.ClearRange(0, bitmap_.clusters());
  return CommitLocked({}, {});
}

void Overlay::AddWriteHook(std::shared_ptr<GuestWriteHook> hook, const std::function<void()>& at_quiet_moment) {
  // No write is under way while the list changes: one that took the old
  // list finished before, and one that starts after sees the new one.
  write_gate_.Quiesce([&] {
    {
      std::lock_guard lock(write_hooks_mutex_);
      auto next = write_hooks_ ? std::make_shared<WriteHooks>(*write_hooks_) : std::make_shared<WriteHooks>();
      next->push_back(std::move(hook));
      write_hooks_ = std::move(next);
      has_write_hooks_.store(true, std::memory_order_release);
    }
    if (at_quiet_moment) at_quiet_moment();
  });
}

void Overlay::RemoveWriteHook(const GuestWriteHook* hook) {
  std::lock_guard lock(write_hooks_mutex_);
  if (!write_hooks_) return;
  auto next = std::make_shared<WriteHooks>();
  for (const auto& installed : *write_hooks_) {
    if (installed.get() != hook) next->push_back(installed);
  }
  if (next->empty()) {
    write_hooks_.reset();
    has_write_hooks_.store(false, std::memory_order_release);
  } else {
    write_hooks_ = std::move(next);
  }
}

std::shared_ptr<const Overlay::WriteHooks> Overlay::write_hooks() const {
  if (!has_write_hooks_.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard lock(write_hooks_mutex_);
  return write_hooks_;
}

}  // namespace corfs::overlay
