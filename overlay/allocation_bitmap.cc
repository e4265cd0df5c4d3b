#include "overlay/allocation_bitmap.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace corfs::overlay {

namespace {
uint64_t MaskOfRun(uint64_t first_bit, uint64_t bits) {
  return bits >= 64 ? ~uint64_t{0} : ((uint64_t{1} << bits) - 1) << first_bit;
}
}  // namespace

AllocationBitmap::AllocationBitmap(uint64_t clusters) : clusters_(clusters) {
  uint64_t words = (clusters + 63) / 64;
  word_count_ = std::max<uint64_t>(1, (words + kWordsPerPage - 1) / kWordsPerPage) * kWordsPerPage;
  words_ = std::make_unique<std::atomic<uint64_t>[]>(word_count_);
  dirty_pages_ = std::make_unique<std::atomic<bool>[]>(word_count_ / kWordsPerPage);
}

void AllocationBitmap::SetRange(uint64_t first, uint64_t count) {
  uint64_t end = first + count;
  bool dirtied = false;
  while (first < end) {
    uint64_t word = first >> 6;
    uint64_t bit = first & 63;
    uint64_t bits = std::min<uint64_t>(64 - bit, end - first);
    uint64_t mask = MaskOfRun(bit, bits);
    uint64_t old = words_[word].fetch_or(mask, std::memory_order_acq_rel);
    uint64_t added = std::popcount(mask & ~old);
    if (added != 0) {
      set_count_.fetch_add(added, std::memory_order_relaxed);
      // The bit is set before the page is marked dirty; TakeDirtyPages clears
      // the mark before it copies, so no new bit is ever lost between them.
      dirty_pages_[word / kWordsPerPage].store(true, std::memory_order_seq_cst);
      dirtied = true;
    }
    first += bits;
  }
  if (dirtied) any_dirty_.store(true, std::memory_order_seq_cst);
}

uint64_t AllocationBitmap::RunLength(uint64_t first, uint64_t max, bool value) const {
  uint64_t end = std::min(clusters_, first + max);
  uint64_t pos = first;
  while (pos < end) {
    uint64_t word = words_[pos >> 6].load(std::memory_order_acquire);
    if (!value) word = ~word;
    word >>= (pos & 63);  // bits from pos on; ones = clusters that match `value`
    uint64_t available = 64 - (pos & 63);
    uint64_t matching = std::countr_one(word);
    if (matching < available) return std::min(end, pos + matching) - first;
    pos += available;
  }
  return end - first;
}

void AllocationBitmap::Load(uint64_t offset, std::span<const char> data) {
  // Whole words only: offsets and lengths are page multiples.
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    uint64_t word = 0;
    for (int b = 0; b < 8; ++b) word |= uint64_t{static_cast<unsigned char>(data[i + b])} << (8 * b);
    uint64_t index = (offset + i) / 8;
    if (index >= word_count_) break;
    uint64_t first_cluster = index * 64;
    if (first_cluster + 64 > clusters_) {
      // Count only bits of real clusters; padding bits stay in the word so
      // HasBitsPastEnd can report them.
      uint64_t real = clusters_ > first_cluster ? clusters_ - first_cluster : 0;
      set_count_.fetch_add(std::popcount(word & MaskOfRun(0, real)), std::memory_order_relaxed);
    } else {
      set_count_.fetch_add(std::popcount(word), std::memory_order_relaxed);
    }
    words_[index].store(word, std::memory_order_relaxed);
  }
}

bool AllocationBitmap::HasBitsPastEnd() const {
  for (uint64_t index = clusters_ / 64; index < word_count_; ++index) {
    uint64_t first_cluster = index * 64;
    uint64_t real = clusters_ > first_cluster ? clusters_ - first_cluster : 0;
    uint64_t word = words_[index].load(std::memory_order_relaxed);
    if ((word & ~MaskOfRun(0, real)) != 0) return true;
  }
  return false;
}

std::vector<AllocationBitmap::Page> AllocationBitmap::TakeDirtyPages() {
  std::vector<Page> pages;
  if (!any_dirty_.exchange(false, std::memory_order_seq_cst)) return pages;
  const uint64_t page_count = word_count_ / kWordsPerPage;
  for (uint64_t p = 0; p < page_count; ++p) {
    if (!dirty_pages_[p].exchange(false, std::memory_order_seq_cst)) continue;
    Page page{p, std::string(4096, '\0')};
    for (uint64_t w = 0; w < kWordsPerPage; ++w) {
      uint64_t word = words_[p * kWordsPerPage + w].load(std::memory_order_seq_cst);
      for (int b = 0; b < 8; ++b) page.bytes[w * 8 + b] = static_cast<char>((word >> (8 * b)) & 0xff);
    }
    pages.push_back(std::move(page));
  }
  return pages;
}

void AllocationBitmap::MarkDirty(const std::vector<Page>& pages) {
  for (const Page& page : pages) dirty_pages_[page.index].store(true, std::memory_order_seq_cst);
  if (!pages.empty()) any_dirty_.store(true, std::memory_order_seq_cst);
}

}  // namespace corfs::overlay
