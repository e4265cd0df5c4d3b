#pragma once
// DirtyBitmap: which parts of a disk changed, one bit per `granularity`
// bytes (a power of two), as QEMU's BdrvDirtyBitmap. A mirror marks guest
// writes in one and copies the marked parts again; a backup's incremental
// bitmap is one kept across mounts.
//
// Unlike the allocation bitmap, bits go both ways: Set on a write, and
// TakeRun clears the bits of a run it hands to a copier. A write that lands
// after the copier read the run sets its bits again, so nothing is lost:
// copy after take, and a write after the copy's read is marked anew.
//
// Threading: every method may be called from several threads at once
// (atomic words, no lock). The size is fixed: the disk does not grow while
// a job holding one runs (Overlay::Resize refuses while a write hook is in).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace corfs::overlay {

class DirtyBitmap {
 public:
  // A bitmap of a `disk_size`-byte disk; `granularity` is a power of two.
  DirtyBitmap(uint64_t disk_size, uint64_t granularity);

  uint64_t granularity() const { return uint64_t{1} << granularity_bits_; }
  uint64_t disk_size() const { return disk_size_; }
  uint64_t bits() const { return bits_; }

  // Marks every chunk touched by [offset, offset + length).
  void Set(uint64_t offset, uint64_t length);
  // Marks the whole disk.
  void SetAll() { Set(0, disk_size_); }
  void ClearAll();
  // Clears every chunk touched by [offset, offset + length).
  void Reset(uint64_t offset, uint64_t length);
  // Marks every chunk `other` marks (a bitmap of the same disk size and
  // granularity: false, nothing changed, otherwise). A backup merges the
  // bits it took back into the bitmap when it fails, so none are lost.
  bool Merge(const DirtyBitmap& other);
  bool Test(uint64_t offset) const;
  // The bytes marked (whole chunks; the last one clipped to the disk).
  uint64_t DirtyBytes() const;

  // The first run of marked chunks at or after `offset`, at most
  // `max_length` bytes (at least one chunk): clears its bits and returns
  // it in *run_offset, *run_length (both clipped to the disk). False when
  // nothing at or after `offset` is marked.
  bool TakeRun(uint64_t offset, uint64_t max_length, uint64_t* run_offset, uint64_t* run_length);

  // The words, for a bitmap kept on disk (bit i = chunk i, LSB first).
  std::string Serialize() const;
  // Loads what Serialize made for a bitmap of the same size and
  // granularity; false (nothing loaded) if the length differs.
  bool Deserialize(const std::string& bytes);

 private:
  uint64_t ChunkEnd(uint64_t chunk) const;

  const uint64_t disk_size_;
  const uint32_t granularity_bits_;
  const uint64_t bits_;
  const uint64_t words_count_;
  std::unique_ptr<std::atomic<uint64_t>[]> words_;
  std::atomic<uint64_t> dirty_chunks_{0};
};

}  // namespace corfs::overlay
