#pragma once
// ClusterClaims: the FILLING state of the concurrency rules.
//
// Before a thread copies backing data into a cluster (copy-on-read, partial
// copy-on-write, streaming) or writes a cluster the overlay does not hold
// yet, it claims the cluster. While a cluster is claimed, other claimants
// wait; when the claim ends they look at the bitmap again and, finding the
// cluster allocated, use the overlay's copy instead of copying twice. So a
// backing copy can never land on top of newer guest data. (A cold read
// over raw files, Overlay::ReadEarly and FaultIn, claims without waiting
// and answers from the chain what it could not claim.)
//
// Claims are few at any time (in-flight requests), so they live in a small
// hash set per shard rather than in a per-cluster array.
//
// Threading: every method of ClusterClaims may be called from several
// threads at once; a shard's mutex is held only to look at its set (a leaf
// of the overlay's lock order). A ClaimedRun belongs to the thread that made
// it, or to the FillBehind queue it handed the run to (fill_behind.h), whose
// thread copies it and releases it without waiting for anything else. A
// claim is held like a lock, across I/O, so claims cannot deadlock only
// because every thread takes the claims of a run in ascending cluster order
// and holds one run at a time (it releases a run, or hands it over, before
// it claims the next), and because no thread that holds a claim waits for
// anything that waits for a claim: while holding one a thread may take the
// overlay's header_mutex_ (its chain snapshot), the write threshold's
// mutex and the drivers' own locks, all of which are leaves.

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <unordered_set>
#include <utility>

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

// Claims on a run of clusters, taken at construction and released on scope
// exit: the one way the overlay claims clusters.
class ClaimedRun {
 public:
  // Claims up to `max` clusters from `first`, in order, stopping at the
  // first one it cannot claim: allocated (before or after waiting for its
  // claimant), or, when `wait` is false, claimed by someone else. count()
  // says how many it holds; 0 when it could not claim `first`.
  ClaimedRun(ClusterClaims& claims, uint64_t first, uint64_t max, bool wait) : claims_(claims), first_(first) {
    while (count_ < max && (wait ? claims_.Acquire(first_ + count_) : claims_.TryAcquire(first_ + count_))) {
      ++count_;
    }
  }
  ClaimedRun(const ClaimedRun&) = delete;
  ClaimedRun& operator=(const ClaimedRun&) = delete;
  // Hands the claims to another owner (FillBehind's queue), which releases
  // them; `other` then holds none.
  ClaimedRun(ClaimedRun&& other) noexcept
      : claims_(other.claims_), first_(other.first_), count_(std::exchange(other.count_, 0)) {}
  ClaimedRun& operator=(ClaimedRun&&) = delete;
  ~ClaimedRun() {
    for (uint64_t i = 0; i < count_; ++i) claims_.Release(first_ + i);
  }
  uint64_t first() const { return first_; }
  uint64_t count() const { return count_; }

 private:
  ClusterClaims& claims_;
  uint64_t first_;
  uint64_t count_ = 0;
};

}  // namespace corfs::overlay
