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
// Growing (a disk made larger) must not move a word under a reader that
// holds no lock, so the words live in segments that never move once made:
// segment k holds 2^k pages (pages 2^k - 1 .. 2^(k+1) - 2), and a word's
// segment is found by bit arithmetic on its page number. Growing makes the
// missing segments and publishes them, then the new cluster count. A bitmap
// therefore holds at most twice the pages it needs (a 1 TiB disk of 64 KiB
// clusters needs 2 MiB, and may hold 4 MiB); in exchange a reader pays one
// bit_width and one load of a segment pointer per word, next to the
// atomic load it always paid.
//
// Threading: Test, SetRange, RunLength, CountSet, CountUnset, clusters and
// GrownPage may be called from several threads at once and take no lock
// (atomic words). Grow is called by one thread at a time (the overlay's
// header_update_mutex_), while the others run; a thread sees the new
// clusters once it has seen the new count (clusters(), or the overlay's
// size published after Grow returns). Load and HasBitsPastEnd come before
// the bitmap is shared. TakeDirtyPages and MarkDirty are called by one
// committer at a time (the overlay's commit_mutex_), while other threads
// call SetRange and Grow.

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace corfs::overlay {

class AllocationBitmap {
 public:
  static constexpr uint64_t kPageBytes = 4096;
  static constexpr uint64_t kClustersPerPage = kPageBytes * 8;

  explicit AllocationBitmap(uint64_t clusters);

  uint64_t clusters() const { return clusters_.load(std::memory_order_acquire); }
  uint64_t bytes() const { return PagesFor(clusters()) * kPageBytes; }  // whole pages

  bool Test(uint64_t cluster) const {
    return (Word(cluster >> 6).load(std::memory_order_acquire) >> (cluster & 63)) & 1;
  }
  // Sets clusters [first, first+count) and marks their pages dirty. The
  // range lies inside clusters().
  void SetRange(uint64_t first, uint64_t count);
  // Clears clusters [first, first+count) and marks their pages dirty. The
  // one way a bit goes from 1 to 0, for an active commit only: the caller
  // vouches that each cluster reads the same with its bit set or cleared
  // (docs/design.md, "The commit driver"), so readers that saw it set, and
  // any mix of old and new pages on disk, stay right.
  void ClearRange(uint64_t first, uint64_t count);
  // Length of the run from `first`, at most `max` clusters, whose bits all
  // equal `value`.
  uint64_t RunLength(uint64_t first, uint64_t max, bool value) const;
  uint64_t CountSet() const { return set_count_.load(std::memory_order_relaxed); }
  // Clusters not set. One load: a grow whose new clusters are set at once
  // leaves it as it was, so "every cluster is set" never flickers.
  uint64_t CountUnset() const { return unset_count_.load(std::memory_order_acquire); }

  // Makes the bitmap `clusters` long (more than now); the new clusters are
  // set (and their pages dirty) when `set_new`, so no reader ever sees them
  // unset.
  void Grow(uint64_t clusters, bool set_new);

  // Loads `data` (on-disk bytes) into the bitmap at byte `offset`; used at
  // open time only. Bits past the last cluster are dropped (HasBitsPastEnd).
  void Load(uint64_t offset, std::span<const char> data);
  // True if the loaded data had a bit set past the last cluster: what a
  // grow interrupted before its header update leaves, or damage.
  bool HasBitsPastEnd() const { return bits_past_end_; }

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

  // Page `index` as it would be after Grow(clusters, /*set_new=*/true):
  // the bits of today's clusters as they are now, and those of the clusters
  // up to `clusters` set. What a grow writes to disk before it happens.
  Page GrownPage(uint64_t index, uint64_t clusters) const;
  static uint64_t PagesFor(uint64_t clusters) {
    return std::max<uint64_t>(1, (clusters + kClustersPerPage - 1) / kClustersPerPage);
  }

 private:
  static constexpr uint64_t kWordsPerPage = kPageBytes / 8;
  static constexpr int kPageWordBits = 9;  // log2(kWordsPerPage)
  // Enough segments for every page number a 64-bit cluster index can reach.
  static constexpr size_t kMaxSegments = 64 - 15 + 1;

  // Segment k holds pages [2^k - 1, 2^(k+1) - 1): page p is in segment
  // bit_width(p + 1) - 1, at (p + 1) - 2^k.
  static size_t SegmentOf(uint64_t page) { return static_cast<size_t>(std::bit_width(page + 1) - 1); }
  static uint64_t PageInSegment(uint64_t page, size_t segment) { return page + 1 - (uint64_t{1} << segment); }

  std::atomic<uint64_t>& Word(uint64_t word) const {
    const uint64_t page = word >> kPageWordBits;
    const size_t segment = SegmentOf(page);
    return words_[segment].load(
        std::memory_order_acquire)[(PageInSegment(page, segment) << kPageWordBits) | (word & (kWordsPerPage - 1))];
  }
  std::atomic<bool>& DirtyMark(uint64_t page) const {
    const size_t segment = SegmentOf(page);
    return dirty_[segment].load(std::memory_order_acquire)[PageInSegment(page, segment)];
  }
  // Makes the segments that hold pages [0, pages); by the one thread that grows.
  void Reserve(uint64_t pages);
  void CopyPage(uint64_t index, Page* page) const;

  std::atomic<uint64_t> clusters_;
  uint64_t reserved_pages_ = 0;  // pages the made segments hold; Reserve only
  // Published segments (readers), and their owners (freed with the bitmap).
  mutable std::array<std::atomic<std::atomic<uint64_t>*>, kMaxSegments> words_{};
  mutable std::array<std::atomic<std::atomic<bool>*>, kMaxSegments> dirty_{};
  std::array<std::unique_ptr<std::atomic<uint64_t>[]>, kMaxSegments> owned_words_;
  std::array<std::unique_ptr<std::atomic<bool>[]>, kMaxSegments> owned_dirty_;
  std::atomic<bool> any_dirty_{false};
  std::atomic<uint64_t> set_count_{0};
  std::atomic<uint64_t> unset_count_{0};
  bool bits_past_end_ = false;
};

}  // namespace corfs::overlay
