#pragma once
// Overlay: one virtual disk of corfs, the native two-file overlay of
// design.md over a backing chain.
//
//   NAME      sparse raw data file of the virtual size; cluster i of the disk
//             lives at the same offset once allocated
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
// cluster was synced (Commit). Flush commits; a background thread commits
// about once a second; closing commits.
//
// All methods are thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/backing_chain.h"
#include "overlay/cluster_claims.h"
#include "overlay/guest_activity.h"
#include "overlay/image_opener.h"
#include "overlay/overlay_header.h"
#include "overlay/write_behind.h"

namespace corfs::overlay {

// What a stream job has to do with a run of the disk (Overlay::PlanStream).
enum class StreamWork {
  kLocal,      // the overlay holds it already
  kCopy,       // an image of the chain holds data: copy it
  kZero,       // it reads as zeros: record that, no reading needed
  kBelowBase,  // only the base or images below it hold it: leave it there
};

struct StreamRun {
  StreamWork work = StreamWork::kLocal;
  uint64_t length = 0;
};

struct CreateOptions {
  std::vector<ImageSpec> backing;  // top first; relative paths are relative to the current folder
  uint64_t size = 0;               // 0: the size of the top backing image
  uint64_t cluster_size = kDefaultClusterSize;
  bool force = false;              // replace an existing overlay
  ImageOpener opener = OpenImage;
};

struct OpenOptions {
  bool read_only = false;
  bool copy_on_read = true;
  // Period of the background metadata commit; zero turns it off.
  std::chrono::milliseconds commit_interval{1000};
  // The backing images the caller expects (a YAML file's chain). When set,
  // these are opened instead of the paths in the header and must have the
  // recorded identities.
  std::optional<std::vector<ImageSpec>> expected_backing;
  ImageOpener opener = OpenImage;
  // Shared by the images of one mount (see guest_activity.h); null: the
  // overlay keeps its own.
  std::shared_ptr<GuestActivity> guest_activity;
};

// The metadata file of the overlay whose data file is `path`.
std::string MetadataPath(const std::string& path);

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
  uint64_t size() const { return size_; }
  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits_; }
  uint64_t cluster_count() const { return bitmap_.clusters(); }
  uint64_t allocated_clusters() const { return bitmap_.CountSet(); }
  bool read_only() const { return read_only_; }
  OverlayHeader header() const;

  Status Read(uint64_t offset, std::span<char> buf);
  Status Write(uint64_t offset, std::span<const char> data);
  // Makes the range read as zeros (discard and write-zeroes alike).
  Status Discard(uint64_t offset, uint64_t length);
  // Commits: data synced, then the bitmap written and synced.
  Status Flush() { return Commit(); }

  // Allocation of the disk as a whole (overlay, then chain): kData, kZero, or
  // kUnallocated where no image holds the range (it reads as zeros).
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out);

  // Copies the clusters of [offset, offset+length) that the overlay lacks
  // from the chain, as a read would, without returning the data. Clusters
  // claimed by someone else are skipped when `wait` is false. Used by the
  // stream job.
  Status Populate(uint64_t offset, uint64_t length, bool wait);
  // A WriteBehind for what Populate writes (see write_behind.h), with a
  // descriptor of its own for the data file; null if none can be opened
  // (the stream then just leaves its pages to the kernel).
  std::unique_ptr<WriteBehind> OpenWriteBehind(uint64_t batch, uint64_t window) const;

  // What a stream down to layer `end_layer` of the chain (the base; the
  // chain's depth for a whole-image stream) has to do with the run at
  // `offset`, and how long that run is.
  Status PlanStream(uint64_t offset, uint64_t length, size_t end_layer, StreamRun* out);

  // The index in the chain of the image at `path`.
  Status FindBackingLayer(const std::string& path, size_t* index) const;

  // Once every cluster is local: data and bitmap durable, then the header
  // says standalone (atomically), then the backing files are closed. Reads
  // are served throughout; from then on they never touch the chain.
  Status DropBacking();

  // After everything above layer `new_top` was copied: the chain starts at
  // `new_top` (the base of a stream), committed the same way.
  Status ShortenChain(size_t new_top);

  // A one-shot alarm, like QEMU's write threshold: once the overlay holds
  // more than `bytes` (by writes, copy-on-read or streaming), `on_exceeded`
  // is called once with the threshold and the amount over it, and the
  // threshold goes back to 0 (off). It runs on the I/O thread: keep it short.
  using ThresholdHandler = std::function<void(uint64_t threshold, uint64_t exceeded)>;
  void SetWriteThreshold(uint64_t bytes, ThresholdHandler on_exceeded);
  uint64_t write_threshold() const { return write_threshold_.load(std::memory_order_relaxed); }
  uint64_t allocated_bytes() const { return std::min(size_, allocated_clusters() * cluster_size()); }

  // The data file's descriptor when the overlay holds every cluster of
  // [offset, offset + length), else -1. A read of such a range needs nothing
  // from the chain, so the FUSE server can hand the file range to the kernel
  // (splice) instead of copying it through a buffer. Local data only changes
  // by guest writes, which a concurrent read may see or not, as with pread.
  int LocalDataFd(uint64_t offset, uint64_t length) const;

  // Guest requests being served right now; background jobs yield to them.
  int64_t guest_io_in_flight() const { return guest_io_.load(std::memory_order_relaxed); }
  // Guest requests served so far, on this image and every image sharing its
  // GuestActivity (OpenOptions).
  GuestActivity& guest_activity() const { return *guest_activity_; }

 private:
  explicit Overlay(uint64_t clusters) : bitmap_(clusters), claims_(bitmap_) {}

  std::shared_ptr<BackingChain> chain() const;
  Status Commit();

  uint64_t ClusterStart(uint64_t cluster) const { return cluster << cluster_bits_; }
  uint64_t ClusterEnd(uint64_t cluster) const { return std::min(size_, (cluster + 1) << cluster_bits_); }

  // Fills the claimed clusters from the chain and marks them allocated.
  // Runs no image holds, or that read as zeros, become holes without being
  // read. `out`, if not empty, has the run's length and receives its data.
  Status FillClaimed(const ClaimedRun& run, std::span<char> out);
  // Copies `length` bytes at `offset` from the raw file `source` into the
  // data file without a buffer; returns how many it copied (0: cannot).
  uint64_t CopyInKernel(int source, uint64_t offset, uint64_t length);
  // Writes `bytes` at `offset` of the data file; 4 KiB blocks of zeros
  // become holes instead.
  Status StoreBytes(uint64_t offset, std::span<const char> bytes);
  // Replaces the header with `next` (sequence bumped) and the chain with `chain`.
  Status UpdateHeader(OverlayHeader next, std::shared_ptr<BackingChain> chain);
  // Marks clusters allocated and fires the write threshold if it is passed.
  void MarkAllocated(uint64_t first, uint64_t count);
  // Copy-on-write of one cluster the overlay lacks: chain data merged with
  // `data` at `offset` (or zeros when `data` is empty and `zero_length` > 0).
  Status MergeIntoCluster(uint64_t cluster, uint64_t offset, std::span<const char> data, uint64_t zero_length,
                          bool* done);
  Status PunchData(uint64_t offset, uint64_t length);
  // A write of `data` at `offset`, or (`data` empty) a discard of `length`
  // bytes: the one walk over allocated, whole and partial clusters that both
  // take.
  Status Change(uint64_t offset, uint64_t length, std::span<const char> data);

  std::string path_;
  std::string meta_path_;
  uint64_t size_ = 0;
  uint32_t cluster_bits_ = kDefaultClusterBits;
  bool read_only_ = false;
  bool copy_on_read_ = true;
  UniqueFd data_fd_;
  UniqueFd meta_fd_;  // also holds the flock that keeps a second writer out

  mutable std::mutex header_mutex_;
  OverlayHeader header_;
  std::shared_ptr<BackingChain> chain_;

  AllocationBitmap bitmap_;
  ClusterClaims claims_;

  std::mutex commit_mutex_;
  std::mutex header_update_mutex_;
  bool closed_ = false;
  std::atomic<int64_t> guest_io_{0};
  std::shared_ptr<GuestActivity> guest_activity_ = std::make_shared<GuestActivity>();
  std::atomic<uint64_t> write_threshold_{0};
  std::mutex threshold_mutex_;
  ThresholdHandler threshold_handler_;

  std::mutex committer_mutex_;
  std::condition_variable_any committer_wakeup_;
  std::jthread committer_;  // last member: stopped before the others go
};

}  // namespace corfs::overlay
