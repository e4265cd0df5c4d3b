#pragma once
// BootProfileRecorder: records the order in which a guest first reads each
// cluster of a disk, for a boot profile (boot_profile.h).
//
// It must cost the guest nothing it would notice, since it sits on every
// read: a cluster already seen costs one relaxed load of its bit in the
// `seen` bitmap; a cluster read for the first time costs one fetch_or on
// that bit (which also decides, without a lock, which of two racing readers
// records it), and the run of such clusters in one read costs one clock
// read (vDSO, no system call) and one append. Appends take a slot with a
// fetch_add on an index into fixed-size chunks of entries; a chunk is
// allocated by the first reader that needs it (a compare-and-swap; at most
// once per kChunkEntries runs). No lock, no system call, nothing for reads
// of clusters seen before.
//
// Clusters beyond the disk's size when recording started (a disk grown
// meanwhile) are not recorded; neither is anything after Stop, or past
// kMaxEntries runs.
//
// Threading: NoteRead may be called from any number of threads at once;
// Snapshot, IdleFor and Stop from any thread, at any time.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "overlay/boot_profile.h"

namespace corfs::overlay {

class BootProfileRecorder {
 public:
  using Clock = std::chrono::steady_clock;

  BootProfileRecorder(uint64_t disk_size, uint64_t cluster_size, std::vector<ProfileLayer> layers);
  ~BootProfileRecorder();
  BootProfileRecorder(const BootProfileRecorder&) = delete;
  BootProfileRecorder& operator=(const BootProfileRecorder&) = delete;

  // A guest read of [offset, offset + length).
  void NoteRead(uint64_t offset, uint64_t length);

  // How long since the guest last read a cluster for the first time;
  // nullopt before its first read.
  std::optional<Clock::duration> IdleFor(Clock::time_point now) const;
  // Reads from now on are not recorded.
  void Stop() { stopped_.store(true, std::memory_order_relaxed); }

  // The profile so far: runs in the order of their first reads, a run that
  // continues the one before it (a sequential read) joined to it.
  BootProfile Snapshot() const;

 private:
  static constexpr uint64_t kChunkEntries = 4096;
  static constexpr uint64_t kMaxEntries = uint64_t{1} << 22;

  struct Entry {
    uint64_t cluster = 0;
    uint64_t count = 0;
    std::atomic<uint64_t> stamp{0};  // ns since the first read, plus 1; 0 until the entry is written
  };

  void Append(uint64_t cluster, uint64_t count);
  Entry* EntryAt(uint64_t index);

  const uint64_t disk_size_;
  const uint32_t cluster_bits_;
  const uint64_t clusters_;
  const std::vector<ProfileLayer> layers_;
  const uint64_t max_entries_;
  std::unique_ptr<std::atomic<uint64_t>[]> seen_;  // bit per cluster, LSB first
  std::unique_ptr<std::atomic<Entry*>[]> chunks_;  // max_entries_ / kChunkEntries, rounded up
  std::atomic<uint64_t> next_entry_{0};
  std::atomic<int64_t> first_read_{0};     // steady ns of the first read; 0: none yet
  std::atomic<int64_t> last_new_read_{0};  // steady ns of the latest first read of a cluster
  std::atomic<bool> stopped_{false};
};

}  // namespace corfs::overlay
