#pragma once
// Qcow2Driver: a read-only qcow2 image (versions 2 and 3), written from
// QEMU's format description (docs/interop/qcow2.txt).
//
// The header is parsed and validated at open (qcow2_header.h), the L1 table
// is read whole and each entry checked (cluster-aligned, inside the file);
// L2 tables are read on demand through a bounded cache shared by all
// readers (qcow2_l2_cache.h), and each L2 entry is checked when it is used.
// A damaged image gives a Status (EUCLEAN) naming what is wrong, never a
// crash, a huge allocation or a loop.
//
// Clusters: standard, zero (the v3 zero flag), unallocated, compressed
// (zlib raw deflate or zstd, per the header's compression type), and
// extended L2 entries (32 subclusters per cluster). What the image does not
// hold reads as zeros here; with a backing file it is kUnallocated for
// GetBlockStatus, so a BackingChain lets the backing image show through.
// Without a backing file, unallocated clusters are kZero: as in QEMU, such
// an image is a whole disk and hides any layer listed below it.
//
// Protocol and format: the driver reads its file's bytes through another
// BlockDriver, its protocol driver (QEMU's bs->file): a RawDriver for a
// local file, the NBD or HTTP driver for an image on a server. Its
// identity checks (CheckUnchanged, version_tag) are the file's.
//
// The driver does not open its backing file itself: OpenImageChain /
// ExpandImageChain (image_opener.h) follow backing files and put each image
// in the chain as a layer of its own.
//
// All methods are thread-safe: reads go to the protocol driver (which
// allows concurrent reads, block_driver.h), the L2 cache and the cache of
// decompressed clusters have their own locks.
//
// Compressed clusters: a Read that covers whole compressed clusters inflates
// them straight into the caller's buffer, reading compressed clusters that
// lie back to back in the file (as `qemu-img convert -c` writes them) with
// one read of the protocol driver (one pread for a local file, one request
// for a server), and inflating them on a small shared TBB arena when a request
// holds several (the calling thread takes part). Each thread keeps its zlib
// stream, zstd context and input buffer for the next cluster. Only reads of
// part of a compressed cluster go through the small decompressed-cluster
// cache.

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "overlay/block_driver.h"
#include "overlay/qcow2_header.h"
#include "overlay/qcow2_l2_cache.h"

namespace corfs::overlay {

class Qcow2Driver final : public BlockDriver {
 public:
  struct Options {
    // Memory for cached L2 tables (at least 4 tables are kept).
    uint64_t l2_cache_bytes = uint64_t{32} << 20;
  };

  static Status Open(const std::string& path, std::unique_ptr<Qcow2Driver>* out);
  static Status Open(const std::string& path, const Options& options, std::unique_ptr<Qcow2Driver>* out);
  // Reads the image open as `fd` (a file, a block device or a memfd);
  // `path` names it in messages and anchors a relative backing file name.
  static Status OpenFd(UniqueFd fd, const std::string& path, const Options& options, std::unique_ptr<Qcow2Driver>* out);
  // Reads the image whose bytes `file` presents (its protocol driver);
  // file->path() names it and anchors a relative backing file name.
  static Status Open(std::unique_ptr<BlockDriver> file, const Options& options, std::unique_ptr<Qcow2Driver>* out);

  uint64_t size() const override { return header_.size; }
  const std::string& path() const override { return path_; }
  std::string format() const override { return "qcow2"; }

  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override;
  Status Flush() override { return Status::Ok(); }
  Status Discard(uint64_t offset, uint64_t length) override;
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override;
  Status CheckUnchanged() const override { return file_->CheckUnchanged(); }
  std::string version_tag() const override { return file_->version_tag(); }

  const Qcow2Header& header() const { return header_; }
  bool has_backing() const { return !header_.backing_file.empty(); }
  // The backing file's path (relative names resolved against the image's
  // folder) and its format ("" = detect). Fails when there is none.
  Status BackingFile(std::string* path, std::string* format) const;

  Qcow2L2Cache::Stats l2_cache_stats() const { return l2_cache_.stats(); }

 private:
  enum class Kind { kUnallocated, kZero, kData, kCompressed };
  // What the image holds at a guest offset, for `length` bytes from it
  // (up to the end of the cluster, the subcluster run, or the range of an
  // empty L1 entry).
  struct Extent {
    Kind kind = Kind::kUnallocated;
    uint64_t length = 0;
    uint64_t host = 0;        // kData: file offset of the guest offset; kCompressed: of the compressed data
    uint64_t descriptor = 0;  // kCompressed: the L2 entry's descriptor (cache key)
    uint64_t compressed_bytes = 0;
  };

  Qcow2Driver(std::unique_ptr<BlockDriver> file, Qcow2Header header, std::vector<uint64_t> l1, const Options& options);

  Status Map(uint64_t offset, Extent* out);
  // The steps of Map once it has the L2 entry: a compressed cluster, a
  // standard cluster, or the subclusters of an extended entry.
  struct L2Entry;
  Status MapCompressed(const L2Entry& entry, Extent* out) const;
  Status MapStandard(const L2Entry& entry, Extent* out) const;
  Status MapSubclusters(const L2Entry& entry, Extent* out) const;
  // A data cluster's host offset is cluster-aligned and inside the file.
  Status CheckDataCluster(const L2Entry& entry, uint64_t host) const;
  Status LoadL2(uint64_t offset, Qcow2L2Cache::Table* table);
  // A whole compressed cluster a Read inflates into its buffer at `out`.
  struct CompressedJob {
    Extent extent;
    char* out = nullptr;
    size_t in_at = 0;  // where its compressed bytes start in the input buffer
    Status status;
  };
  using ClusterBuffer = std::shared_ptr<char[]>;

  // The whole guest cluster a compressed extent decompresses to.
  Status Decompressed(const Extent& extent, ClusterBuffer* out);
  // Reads the compressed bytes of `jobs` and inflates each into its place.
  Status InflateJobs(std::span<CompressedJob> jobs);
  Status Inflate(std::span<const char> in, std::span<char> out, const Extent& extent);
  Allocation Classify(Kind kind) const;

  std::unique_ptr<BlockDriver> file_;  // the protocol driver
  const std::string& path_;            // file_->path()
  Qcow2Header header_;
  std::vector<uint64_t> l1_;  // host order; the entries the virtual size needs
  mutable Qcow2L2Cache l2_cache_;

  // A few recently decompressed clusters: small reads inside one compressed
  // cluster decompress it once. Buffers are not zero-filled (inflating
  // writes all of them), and one evicted that no reader holds is kept as a
  // spare for the next miss, so a run of small reads does not keep asking
  // malloc (and the kernel) for fresh memory.
  static constexpr size_t kDecompressedSlots = 8;
  static constexpr size_t kSpareBuffers = 2;
  std::mutex decompressed_mutex_;
  std::array<std::pair<uint64_t, ClusterBuffer>, kDecompressedSlots> decompressed_{};
  size_t decompressed_next_ = 0;
  std::vector<ClusterBuffer> spare_;
};

}  // namespace corfs::overlay
