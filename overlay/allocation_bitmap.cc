#include "overlay/allocation_bitmap.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace corfs::overlay {

namespace {
uint64_t MaskOfRun(uint64_t first_bit, uint64_t bits) {
  return bits >= 64 ? ~uint64_t{0} : ((uint64_t{1} << bits) - 1) << first_bit;
}

// The bits of word `index` that belong to clusters [first, end).
uint64_t MaskOfClusters(uint64_t index, uint64_t first, uint64_t end) {
  const uint64_t word_first = index * 64;
  const uint64_t lo = std::max(first, word_first);
  const uint64_t hi = std::min(end, word_first + 64);
  return lo >= hi ? 0 : MaskOfRun(lo - word_first, hi - lo);
}
}  // namespace

AllocationBitmap::AllocationBitmap(uint64_t clusters) : clusters_(clusters), unset_count_(clusters) {
  Reserve(PagesFor(clusters));
}

void AllocationBitmap::Reserve(uint64_t pages) {
  while (reserved_pages_ < pages) {
    const size_t segment = SegmentOf(reserved_pages_);
    const uint64_t segment_pages = uint64_t{1} << segment;
    // Zeroed (value-initialized atomics), then published: a reader that
    // finds the pointer finds zeros behind it.
    owned_words_[segment] = std::make_unique<std::atomic<uint64_t>[]>(segment_pages * kWordsPerPage);
    owned_dirty_[segment] = std::make_unique<std::atomic<bool>[]>(segment_pages);
    words_[segment].store(owned_words_[segment].get(), std::memory_order_release);
    dirty_[segment].store(owned_dirty_[segment].get(), std::memory_order_release);
    reserved_pages_ += segment_pages;
  }
}

void AllocationBitmap::SetRange(uint64_t first, uint64_t count) {
  uint64_t end = first + count;
  bool dirtied = false;
  while (first < end) {
    uint64_t word = first >> 6;
    uint64_t bit = first & 63;
    uint64_t bits = std::min<uint64_t>(64 - bit, end - first);
    uint64_t mask = MaskOfRun(bit, bits);
    uint64_t old = Word(word).fetch_or(mask, std::memory_order_acq_rel);
    uint64_t added = std::popcount(mask & ~old);
    if (added != 0) {
      set_count_.fetch_add(added, std::memory_order_relaxed);
      unset_count_.fetch_sub(added, std::memory_order_acq_rel);
      // The bit is set before the page is marked dirty; TakeDirtyPages clears
      // the mark before it copies, so no new bit is ever lost between them.
      DirtyMark(word / kWordsPerPage).store(true, std::memory_order_seq_cst);
      dirtied = true;
    }
    first += bits;
  }
  if (dirtied) any_dirty_.store(true, std::memory_order_seq_cst);
}

void AllocationBitmap::ClearRange(uint64_t first, uint64_t count) {
  uint64_t end = first + count;
  bool dirtied = false;
  while (first < end) {
    uint64_t word = first >> 6;
    uint64_t bit = first & 63;
    uint64_t bits = std::min<uint64_t>(64 - bit, end - first);
    uint64_t mask = MaskOfRun(bit, bits);
    uint64_t old = Word(word).fetch_and(~mask, std::memory_order_acq_rel);
    uint64_t removed = std::popcount(mask & old);
    if (removed != 0) {
      set_count_.fetch_sub(removed, std::memory_order_relaxed);
      unset_count_.fetch_add(removed, std::memory_order_acq_rel);
      DirtyMark(word / kWordsPerPage).store(true, std::memory_order_seq_cst);
      dirtied = true;
    }
    first += bits;
  }
  if (dirtied) any_dirty_.store(true, std::memory_order_seq_cst);
}

uint64_t AllocationBitmap::RunLength(uint64_t first, uint64_t max, bool value) const {
  uint64_t end = std::min(clusters(), first + max);
  uint64_t pos = first;
  while (pos < end) {
    uint64_t word = Word(pos >> 6).load(std::memory_order_acquire);
    if (!value) word = ~word;
    word >>= (pos & 63);  // bits from pos on; ones = clusters that match `value`
    uint64_t available = 64 - (pos & 63);
    uint64_t matching = std::countr_one(word);
    if (matching < available) return std::min(end, pos + matching) - first;
    pos += available;
  }
  return end > first ? end - first : 0;
}

void AllocationBitmap::Grow(uint64_t clusters, bool set_new) {
  const uint64_t old = clusters_.load(std::memory_order_relaxed);
  if (clusters <= old) return;
  Reserve(PagesFor(clusters));
  if (set_new) {
    // Bits first, count last: a reader that sees the new count sees the
    // bits. Past the old end every bit is zero (Load drops such bits and
    // SetRange stays inside), so each new bit counts once.
    for (uint64_t index = old / 64; index * 64 < clusters; ++index) {
      const uint64_t mask = MaskOfClusters(index, old, clusters);
      Word(index).fetch_or(mask, std::memory_order_acq_rel);
      DirtyMark(index / kWordsPerPage).store(true, std::memory_order_seq_cst);
    }
    set_count_.fetch_add(clusters - old, std::memory_order_relaxed);
  } else {
    unset_count_.fetch_add(clusters - old, std::memory_order_acq_rel);
  }
  clusters_.store(clusters, std::memory_order_release);
  // After the count: a commit that sees this flag also sees the new pages.
  if (set_new) any_dirty_.store(true, std::memory_order_seq_cst);
}

void AllocationBitmap::Load(uint64_t offset, std::span<const char> data) {
  const uint64_t clusters = clusters_.load(std::memory_order_relaxed);
  const uint64_t words = (clusters + 63) / 64;
  // Whole words only: offsets and lengths are page multiples.
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t word = 0;
    for (int b = 0; b < 8; ++b) word |= uint64_t{static_cast<unsigned char>(data[i + b])} << (8 * b);
    const uint64_t index = (offset + i) / 8;
    const uint64_t real = MaskOfClusters(index, 0, clusters);
    if ((word & ~real) != 0) bits_past_end_ = true;
    if (index >= words) continue;
    word &= real;
    set_count_.fetch_add(std::popcount(word), std::memory_order_relaxed);
    Word(index).store(word, std::memory_order_relaxed);
  }
  unset_count_.store(clusters - set_count_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void AllocationBitmap::CopyPage(uint64_t index, Page* page) const {
  page->index = index;
  page->bytes.assign(kPageBytes, '\0');
  for (uint64_t w = 0; w < kWordsPerPage; ++w) {
    uint64_t word = Word(index * kWordsPerPage + w).load(std::memory_order_seq_cst);
    for (int b = 0; b < 8; ++b) page->bytes[w * 8 + b] = static_cast<char>((word >> (8 * b)) & 0xff);
  }
}

std::vector<AllocationBitmap::Page> AllocationBitmap::TakeDirtyPages() {
  std::vector<Page> pages;
  if (!any_dirty_.exchange(false, std::memory_order_seq_cst)) return pages;
  const uint64_t page_count = PagesFor(clusters());
  for (uint64_t p = 0; p < page_count; ++p) {
    if (!DirtyMark(p).exchange(false, std::memory_order_seq_cst)) continue;
    pages.emplace_back();
    CopyPage(p, &pages.back());
  }
  return pages;
}

void AllocationBitmap::MarkDirty(const std::vector<Page>& pages) {
  for (const Page& page : pages) DirtyMark(page.index).store(true, std::memory_order_seq_cst);
  if (!pages.empty()) any_dirty_.store(true, std::memory_order_seq_cst);
}

AllocationBitmap::Page AllocationBitmap::GrownPage(uint64_t index, uint64_t clusters) const {
  const uint64_t old = this->clusters();
  Page page{index, std::string(kPageBytes, '\0')};
  if (index < PagesFor(old)) CopyPage(index, &page);
  for (uint64_t w = 0; w < kWordsPerPage; ++w) {
    const uint64_t mask = MaskOfClusters(index * kWordsPerPage + w, old, clusters);
    for (int b = 0; b < 8; ++b) {
      char& byte = page.bytes[w * 8 + b];
      byte = static_cast<char>(static_cast<unsigned char>(byte) | ((mask >> (8 * b)) & 0xff));
    }
  }
  return page;
}

}  // namespace corfs::overlay
