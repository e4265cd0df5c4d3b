#pragma once
// AllocationBitmap: one bit per cluster, set once the overlay holds the
// cluster. Bits only ever go from 0 to 1 (a discard keeps the cluster
// allocated, as a hole), which is what makes lock-free readers and torn
// bitmap writes safe: any mix of old and new bits on disk is a valid state.
//
// The in-memory copy is the truth for the running process. Pages (4 KiB of
// bitmap) whose bits changed since the last commit are marked dirty; a commit
// takes them and writes them to NAME.cor after the data is durable.
//
// Threading: Test, SetRange, RunLength and CountSet may be called from
// several threads at once and take no lock (atomic words). Load and
// HasBitsPastEnd come before the bitmap is shared. TakeDirtyPages and
// MarkDirty are called by one committer at a time (the overlay's
// commit_mutex_), while other threads call SetRange.

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace corfs::overlay {

class AllocationBitmap {
 public:
  explicit AllocationBitmap(uint64_t clusters);

  uint64_t clusters() const { return clusters_; }
  uint64_t bytes() const { return word_count_ * 8; }  // whole pages

  bool Test(uint64_t cluster) const {
    return (words_[cluster >> 6].load(std::memory_order_acquire) >> (cluster & 63)) & 1;
  }
  // Sets clusters [first, first+count) and marks their pages dirty.
  void SetRange(uint64_t first, uint64_t count);
  // Length of the run from `first`, at most `max` clusters, whose bits all
  // equal `value`.
  uint64_t RunLength(uint64_t first, uint64_t max, bool value) const;
  uint64_t CountSet() const { return set_count_.load(std::memory_order_relaxed); }

  // Loads `data` (on-disk bytes) into the bitmap at byte `offset`; used at
  // open time only. Bits past the last cluster are ignored.
  void Load(uint64_t offset, std::span<const char> data);
  // True if a bit past the last cluster is set in the loaded data (a damaged file).
  bool HasBitsPastEnd() const;

  struct Page {
    uint64_t index;     // page number; byte offset in the bitmap = index * 4096
    std::string bytes;  // 4096 bytes
  };
  // Copies out every dirty page and clears its dirty mark. A bit set while
  // this runs either makes it into the copy or leaves its page dirty.
  std::vector<Page> TakeDirtyPages();
  // Puts back the dirty marks of pages a failed commit did not write.
  void MarkDirty(const std::vector<Page>& pages);
  bool HasDirtyPages() const { return any_dirty_.load(std::memory_order_acquire); }

 private:
  static constexpr uint64_t kWordsPerPage = 4096 / 8;

  uint64_t clusters_;
  uint64_t word_count_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::unique_ptr<std::atomic<bool>[]> dirty_pages_;
  std::atomic<bool> any_dirty_{false};
  std::atomic<uint64_t> set_count_{0};
};

}  // namespace corfs::overlay
