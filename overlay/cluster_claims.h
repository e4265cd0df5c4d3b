#pragma once
// ClusterClaims: the FILLING state of the concurrency rules.
//
// Before a thread copies backing data into a cluster (copy-on-read, partial
// copy-on-write, streaming) or writes a cluster the overlay does not hold
// yet, it claims the cluster. While a cluster is claimed, other claimants
// wait; when the claim ends they look at the bitmap again and, finding the
// cluster allocated, use the overlay's copy instead of copying twice. So a
// backing copy can never land on top of newer guest data.
//
// Claims are few at any time (in-flight requests), so they live in a small
// hash set per shard rather than in a per-cluster array.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include "overlay/allocation_bitmap.h"

namespace corfs::overlay {

class ClusterClaims {
 public:
  explicit ClusterClaims(const AllocationBitmap& bitmap) : bitmap_(bitmap) {}

  // Claims `cluster`, waiting while someone else holds it. Returns false,
  // without a claim, if the cluster is allocated (before or after waiting).
  bool Acquire(uint64_t cluster);
  // Like Acquire, but returns false at once if the cluster is claimed.
  bool TryAcquire(uint64_t cluster);
  void Release(uint64_t cluster);

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    std::mutex mutex;
    std::condition_variable released;
    std::unordered_set<uint64_t> claimed;
  };
  Shard& ShardOf(uint64_t cluster) { return shards_[cluster % kShards]; }

  const AllocationBitmap& bitmap_;
  Shard shards_[kShards];
};

// Holds claims on a contiguous run of clusters and releases them on scope exit.
class ClaimedRun {
 public:
  ClaimedRun(ClusterClaims& claims, uint64_t first) : claims_(claims), first_(first) {}
  ClaimedRun(const ClaimedRun&) = delete;
  ClaimedRun& operator=(const ClaimedRun&) = delete;
  ~ClaimedRun() {
    for (uint64_t i = 0; i < count_; ++i) claims_.Release(first_ + i);
  }
  // Claims the next cluster of the run; false if it is allocated.
  bool Extend(bool wait) {
    bool claimed = wait ? claims_.Acquire(first_ + count_) : claims_.TryAcquire(first_ + count_);
    if (claimed) ++count_;
    return claimed;
  }
  uint64_t first() const { return first_; }
  uint64_t count() const { return count_; }

 private:
  ClusterClaims& claims_;
  uint64_t first_;
  uint64_t count_ = 0;
};

}  // namespace corfs::overlay
