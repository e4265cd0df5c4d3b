#include "overlay/dirty_bitmap.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace corfs::overlay {

DirtyBitmap::DirtyBitmap(uint64_t disk_size, uint64_t granularity)
    : disk_size_(disk_size),
      granularity_bits_(static_cast<uint32_t>(std::countr_zero(granularity))),
      bits_((disk_size + granularity - 1) >> granularity_bits_),
      words_count_((bits_ + 63) / 64),
      words_(std::make_unique<std::atomic<uint64_t>[]>(words_count_)) {
  for (uint64_t i = 0; i < words_count_; ++i) words_[i].store(0, std::memory_order_relaxed);
}

uint64_t DirtyBitmap::ChunkEnd(uint64_t chunk) const { return std::min(disk_size_, (chunk + 1) << granularity_bits_); }

void DirtyBitmap::Set(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= disk_size_) return;
  const uint64_t first = offset >> granularity_bits_;
  const uint64_t last = (std::min(disk_size_, offset + length) - 1) >> granularity_bits_;
  for (uint64_t chunk = first; chunk <= last;) {
    const uint64_t word = chunk / 64;
    const uint64_t low = chunk % 64;
    const uint64_t high = std::min<uint64_t>(63, low + (last - chunk));
    const uint64_t mask = (high == 63 ? ~uint64_t{0} : ((uint64_t{1} << (high + 1)) - 1)) & ~((uint64_t{1} << low) - 1);
    const uint64_t old = words_[word].fetch_or(mask, std::memory_order_acq_rel);
    dirty_chunks_.fetch_add(static_cast<uint64_t>(std::popcount(mask & ~old)), std::memory_order_relaxed);
    chunk += high - low + 1;
  }
}

void DirtyBitmap::ClearAll() {
  for (uint64_t i = 0; i < words_count_; ++i) {
    const uint64_t old = words_[i].exchange(0, std::memory_order_acq_rel);
    dirty_chunks_.fetch_sub(static_cast<uint64_t>(std::popcount(old)), std::memory_order_relaxed);
  }
}

void DirtyBitmap::Reset(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= disk_size_) return;
  const uint64_t first = offset >> granularity_bits_;
  const uint64_t last = (std::min(disk_size_, offset + length) - 1) >> granularity_bits_;
  for (uint64_t chunk = first; chunk <= last;) {
    const uint64_t word = chunk / 64;
    const uint64_t low = chunk % 64;
    const uint64_t high = std::min<uint64_t>(63, low + (last - chunk));
    const uint64_t mask = (high == 63 ? ~uint64_t{0} : ((uint64_t{1} << (high + 1)) - 1)) & ~((uint64_t{1} << low) - 1);
    const uint64_t old = words_[word].fetch_and(~mask, std::memory_order_acq_rel);
    dirty_chunks_.fetch_sub(static_cast<uint64_t>(std::popcount(mask & old)), std::memory_order_relaxed);
    chunk += high - low + 1;
  }
}

bool DirtyBitmap::Merge(const DirtyBitmap& other) {
  if (other.disk_size_ != disk_size_ || other.granularity_bits_ != granularity_bits_) return false;
  for (uint64_t i = 0; i < words_count_; ++i) {
    const uint64_t add = other.words_[i].load(std::memory_order_acquire);
    if (add == 0) continue;
    const uint64_t old = words_[i].fetch_or(add, std::memory_order_acq_rel);
    dirty_chunks_.fetch_add(static_cast<uint64_t>(std::popcount(add & ~old)), std::memory_order_relaxed);
  }
  return true;
}

bool DirtyBitmap::Test(uint64_t offset) const {
  if (offset >= disk_size_) return false;
  const uint64_t chunk = offset >> granularity_bits_;
  return (words_[chunk / 64].load(std::memory_order_acquire) >> (chunk % 64)) & 1;
}

uint64_t DirtyBitmap::DirtyBytes() const {
  const uint64_t chunks = dirty_chunks_.load(std::memory_order_relaxed);
  if (chunks == 0) return 0;
  // Every chunk is whole but maybe the last one; count it whole unless it is marked.
  uint64_t bytes = chunks << granularity_bits_;
  if (bits_ > 0 && Test(disk_size_ - 1)) bytes -= ((bits_) << granularity_bits_) - disk_size_;
  return bytes;
}

bool DirtyBitmap::TakeRun(uint64_t offset, uint64_t max_length, uint64_t* run_offset, uint64_t* run_length) {
  uint64_t chunk = offset >> granularity_bits_;
  const uint64_t max_chunks = std::max<uint64_t>(1, max_length >> granularity_bits_);
  while (chunk < bits_) {
    // Skip to the next marked chunk, a word at a time.
    const uint64_t word = words_[chunk / 64].load(std::memory_order_acquire) >> (chunk % 64);
    if (word == 0) {
      chunk = (chunk / 64 + 1) * 64;
      continue;
    }
    chunk += static_cast<uint64_t>(std::countr_zero(word));
    if (chunk >= bits_) break;
    // Take the run bit by bit: a bit cleared by this thread is this run's.
    uint64_t taken = 0;
    while (taken < max_chunks && chunk + taken < bits_) {
      const uint64_t bit = uint64_t{1} << ((chunk + taken) % 64);
      const uint64_t old = words_[(chunk + taken) / 64].fetch_and(~bit, std::memory_order_acq_rel);
      if ((old & bit) == 0) break;
      dirty_chunks_.fetch_sub(1, std::memory_order_relaxed);
      ++taken;
    }
    if (taken == 0) continue;  // another thread took it first: look again
    *run_offset = chunk << granularity_bits_;
    *run_length = ChunkEnd(chunk + taken - 1) - *run_offset;
    return true;
  }
  return false;
}

std::string DirtyBitmap::Serialize() const {
  std::string bytes(words_count_ * 8, '\0');
  for (uint64_t i = 0; i < words_count_; ++i) {
    const uint64_t word = words_[i].load(std::memory_order_acquire);
    for (int b = 0; b < 8; ++b) bytes[i * 8 + b] = static_cast<char>((word >> (8 * b)) & 0xff);
  }
  return bytes;
}

bool DirtyBitmap::Deserialize(const std::string& bytes) {
  if (bytes.size() != words_count_ * 8) return false;
  uint64_t chunks = 0;
  for (uint64_t i = 0; i < words_count_; ++i) {
    uint64_t word = 0;
    for (int b = 0; b < 8; ++b) word |= uint64_t{static_cast<unsigned char>(bytes[i * 8 + b])} << (8 * b);
    if (i == words_count_ - 1 && bits_ % 64 != 0) word &= (uint64_t{1} << (bits_ % 64)) - 1;
    words_[i].store(word, std::memory_order_release);
    chunks += static_cast<uint64_t>(std::popcount(word));
  }
  dirty_chunks_.store(chunks, std::memory_order_relaxed);
  return true;
}

}  // namespace corfs::overlay
