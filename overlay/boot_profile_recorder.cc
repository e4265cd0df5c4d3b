#include "overlay/boot_profile_recorder.h"

#include <algorithm>
#include <bit>

namespace corfs::overlay {

namespace {
int64_t SteadyNs(BootProfileRecorder::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

BootProfileRecorder::BootProfileRecorder(uint64_t disk_size, uint64_t cluster_size, std::vector<ProfileLayer> layers)
    : disk_size_(disk_size),
      cluster_bits_(static_cast<uint32_t>(std::countr_zero(cluster_size))),
      clusters_((disk_size + cluster_size - 1) / cluster_size),
      layers_(std::move(layers)),
      max_entries_(std::min(std::max<uint64_t>(clusters_, 1), kMaxEntries)),
      seen_(new std::atomic<uint64_t>[(clusters_ + 63) / 64]()),
      chunks_(new std::atomic<Entry*>[(max_entries_ + kChunkEntries - 1) / kChunkEntries]()) {}

BootProfileRecorder::~BootProfileRecorder() {
  for (uint64_t i = 0; i < (max_entries_ + kChunkEntries - 1) / kChunkEntries; ++i) delete[] chunks_[i].load();
}

void BootProfileRecorder::NoteRead(uint64_t offset, uint64_t length) {
  if (length == 0 || offset >= disk_size_ || stopped_.load(std::memory_order_relaxed)) return;
  const uint64_t first = offset >> cluster_bits_;
  const uint64_t last = std::min(clusters_ - 1, (offset + length - 1) >> cluster_bits_);
  uint64_t run_start = 0;
  uint64_t run_count = 0;
  for (uint64_t c = first; c <= last; ++c) {
    std::atomic<uint64_t>& word = seen_[c >> 6];
    const uint64_t bit = uint64_t{1} << (c & 63);
    // The load keeps the common case (seen before) from writing the line.
    if ((word.load(std::memory_order_relaxed) & bit) != 0) continue;
    if ((word.fetch_or(bit, std::memory_order_relaxed) & bit) != 0) continue;  // another reader won it
    if (run_count != 0 && run_start + run_count == c) {
      ++run_count;
      continue;
    }
    if (run_count != 0) Append(run_start, run_count);
    run_start = c;
    run_count = 1;
  }
  if (run_count != 0) Append(run_start, run_count);
}

BootProfileRecorder::Entry* BootProfileRecorder::EntryAt(uint64_t index) {
  std::atomic<Entry*>& slot = chunks_[index / kChunkEntries];
  Entry* chunk = slot.load(std::memory_order_acquire);
  if (chunk == nullptr) {
    auto* fresh = new Entry[kChunkEntries];
    if (slot.compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
      chunk = fresh;
    } else {
      delete[] fresh;  // another reader installed one: `chunk` is it
    }
  }
  return &chunk[index % kChunkEntries];
}

void BootProfileRecorder::Append(uint64_t cluster, uint64_t count) {
  const int64_t now = SteadyNs(Clock::now());
  int64_t first = 0;
  if (first_read_.compare_exchange_strong(first, now, std::memory_order_relaxed)) first = now;
  last_new_read_.store(now, std::memory_order_relaxed);
  const uint64_t index = next_entry_.fetch_add(1, std::memory_order_relaxed);
  if (index >= max_entries_) return;
  Entry* entry = EntryAt(index);
  entry->cluster = cluster;
  entry->count = count;
  entry->stamp.store(static_cast<uint64_t>(std::max<int64_t>(0, now - first)) + 1, std::memory_order_release);
}

std::optional<BootProfileRecorder::Clock::duration> BootProfileRecorder::IdleFor(Clock::time_point now) const {
  const int64_t last = last_new_read_.load(std::memory_order_relaxed);
  if (last == 0) return std::nullopt;
  return std::chrono::nanoseconds(std::max<int64_t>(0, SteadyNs(now) - last));
}

BootProfile BootProfileRecorder::Snapshot() const {
  BootProfile profile;
  profile.cluster_size = uint64_t{1} << cluster_bits_;
  profile.layers = layers_;
  const uint64_t entries = std::min(next_entry_.load(std::memory_order_relaxed), max_entries_);
  std::vector<ProfileRange> ranges;
  for (uint64_t i = 0; i < entries; ++i) {
    const Entry* chunk = chunks_[i / kChunkEntries].load(std::memory_order_acquire);
    if (chunk == nullptr) continue;
    const Entry& entry = chunk[i % kChunkEntries];
    const uint64_t stamp = entry.stamp.load(std::memory_order_acquire);
    if (stamp == 0) continue;  // a slot being written: its read is not served yet either
    const uint64_t offset = entry.cluster << cluster_bits_;
    const uint64_t end = std::min(disk_size_, (entry.cluster + entry.count) << cluster_bits_);
    ranges.push_back({offset, end - offset, stamp - 1});
  }
  // Slots are taken in nearly the order of the reads; threads that raced
  // may have taken theirs the other way round.
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const ProfileRange& a, const ProfileRange& b) { return a.first_read_ns < b.first_read_ns; });
  for (const ProfileRange& range : ranges) {
    ProfileRange* last = profile.ranges.empty() ? nullptr : &profile.ranges.back();
    if (last != nullptr && last->offset + last->length == range.offset) {
      last->length += range.length;
    } else {
      profile.ranges.push_back(range);
    }
  }
  return profile;
}

}  // namespace corfs::overlay
