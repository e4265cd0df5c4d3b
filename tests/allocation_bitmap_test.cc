// AllocationBitmap: bit ranges across word and page boundaries, run lengths,
// loading, and the dirty-page protocol a commit relies on.

#include "overlay/allocation_bitmap.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace corfs::overlay {
namespace {

constexpr uint64_t kBitsPerPage = 4096 * 8;

// The bit of `cluster` in a page copy taken by TakeDirtyPages (LSB first).
bool PageBit(const AllocationBitmap::Page& page, uint64_t cluster) {
  uint64_t in_page = cluster - page.index * kBitsPerPage;
  return (static_cast<unsigned char>(page.bytes[in_page / 8]) >> (in_page % 8)) & 1;
}

TEST(AllocationBitmap, SetRangeAcrossWordBoundaries) {
  AllocationBitmap bitmap(200);
  EXPECT_EQ(bitmap.clusters(), 200u);
  EXPECT_EQ(bitmap.bytes(), 4096u);  // whole pages
  EXPECT_EQ(bitmap.CountSet(), 0u);

  bitmap.SetRange(60, 10);  // bits 60..69: word 0 and word 1
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(bitmap.Test(i), i >= 60 && i < 70) << i;
  EXPECT_EQ(bitmap.CountSet(), 10u);

  bitmap.SetRange(65, 100);  // overlaps: only the new bits count; spans words 1 and 2
  EXPECT_EQ(bitmap.CountSet(), 105u);
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(bitmap.Test(i), i >= 60 && i < 165) << i;

  bitmap.SetRange(63, 1);  // already set
  EXPECT_EQ(bitmap.CountSet(), 105u);

  bitmap.SetRange(0, 200);
  EXPECT_EQ(bitmap.CountSet(), 200u);
}

TEST(AllocationBitmap, SetRangeOfWholeWords) {
  AllocationBitmap bitmap(256);
  bitmap.SetRange(64, 128);  // exactly words 1 and 2
  EXPECT_FALSE(bitmap.Test(63));
  EXPECT_TRUE(bitmap.Test(64));
  EXPECT_TRUE(bitmap.Test(191));
  EXPECT_FALSE(bitmap.Test(192));
  EXPECT_EQ(bitmap.CountSet(), 128u);
}

TEST(AllocationBitmap, RunLength) {
  AllocationBitmap bitmap(300);
  bitmap.SetRange(60, 10);
  bitmap.SetRange(100, 130);  // 100..229, across words 1, 2 and 3

  EXPECT_EQ(bitmap.RunLength(0, 1000, false), 60u);
  EXPECT_EQ(bitmap.RunLength(0, 20, false), 20u);  // capped by max
  EXPECT_EQ(bitmap.RunLength(0, 1000, true), 0u);
  EXPECT_EQ(bitmap.RunLength(60, 1000, true), 10u);
  EXPECT_EQ(bitmap.RunLength(63, 1000, true), 7u);  // from inside a word, across into the next
  EXPECT_EQ(bitmap.RunLength(70, 1000, false), 30u);
  EXPECT_EQ(bitmap.RunLength(100, 1000, true), 130u);
  EXPECT_EQ(bitmap.RunLength(127, 1000, true), 103u);
  EXPECT_EQ(bitmap.RunLength(100, 64, true), 64u);
  EXPECT_EQ(bitmap.RunLength(230, 1000, false), 70u);  // capped by the cluster count
  EXPECT_EQ(bitmap.RunLength(299, 1000, false), 1u);
  EXPECT_EQ(bitmap.RunLength(229, 1, true), 1u);
}

TEST(AllocationBitmap, RunLengthAcrossPages) {
  AllocationBitmap bitmap(kBitsPerPage * 2 + 100);
  EXPECT_EQ(bitmap.bytes(), 3u * 4096);
  bitmap.SetRange(kBitsPerPage - 10, kBitsPerPage + 50);
  EXPECT_EQ(bitmap.RunLength(0, ~uint64_t{0} >> 1, false), kBitsPerPage - 10);
  EXPECT_EQ(bitmap.RunLength(kBitsPerPage - 10, ~uint64_t{0} >> 1, true), kBitsPerPage + 50);
  EXPECT_EQ(bitmap.RunLength(2 * kBitsPerPage + 40, ~uint64_t{0} >> 1, false), 60u);
}

TEST(AllocationBitmap, TakeDirtyPagesCopiesChangedPagesOnce) {
  AllocationBitmap bitmap(kBitsPerPage * 3);
  EXPECT_FALSE(bitmap.HasDirtyPages());
  EXPECT_TRUE(bitmap.TakeDirtyPages().empty());

  // A range across the boundary of pages 0 and 1; page 2 stays clean.
  bitmap.SetRange(kBitsPerPage - 3, 6);
  EXPECT_TRUE(bitmap.HasDirtyPages());
  std::vector<AllocationBitmap::Page> pages = bitmap.TakeDirtyPages();
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].index, 0u);
  EXPECT_EQ(pages[1].index, 1u);
  for (const AllocationBitmap::Page& page : pages) {
    ASSERT_EQ(page.bytes.size(), 4096u);
    for (uint64_t c = page.index * kBitsPerPage; c < (page.index + 1) * kBitsPerPage; ++c) {
      ASSERT_EQ(PageBit(page, c), c >= kBitsPerPage - 3 && c < kBitsPerPage + 3) << c;
    }
  }
  // The last byte of page 0 holds bits 32765..32767 in its top three bits.
  EXPECT_EQ(static_cast<unsigned char>(pages[0].bytes[4095]), 0xe0);
  EXPECT_EQ(static_cast<unsigned char>(pages[1].bytes[0]), 0x07);

  EXPECT_FALSE(bitmap.HasDirtyPages());
  EXPECT_TRUE(bitmap.TakeDirtyPages().empty());

  // Setting bits that are already set dirties nothing.
  bitmap.SetRange(kBitsPerPage - 3, 6);
  EXPECT_FALSE(bitmap.HasDirtyPages());

  // A failed commit puts the marks back: the same pages come out again.
  bitmap.MarkDirty(pages);
  EXPECT_TRUE(bitmap.HasDirtyPages());
  std::vector<AllocationBitmap::Page> again = bitmap.TakeDirtyPages();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].bytes, pages[0].bytes);
  EXPECT_EQ(again[1].bytes, pages[1].bytes);

  bitmap.MarkDirty({});
  EXPECT_FALSE(bitmap.HasDirtyPages());

  bitmap.SetRange(2 * kBitsPerPage + 5, 1);
  pages = bitmap.TakeDirtyPages();
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].index, 2u);
  EXPECT_TRUE(PageBit(pages[0], 2 * kBitsPerPage + 5));
}

TEST(AllocationBitmap, LoadCountsRealClustersAndFindsPaddingBits) {
  // 100 clusters: bits 100.. of the page are padding.
  std::string page(4096, '\0');
  page[0] = static_cast<char>(0x81);   // clusters 0 and 7
  page[12] = static_cast<char>(0x08);  // cluster 99
  {
    AllocationBitmap bitmap(100);
    bitmap.Load(0, page);
    EXPECT_EQ(bitmap.CountSet(), 3u);
    EXPECT_TRUE(bitmap.Test(0));
    EXPECT_TRUE(bitmap.Test(7));
    EXPECT_TRUE(bitmap.Test(99));
    EXPECT_FALSE(bitmap.Test(98));
    EXPECT_FALSE(bitmap.HasBitsPastEnd());
    EXPECT_FALSE(bitmap.HasDirtyPages());  // loading is not a change
  }
  page[12] = static_cast<char>(0x18);  // cluster 99 and padding bit 100
  page[200] = 1;                       // far in the padding
  {
    AllocationBitmap bitmap(100);
    bitmap.Load(0, page);
    EXPECT_EQ(bitmap.CountSet(), 3u);  // padding is not counted
    EXPECT_TRUE(bitmap.HasBitsPastEnd());
  }
}

TEST(AllocationBitmap, LoadAtAnOffset) {
  AllocationBitmap bitmap(kBitsPerPage * 2);
  std::string page(4096, '\0');
  page[1] = 0x01;  // cluster 8 of page 1
  bitmap.Load(4096, page);
  EXPECT_TRUE(bitmap.Test(kBitsPerPage + 8));
  EXPECT_EQ(bitmap.CountSet(), 1u);
  EXPECT_EQ(bitmap.RunLength(0, kBitsPerPage * 2, false), kBitsPerPage + 8);
}

// A bit set while a commit takes the dirty pages either is in the copy or
// leaves its page dirty for the next take: applying every copy in order
// ends with exactly the in-memory bitmap.
TEST(AllocationBitmap, ConcurrentSettersNeverLoseABitToTakeDirtyPages) {
  const uint64_t clusters = kBitsPerPage * 4;
  AllocationBitmap bitmap(clusters);
  std::vector<std::string> disk(4, std::string(4096, '\0'));
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load()) {
      for (auto& page : bitmap.TakeDirtyPages()) disk[page.index] = page.bytes;
    }
  });
  std::vector<std::thread> setters;
  for (uint64_t t = 0; t < 3; ++t) {
    setters.emplace_back([&, t] {
      // Interleaved bits: setters share words and pages.
      for (uint64_t c = t; c < clusters; c += 3 * 7) bitmap.SetRange(c, std::min<uint64_t>(1 + c % 5, clusters - c));
    });
  }
  for (auto& thread : setters) thread.join();
  done = true;
  committer.join();
  for (auto& page : bitmap.TakeDirtyPages()) disk[page.index] = page.bytes;

  uint64_t on_disk = 0;
  for (uint64_t c = 0; c < clusters; ++c) {
    bool bit = (static_cast<unsigned char>(disk[c / kBitsPerPage][(c % kBitsPerPage) / 8]) >> (c % 8)) & 1;
    ASSERT_EQ(bit, bitmap.Test(c)) << "cluster " << c;
    on_disk += bit;
  }
  EXPECT_EQ(on_disk, bitmap.CountSet());
}

// Growing: the new clusters are set at once (what an overlay's grow wants)
// or left unset; either way across word, page and segment boundaries.
TEST(AllocationBitmap, GrowSetsTheNewClustersAcrossSegments) {
  AllocationBitmap bitmap(100);
  bitmap.SetRange(10, 5);
  (void)bitmap.TakeDirtyPages();
  const uint64_t grown = kBitsPerPage * 9 + 77;  // pages 0..9: segments 0..3
  bitmap.Grow(grown, /*set_new=*/true);
  EXPECT_EQ(bitmap.clusters(), grown);
  EXPECT_EQ(bitmap.bytes(), 10 * 4096u);
  EXPECT_EQ(bitmap.CountSet(), 5 + grown - 100);
  EXPECT_EQ(bitmap.CountUnset(), 95u);
  for (uint64_t c : {0ul, 9ul, 15ul, 99ul}) EXPECT_FALSE(bitmap.Test(c)) << c;
  for (uint64_t c : {10ul, 14ul, 100ul, 127ul, 128ul, kBitsPerPage, 3 * kBitsPerPage - 1, grown - 1}) {
    EXPECT_TRUE(bitmap.Test(c)) << c;
  }
  EXPECT_EQ(bitmap.RunLength(100, grown, true), grown - 100);
  EXPECT_EQ(bitmap.RunLength(15, grown, false), 85u);
  // Every page holding a new cluster goes to disk with the next commit.
  std::vector<AllocationBitmap::Page> pages = bitmap.TakeDirtyPages();
  ASSERT_EQ(pages.size(), 10u);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(pages[i].index, i);
  EXPECT_TRUE(PageBit(pages[0], 100));
  EXPECT_TRUE(PageBit(pages[0], 12));
  EXPECT_FALSE(PageBit(pages[0], 99));
  EXPECT_TRUE(PageBit(pages[9], grown - 1));
  EXPECT_FALSE(PageBit(pages[9], grown));  // padding stays clear

  // Setting the rest of the old clusters then makes every cluster set.
  bitmap.SetRange(0, 100);
  EXPECT_EQ(bitmap.CountUnset(), 0u);
  EXPECT_EQ(bitmap.CountSet(), grown);
}

TEST(AllocationBitmap, GrowWithoutSettingAddsUnsetClusters) {
  AllocationBitmap bitmap(64);
  bitmap.SetRange(0, 64);
  bitmap.Grow(kBitsPerPage * 3, /*set_new=*/false);
  EXPECT_EQ(bitmap.CountSet(), 64u);
  EXPECT_EQ(bitmap.CountUnset(), kBitsPerPage * 3 - 64);
  EXPECT_FALSE(bitmap.Test(64));
  bitmap.SetRange(kBitsPerPage * 3 - 1, 1);
  EXPECT_TRUE(bitmap.Test(kBitsPerPage * 3 - 1));
  bitmap.Grow(100, /*set_new=*/true);  // not larger: nothing
  EXPECT_EQ(bitmap.clusters(), kBitsPerPage * 3);
}

// GrownPage: the page as it will be once grown, for the grow to write
// before its header update: today's bits, and the new clusters set.
TEST(AllocationBitmap, GrownPageHoldsOldBitsAndTheNewClusters) {
  AllocationBitmap bitmap(kBitsPerPage + 10);
  bitmap.SetRange(kBitsPerPage + 3, 1);
  AllocationBitmap::Page boundary = bitmap.GrownPage(1, kBitsPerPage * 2 + 5);
  EXPECT_EQ(boundary.index, 1u);
  EXPECT_TRUE(PageBit(boundary, kBitsPerPage + 3));
  EXPECT_FALSE(PageBit(boundary, kBitsPerPage + 9));
  EXPECT_TRUE(PageBit(boundary, kBitsPerPage + 10));
  EXPECT_TRUE(PageBit(boundary, kBitsPerPage * 2 - 1));
  AllocationBitmap::Page next = bitmap.GrownPage(2, kBitsPerPage * 2 + 5);
  EXPECT_TRUE(PageBit(next, kBitsPerPage * 2 + 4));
  EXPECT_FALSE(PageBit(next, kBitsPerPage * 2 + 5));
  EXPECT_FALSE(bitmap.Test(kBitsPerPage + 10));  // the bitmap itself is unchanged
}

// Loading drops bits past the last cluster (a grow interrupted before its
// header update leaves them), so a later grow counts each new bit once.
TEST(AllocationBitmap, LoadedBitsPastTheEndAreDropped) {
  std::string page(4096, '\0');
  page[12] = static_cast<char>(0x18);  // cluster 99 and padding bit 100
  AllocationBitmap bitmap(100);
  bitmap.Load(0, page);
  EXPECT_TRUE(bitmap.HasBitsPastEnd());
  EXPECT_EQ(bitmap.CountUnset(), 99u);
  bitmap.Grow(200, /*set_new=*/true);
  EXPECT_EQ(bitmap.CountSet(), 101u);
  EXPECT_EQ(bitmap.CountUnset(), 99u);
}

// Readers that hold no lock, setters and a committer while the bitmap grows
// again and again: no reader ever sees a cluster below the count it read
// go missing, the new clusters are set before the count says they exist,
// and the counts add up. (Under ASan a moved word would be a
// use-after-free; there is none to move.)
TEST(AllocationBitmap, GrowsUnderConcurrentReadersSettersAndACommitter) {
  AllocationBitmap bitmap(1000);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      while (!done.load()) {
        const uint64_t clusters = bitmap.clusters();
        // Past the first 1000 clusters everything was set by a grow.
        const uint64_t c = 1000 + rng() % (clusters - 1000 + 1);
        if (c < clusters && !bitmap.Test(c)) errors.fetch_add(1);
        // At most up to the count read above: the bitmap may have grown
        // since, and the run goes on into the clusters it grew by.
        if (c < clusters && bitmap.RunLength(c, clusters - c, true) != clusters - c) errors.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    std::mt19937_64 rng(9);
    while (!done.load()) bitmap.SetRange(rng() % 1000, 1);
  });
  threads.emplace_back([&] {
    while (!done.load()) (void)bitmap.TakeDirtyPages();
  });
  uint64_t clusters = 1000;
  for (int step = 0; step < 200; ++step) {
    clusters += 1 + (step * 7919) % (kBitsPerPage / 2);
    bitmap.Grow(clusters, /*set_new=*/true);
  }
  done = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(errors.load(), 0u);
  uint64_t set = 0;
  for (uint64_t c = 0; c < clusters; ++c) set += bitmap.Test(c);
  EXPECT_EQ(set, bitmap.CountSet());
  EXPECT_EQ(bitmap.CountSet() + bitmap.CountUnset(), clusters);
}

}  // namespace
}  // namespace corfs::overlay
