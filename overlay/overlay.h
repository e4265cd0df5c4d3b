#pragma once
// Overlay: one virtual disk of corfs, the native two-file overlay of
// docs/design.md over a backing chain.
//
//   NAME      sparse raw data file of the virtual size; cluster i of the disk
//             lives at the same offset once allocated (NAME.part until a
//             flagged overlay is standalone: overlay_files.h)
//   NAME.cor  header (two checksummed slots) + allocation bitmap
//
// Reads of allocated clusters go straight to NAME, without locks. Other
// clusters are faulted in from the chain (copy-on-read) or, with
// copy_on_read off, read from the chain and left there (a thin clone).
// Writes go to NAME; a partial write to a cluster the overlay lacks first
// merges the backing data (copy-on-write). Clusters that are all zeros stay
// holes in NAME.
//
// Durability: a bitmap bit reaches NAME.cor only after the data of its
// cluster was synced (Commit). Flush commits; a guest's flush commits when
// the guest changed the disk since the last commit (FlushGuestWrites); a
// background thread commits about once a second; closing commits. Once a
// sync of NAME has failed, every later commit fails too, until the overlay
// is opened again: the kernel reports a lost write once, and a later sync
// that succeeds says nothing about it.
//
// Where the parts live:
//   overlay_open.cc    Create and Open (the files themselves: overlay_files.h)
//   overlay_io.cc      guest reads and writes, copy-on-read, Populate
//   overlay.cc         commits, header updates (chain surgery), queries
//   overlay_resize.cc  growing the disk
//   block_map.cc       the allocation map (Map), as qemu-img map tells it
//   data_file.h        writes to NAME that keep zeros as holes
//   cluster_claims.h   who may fill a cluster the overlay lacks
//   commit_thread.h    the background commit
//   write_threshold.h  the one-shot alarm on allocation
//
// Threading: every public method may be called from several threads at
// once, except Close (and the destructor), which comes after all others.
// The locks and the order they are taken in are listed at the members.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/backing_chain.h"
#include "overlay/block_map.h"
#include "overlay/cluster_claims.h"
#include "overlay/commit_thread.h"
#include "overlay/data_file.h"
#include "overlay/file_system.h"
#include "overlay/fill_behind.h"
#include "overlay/guest_activity.h"
#include "overlay/image_identity.h"
#include "overlay/image_opener.h"
#include "overlay/overlay_files.h"
#include "overlay/overlay_header.h"
#include "overlay/read_ahead.h"
#include "overlay/write_behind.h"
#include "overlay/write_gate.h"
#include "overlay/write_hook.h"
#include "overlay/write_threshold.h"

namespace corfs::overlay {

struct CreateOptions {
  std::vector<ImageSpec> backing;  // top first; relative paths are relative to the current folder
  uint64_t size = 0;               // 0: the size of the top backing image
  uint64_t cluster_size = kDefaultClusterSize;
  bool force = false;  // replace an existing overlay (unless one has it open)
  // kFull also records each backing image's content hash (one whole read of
  // each), which opening with kFull then requires.
  VerifyBacking verify_backing = VerifyBacking::kSampled;
  ImageOpener opener = OpenImage;
  // How the bytes of an image on a server are reached when the backing
  // files of qcow2 images are followed (ExpandImageList); the opener has
  // its own way (for a mount, both from the same RemoteOptions).
  ProtocolOpener protocol = RemoteProtocolOpener({});
  // Where the overlay's own two files are made (file_system.h).
  std::shared_ptr<FileSystem> file_system = DefaultFileSystem();
};

// Where Open reports what is worth knowing but no reason to refuse (a
// backing image modified since the overlay was made): a line without a
// trailing newline.
using WarningSink = std::function<void(const std::string& warning)>;
void WarnOnStderr(const std::string& warning);  // "corfs: warning: ..."

struct OpenOptions {
  bool read_only = false;
  bool copy_on_read = true;
  // Period of the background metadata commit; zero turns it off.
  std::chrono::milliseconds commit_interval{1000};
  // The backing images the caller expects (a YAML file's chain). When set,
  // these are opened instead of the paths in the header and must have the
  // recorded identities.
  std::optional<std::vector<ImageSpec>> expected_backing;
  // How much of each backing image to verify (image_identity.h).
  VerifyBacking verify_backing = VerifyBacking::kSampled;
  WarningSink warn = WarnOnStderr;
  ImageOpener opener = OpenImage;
  // How the bytes of an image on a server are reached when the backing
  // files of qcow2 images are followed (ExpandImageList); the opener has
  // its own way (for a mount, both from the same RemoteOptions).
  ProtocolOpener protocol = RemoteProtocolOpener({});
  // Shared by the images of one mount (see guest_activity.h); null: the
  // overlay keeps its own.
  std::shared_ptr<GuestActivity> guest_activity;
  // Where the overlay's own two files live (file_system.h).
  std::shared_ptr<FileSystem> file_system = DefaultFileSystem();
  // Fill the clusters ahead of sequential cold reads in the background
  // (read_ahead.h). Off by default: over a local template it measured no
  // gain (the fill is CPU-bound on the same cores) and it makes an image
  // hold more than its guest read; it is meant for remote templates, where
  // each fill waits a round trip (the mount turns it on for chains with a
  // URI).
  bool read_ahead = false;
  // Pieces the read-ahead fills at once (ReadAhead's `fillers`): over a
  // server, requests in flight at once. The mount gives one fewer than the
  // image's connections to its server (RemoteOptions::connections).
  unsigned read_ahead_fillers = 1;
};

// Checks a cluster size given by a user: a power of two in [4 KiB, 2 MiB].
Status ValidateClusterSize(uint64_t cluster_size);

class Overlay {
 public:
  // Creates a new overlay. Every argument is checked before anything is
  // written, so a failure leaves the disk as it was.
  static Status Create(const std::string& path, const CreateOptions& options);
  static Status Open(const std::string& path, const OpenOptions& options, std::unique_ptr<Overlay>* out);

  Overlay(const Overlay&) = delete;
  Overlay& operator=(const Overlay&) = delete;
  // Commits and closes; use Close() to see whether the last commit worked.
  ~Overlay();
  Status Close();

  const std::string& path() const { return path_; }
  // The data file: NAME, or NAME.part while the overlay is unfinished.
  std::string data_path() const;
  // The virtual size; it grows (Resize) while other threads read it.
  uint64_t size() const { return size_.load(std::memory_order_acquire); }
  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits_; }
  uint64_t cluster_count() const { return bitmap_.clusters(); }
  uint64_t allocated_clusters() const { return bitmap_.CountSet(); }
  uint64_t allocated_bytes() const { return std::min(size(), allocated_clusters() * cluster_size()); }
  // Clusters the overlay does not hold yet; 0 once it could stand alone.
  // One load, so a concurrent Resize never makes a complete overlay look
  // incomplete (comparing the two counts above would).
  uint64_t lacking_clusters() const { return bitmap_.CountUnset(); }
  bool read_only() const { return read_only_; }
  OverlayHeader header() const;

  // Guest I/O (overlay_io.cc).
  Status Read(uint64_t offset, std::span<char> buf);
  // Like Read, but calls `ready` as soon as `buf` holds the data. When the
  // whole request lacks its clusters, that is before they are written into
  // the overlay: they are filled after `ready` returns (by the fill-behind
  // thread when it has room), under their claims (a guest write to them
  // waits), and their bits set only once their data is written. Over raw
  // files, clusters claimed by someone else are not waited for: the
  // chain's bytes answer, and the claimant fills them (overlay_io.cc says
  // why). An error
  // before `ready` is returned without calling it; an error after it (the
  // overlay could not keep the copy: those clusters stay the chain's) is
  // returned once it was called.
  Status ReadEarly(uint64_t offset, std::span<char> buf, const std::function<void()>& ready);
  Status Write(uint64_t offset, std::span<const char> data);
  // Makes the range read as zeros (discard and write-zeroes alike).
  Status Discard(uint64_t offset, uint64_t length);
  // Commits: data synced, then the bitmap written and synced. EIO for good
  // once a sync of the data file failed (see Durability above).
  Status Flush() { return Commit(); }
  // A guest's flush (fsync, or close): makes every guest write and discard
  // that completed before it durable. It commits only when there was one
  // since the last commit: copy-on-read alone needs no sync, since what a
  // crash loses of it is fetched again from the chain. So a guest that only
  // read (a cold `dd`, a boot's first reads, then close) does not wait for
  // the sync of everything it faulted in.
  Status FlushGuestWrites();

  // The data file's descriptor when the overlay holds every cluster of
  // [offset, offset + length), else -1. A read of such a range needs nothing
  // from the chain, so the FUSE server can hand the file range to the kernel
  // (splice) instead of copying it through a buffer. Local data only changes
  // by guest writes, which a concurrent read may see or not, as with pread.
  int LocalDataFd(uint64_t offset, uint64_t length) const;

  // Copy-on-read without a buffer, for a guest read served from a file
  // (splice): makes every cluster of [offset, offset + length) local,
  // copying what the overlay lacks from the chain as Read would (inside the
  // kernel where the layer is a raw file, so the bytes never cross this
  // process; like a stream's copy, such a copy keeps only the layer's own
  // holes sparse, not its blocks of zeros), and calls `ready(fd)` with a
  // descriptor that holds the range's bytes at their own offsets, as early
  // as it can. When the whole range lacks its clusters and one raw layer
  // holds all of it as data, that is the layer's file, before the clusters
  // are copied (under their claims, as ReadEarly's; clusters someone else
  // holds are then left to them, not waited for); else the data file,
  // after. An error before `ready` is returned without calling it; one
  // after it is returned once it was called (the guest had its bytes; those
  // clusters stay the chain's). `ready` is not called, with nothing done,
  // when the overlay does not copy on read (a thin clone, or read-only):
  // the caller uses Read.
  Status FaultIn(uint64_t offset, uint64_t length, const std::function<void(int fd)>& ready);

  // Waits until the read-ahead (read_ahead.h) of sequential cold reads has
  // nothing queued or under way.
  void WaitForReadAhead() {
    if (read_ahead_) read_ahead_->WaitIdle();
  }
  // Waits until the clusters of cold reads answered early (FaultIn) are
  // copied into the overlay (fill_behind.h).
  void WaitForFillBehind() {
    if (fill_behind_) fill_behind_->WaitIdle();
  }

  // Allocation of the disk as a whole (overlay, then chain): kData, kZero, or
  // kUnallocated where no image holds the range (it reads as zeros).
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out);

  // The allocation map of the whole disk (block_map.h, block_map.cc): the
  // bitmap as it is now, the data file's holes and a snapshot of the chain;
  // a run being filled meanwhile shows as the chain's until its bit is set.
  Status Map(std::vector<MapRun>* out) const;

  // Copy-on-read for guest reads since the overlay was opened: the runs
  // faulted in from the chain and their bytes (counted in overlay_io.cc).
  struct CopyOnReadCounts {
    uint64_t faults = 0;
    uint64_t bytes = 0;
  };
  CopyOnReadCounts copy_on_read_counts() const {
    return {cor_faults_.load(std::memory_order_relaxed), cor_bytes_.load(std::memory_order_relaxed)};
  }

  // The run at `offset` (at most `length` bytes) whose clusters the overlay
  // either all holds (*local true) or all lacks, and its length. Reads the
  // bitmap only: no lock, no chain.
  Status GetLocalRun(uint64_t offset, uint64_t length, bool* local, uint64_t* run_length) const;
  // What the top `end_layer` images of the chain say about the run at
  // `offset` (BackingChain::GetUpperLayersStatus); `end_layer` at or past the
  // chain's depth asks the whole chain.
  Status GetUpperLayersStatus(uint64_t offset, uint64_t length, size_t end_layer, UpperLayersStatus* out) const;

  // Copies the clusters of [offset, offset+length) that the overlay lacks
  // from the chain, as a read would, without returning the data. Clusters
  // claimed by someone else are skipped when `wait` is false. Used by the
  // stream job.
  Status Populate(uint64_t offset, uint64_t length, bool wait);
  // Reads what the guest would read at [offset, offset + buf.size()),
  // without copy-on-read: clusters the overlay holds from the data file, the
  // rest from the chain, which is left there. For jobs that copy the disk
  // elsewhere (a mirror, a backup), whose reading must not fill the overlay. Not a
  // guest request (jobs do not wait for it). A cluster the overlay comes to
  // hold between the test of its bit and the read of the chain is read as
  // the chain had it: the guest write that made it the overlay's is seen by
  // the job's write hook, which copies it again (jobs/mirror_driver.h).
  Status ReadWithoutFill(uint64_t offset, std::span<char> buf);
  // A WriteBehind for what Populate writes (see write_behind.h), with a
  // descriptor of its own for the data file; null if none can be opened
  // (the stream then just leaves its pages to the kernel).
  std::unique_ptr<WriteBehind> OpenWriteBehind(uint64_t batch, uint64_t window) const;

  // The index in the chain of the image at `path`.
  Status FindBackingLayer(const std::string& path, size_t* index) const;
  // True when an image of the chain has no file to copy from inside the
  // kernel (an image on a server, a qcow2 image): its bytes pass through a
  // buffer, and each read costs a round trip or an inflate.
  bool chain_reads_through_buffer() const;

  // Once every cluster is local: data and bitmap durable, then the header
  // says standalone (atomically), then the backing files are closed, then
  // NAME.part becomes NAME. Reads are served throughout; from then on they
  // never touch the chain. A failed rename is EIO with the overlay
  // standalone (the next DropBacking or writable open renames).
  Status DropBacking();

  // Fails (EIO) when a backing image no longer has the size it was opened
  // with: what was copied from it may not be the disk. DropBacking and
  // ShortenChain check it too; a job asks first, to report it as its error.
  Status CheckBackingUnchanged() const;

  // After everything above layer `new_top` was copied: the chain starts at
  // `new_top` (the base of a stream), committed the same way.
  Status ShortenChain(size_t new_top);

  // A commit job (jobs/commit_driver.h) wrote layers [first, end) of the
  // chain into layer `end` (its base), whose identity is now `base_identity`:
  // the chain loses those layers and records the new identity, in one header
  // update (so a crash leaves the old chain or the new one), committed as
  // ShortenChain is. `first` == `end` only records the identity.
  Status RemoveLayers(size_t first, size_t end, const ImageIdentity& base_identity);
  // Records `identity` for layer `layer` of the chain (another image's commit
  // changed that image; this overlay holds every cluster it changed).
  Status RecordBackingIdentity(size_t layer, const ImageIdentity& identity) {
    return RemoveLayers(layer, layer, identity);
  }
  // Forgets every cluster the overlay holds (their bits cleared, durably;
  // the data file keeps their bytes, since a read that saw a bit set may
  // still be reading them). For an active commit only, once the chain holds
  // the same bytes for every one of them and no guest write can land
  // (its write hook holds them back): each cluster then reads the same
  // whether its bit is set or not, so a crash half way is harmless.
  Status ForgetLocalClusters();
  // A snapshot of the chain, for a job that reads its layers directly (a
  // commit reads what it writes into its base from there).
  std::shared_ptr<BackingChain> backing_chain() const { return chain(); }

  // Grows the disk to `new_size` bytes (overlay_resize.cc); a smaller size
  // is refused (EINVAL), the same size does nothing. The new part reads as
  // zeros whatever the backing images hold there, and is the overlay's at
  // once (no stream needs to copy it), so a stream started before still
  // ends standalone. Durable when it returns; a crash on the way leaves the
  // overlay at the old size or the new one. A failure changes nothing that
  // readers see. Reads and writes go on meanwhile.
  Status Resize(uint64_t new_size);

  // What the header keeps for the mount beside the disk (version 3 on):
  // the file's owner and mode as set through the mount, and the wish for a
  // whole-image stream to resume at the next mount (cleared by its end or a
  // cancel). Each is durable when the call returns (a header update). An
  // owner or mode, which a user sets on purpose, moves an overlay of an
  // older version to version 3; a stream wish does not (a stream is no
  // reason to lock an older corfs out): on such an overlay SetStreamWish
  // fails with ENOTSUP and changes nothing.
  Status SetOwner(FileOwner owner);
  Status SetMode(uint32_t mode);
  Status SetStreamWish(std::optional<StreamWish> wish);

  // A one-shot alarm on allocation (write_threshold.h). The handler runs on
  // the thread whose I/O passed the threshold, which may hold cluster
  // claims: keep it short, and make it touch no image of the mount.
  using ThresholdHandler = WriteThreshold::Handler;
  void SetWriteThreshold(uint64_t bytes, ThresholdHandler on_exceeded) {
    write_threshold_.Set(bytes, std::move(on_exceeded));
  }
  uint64_t write_threshold() const { return write_threshold_.bytes(); }

  // Jobs that must see every guest write before the guest is answered
  // (write_hook.h: mirror, backup, active commit). Guest writes and
  // discards call BeforeWrite before they change anything and AfterWrite
  // once the overlay holds the change, for every hook installed when the
  // request started. While a hook is in, Resize is refused (EBUSY): the
  // jobs copy a disk of a fixed size. Remove takes the hook out for later
  // requests; one under way may still call it (it stays alive by its
  // shared_ptr).
  //
  // AddWriteHook returns once every write that started before it has
  // finished (write_gate.h), so every write that changes the disk after it
  // returns calls the hook; `at_quiet_moment`, if given, runs at that
  // moment, with no guest write under way (a backup takes its point in time
  // there). It must not wait for a guest write.
  void AddWriteHook(std::shared_ptr<GuestWriteHook> hook, const std::function<void()>& at_quiet_moment = {});
  void RemoveWriteHook(const GuestWriteHook* hook);

  // Guest requests on this image being served right now; background jobs
  // wait while there are any.
  int64_t guest_io_in_flight() const { return guest_requests_in_flight_.load(std::memory_order_relaxed); }
  // The running count of guest requests on every image of the mount (every
  // image sharing this GuestActivity, OpenOptions); jobs yield to it.
  GuestActivity& guest_activity() const { return *guest_activity_; }

 private:
  explicit Overlay(uint64_t clusters) : bitmap_(clusters), claims_(bitmap_) {}

  std::shared_ptr<BackingChain> chain() const;
  Status Commit();
  // Commit's steps, with commit_mutex_ held. `snapshot` runs after the
  // dirty pages are taken and before the data sync (what it copies of the
  // bitmap is covered by that sync); `write_more` after the dirty pages
  // are written, before the metadata sync.
  Status CommitLocked(const std::function<void()>& snapshot, const std::function<Status()>& write_more);
  // Resize's steps (overlay_resize.cc).
  Status FillPartialLastCluster(uint64_t disk_size);
  Status CommitGrowth(const OverlayHeader& next);

  uint64_t ClusterStart(uint64_t cluster) const { return cluster << cluster_bits_; }
  uint64_t ClusterEnd(uint64_t cluster) const { return std::min(size(), (cluster + 1) << cluster_bits_); }
  // Clusters from the one holding `offset` to the one holding byte `end` - 1.
  uint64_t ClustersUpTo(uint64_t offset, uint64_t end) const {
    return ((end - 1) >> cluster_bits_) - (offset >> cluster_bits_) + 1;
  }

  // Fills the clusters of [offset, offset + length) the overlay lacks, a
  // claimed run at a time (Populate and FaultIn); `wait` as Populate's;
  // `count_faults` counts each run as a copy-on-read fault.
  Status FillMissing(uint64_t offset, uint64_t length, bool wait, bool count_faults);
  // Bytes of answered cold reads that may wait for the fill-behind thread
  // (fill_behind.h): enough for it to copy back to back behind a guest
  // reading 1 MiB at a time, few enough claims to leave a guest write to
  // wait on.
  static constexpr uint64_t kFillBehindQueue = 16 << 20;
  // The fill-behind thread's nice value (fill_behind.h says why and what
  // it measured).
  static constexpr int kFillBehindNice = -10;
  // The copy of a claimed run whose guest read was answered already: by the
  // fill-behind thread when it has room, else here (nothing for an empty
  // run). A queued copy that
  // failed earlier is reported here, as a failure of this one's would be
  // (the guest has its bytes; those clusters stay the chain's).
  Status FillAfterReply(ClaimedRun& run);
  // Counts the run as one copy-on-read fault.
  void CountFault(const ClaimedRun& run);
  // Fills the claimed clusters from the chain and marks them allocated.
  // Runs no image holds, or that read as zeros, become holes without being
  // read. `out`, if not empty, has the run's length and receives its data.
  Status FillClaimed(const ClaimedRun& run, std::span<char> out);
  // Replaces the header with `next` (sequence bumped) and the chain with `chain`.
  Status UpdateHeader(OverlayHeader next, std::shared_ptr<BackingChain> chain);
  // The last step of DropBacking, under header_update_mutex_: NAME.part,
  // if that is still the data file, becomes NAME.
  Status NameCompleteDataFile();
  // A header update that leaves the chain as it is: `change` edits a copy of
  // the header, which is written only if it differs.
  Status UpdateFileAttributes(const std::function<void(OverlayHeader*)>& change);
  // Marks clusters allocated and fires the write threshold if it is passed.
  void MarkAllocated(uint64_t first, uint64_t count);
  // Copy-on-write of one cluster the overlay lacks: chain data merged with
  // `data` at `offset` (or zeros when `data` is empty and `zero_length` > 0).
  Status MergeIntoCluster(uint64_t cluster, uint64_t offset, std::span<const char> data, uint64_t zero_length,
                          bool* done);
  // A write of `data` at `offset`, or (`data` empty) a discard of `length`
  // bytes: the write hooks around the change (StoreGuestChange).
  Status WriteOrDiscard(uint64_t offset, uint64_t length, std::span<const char> data);
  // The one walk over allocated, whole and partial clusters that a write
  // and a discard both take.
  Status StoreGuestChange(uint64_t offset, uint64_t length, std::span<const char> data, uint64_t disk_size);
  using WriteHooks = std::vector<std::shared_ptr<GuestWriteHook>>;
  // The hooks installed now (null when none): one atomic load when none.
  std::shared_ptr<const WriteHooks> write_hooks() const;

  std::string path_;
  std::string meta_path_;
  // Published after the bitmap has grown and the header says so (Resize).
  std::atomic<uint64_t> size_{0};
  uint32_t cluster_bits_ = kDefaultClusterBits;
  bool read_only_ = false;
  bool copy_on_read_ = true;
  DataFile data_;
  std::unique_ptr<File> meta_;  // also holds the flock that keeps a second writer out
  std::shared_ptr<FileSystem> file_system_;

  // Lock order: a thread holding one of these may take only those listed
  // after it.
  //
  //   write_gate_           passed by each guest write and discard, hooks
  //                         included; quiesced, holding nothing else, by
  //                         AddWriteHook to wait for the writes that started
  //                         before the hook was in (write_gate.h).
  //   header_update_mutex_  one header update (DropBacking, ShortenChain,
  //                         Resize) at a time, from reading the header to
  //                         publishing the next one; it commits on the way,
  //                         hence first.
  //   commit_mutex_         one Commit at a time, so a commit's dirty pages
  //                         are written after the data sync that covers them
  //                         and before another commit's; held across the
  //                         syncs. Resize holds it from its commit to the
  //                         bitmap's growth, header update included (which
  //                         takes header_mutex_); else it takes no other
  //                         lock of the overlay.
  //   (cluster claims)      held across I/O by guest I/O, Populate and the
  //                         fill-behind thread (runs handed to it), never by
  //                         a thread in Commit or a header update; see
  //                         cluster_claims.h for why they cannot deadlock.
  //   header_mutex_         guards header_ and chain_; held only to copy or
  //                         swap them: a leaf.
  //   leaves of the parts:  write_hooks_mutex_, the write threshold's, the
  //                         commit thread's, the fill-behind queue's and the
  //                         claim shards' mutexes, and the drivers' own
  //                         locks, each held only inside its class.
  //
  // The bitmap takes no lock (atomic words; bits only go from 0 to 1, but
  // for ForgetLocalClusters, which keeps the bytes), which is why reads of
  // allocated clusters take none either.
  std::mutex header_update_mutex_;
  std::mutex commit_mutex_;
  // The failed sync of the data file after which no commit may succeed;
  // guarded by commit_mutex_.
  Status lost_writes_;
  mutable std::mutex header_mutex_;
  OverlayHeader header_;
  std::shared_ptr<BackingChain> chain_;  // readers take a snapshot (chain())
  std::string data_path_;                // changed only by a header update

  AllocationBitmap bitmap_;
  ClusterClaims claims_;

  bool closed_ = false;
  std::atomic<int64_t> guest_requests_in_flight_{0};
  // Guest writes and discards completed (counted after their change is
  // stored), and how many of them the last successful commit covered (read
  // before its sync). Equal: a guest flush has nothing to make durable.
  std::atomic<uint64_t> guest_changes_{0};
  std::atomic<uint64_t> committed_guest_changes_{0};
  std::atomic<uint64_t> cor_faults_{0};
  std::atomic<uint64_t> cor_bytes_{0};
  std::shared_ptr<GuestActivity> guest_activity_ = std::make_shared<GuestActivity>();
  WriteThreshold write_threshold_;
  // Write hooks: replaced as a whole under write_hooks_mutex_ (a leaf),
  // read as a snapshot; has_write_hooks_ spares a guest write the lock
  // when there are none.
  mutable std::mutex write_hooks_mutex_;
  std::shared_ptr<const WriteHooks> write_hooks_;
  std::atomic<bool> has_write_hooks_{false};
  // Every guest write passes it, hooks or not (AddWriteHook waits for the
  // writes inside); a leaf, never held across I/O by a quiescer.
  WriteGate write_gate_;

  std::unique_ptr<CommitThread> committer_;  // stopped before the others go
  // Copies ahead of sequential cold reads (Populate without waiting); null
  // when the overlay does not copy on read. Last member: stopped first.
  std::unique_ptr<ReadAhead> read_ahead_;
  std::unique_ptr<FillBehind> fill_behind_;  // copy-on-read overlays only
};

}  // namespace corfs::overlay
