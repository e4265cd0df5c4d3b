#pragma once
// Helpers shared by the engine tests: temporary folders, random sparse
// images with their expected content, file snapshots, a block driver wrapper
// that counts, slows down or fails reads (slipped under a real overlay
// through OpenOptions::opener / CreateOptions::opener), and a way to run the
// `corfs` binary.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "overlay/block_driver.h"
#include "overlay/image_opener.h"
#include "overlay/overlay.h"

namespace corfs::testing {

// ---------------------------------------------------------------------------
// Files

// A fresh folder made with mkdtemp under $TMPDIR (or /tmp); it and everything
// in it are removed when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole content of a file; aborts the test (via ADD_FAILURE) and returns
// "" when it cannot be read.
std::string ReadFileBytes(const std::string& path);
// Writes `data` at `offset` of an existing file.
void PatchFile(const std::string& path, uint64_t offset, std::string_view data);
void TruncateFile(const std::string& path, uint64_t size);
bool FileExists(const std::string& path);
// Names of the entries of a folder, sorted.
std::vector<std::string> ListDir(const std::string& path);

// The state of a set of files (existence, size and every byte), to check
// that a refused operation changed nothing on disk.
class FilesSnapshot {
 public:
  explicit FilesSnapshot(const std::vector<std::string>& paths);
  // Empty when every file is as it was; otherwise says which differ.
  std::string Differences() const;

 private:
  struct Entry {
    std::string path;
    bool exists = false;
    std::string bytes;
  };
  static Entry Take(const std::string& path);
  std::vector<Entry> entries_;
};

// ---------------------------------------------------------------------------
// Random content

// A seed for a test: CORFS_TEST_SEED from the environment if set, else a
// fresh random one. Print it (SCOPED_TRACE) so a failure can be replayed.
uint64_t TestSeed();

// `n` random bytes (rarely all zero).
std::string RandomBytes(std::mt19937_64& rng, size_t n);
// Fills `buf` with bytes determined by `seed` only.
void FillSeeded(uint64_t seed, std::span<char> buf);
uint64_t RandomIn(std::mt19937_64& rng, uint64_t lo, uint64_t hi);  // [lo, hi]

// A sparse raw image made for a test: its allocated 4 KiB blocks and the
// bytes it holds (zeros in holes).
struct SparseLayer {
  std::string path;
  uint64_t size = 0;
  std::string content;                 // size bytes; zeros where the file has holes
  std::vector<bool> allocated_blocks;  // per 4 KiB block of the file
  bool Allocated(uint64_t offset) const { return allocated_blocks[offset / 4096]; }
};

// Makes a sparse raw file of `size` bytes at `path`. About `density` of its
// 4 KiB blocks hold data, in runs of 1..8 blocks; of those, a `zero_fraction`
// hold explicit zeros (allocated, so they hide the layers below). A density
// of 1 allocates every block.
SparseLayer MakeRandomSparseLayer(const std::string& path, uint64_t size, std::mt19937_64& rng, double density,
                                  double zero_fraction = 0.0);

// What a chain of these layers (top first) presents as a disk of `disk_size`
// bytes: each layer shows only up to its own size and the size of every
// layer above it; what no layer holds reads as zeros.
std::string ExpectedChainContent(const std::vector<SparseLayer>& layers, uint64_t disk_size);

// Whether some layer of the chain holds the byte at `offset` (GetBlockStatus kData).
bool ChainHoldsData(const std::vector<SparseLayer>& layers, uint64_t disk_size, uint64_t offset);

// Empty when `actual` equals `expected`; otherwise where they first differ
// (offsets counted from `base`) and how.
std::string FirstDifference(std::string_view actual, std::string_view expected, uint64_t base = 0);

// ---------------------------------------------------------------------------
// Overlays

// Reads the whole disk, in reads of `chunk` bytes (0: one read).
Status ReadWholeDisk(overlay::Overlay& image, std::string* out, uint64_t chunk = 0);

// ---------------------------------------------------------------------------
// A block driver wrapper for tests

// Shared by every driver a TestOpener opened; the test keeps it to look at
// what the overlay read and to change the behaviour while it runs.
class DriverControl {
 public:
  struct ReadRecord {
    std::string path;
    uint64_t offset;
    uint64_t length;
  };

  // --- counting
  void ResetCounts();
  std::vector<ReadRecord> Reads() const;
  // Read calls (since the last reset) that touch [offset, offset+length).
  uint64_t ReadsOverlapping(uint64_t offset, uint64_t length) const;
  // Bytes of [offset, offset+length) read (since the last reset), counted
  // once per read that covers them.
  uint64_t BytesReadIn(uint64_t offset, uint64_t length) const;

  // --- slow: reads touching [offset, offset+length) sleep `delay` first
  void SetSlowReads(uint64_t offset, uint64_t length, std::chrono::microseconds delay);
  void ClearSlowReads();

  // --- failing: reads touching the range fail with `error` (errno)
  void SetFailingReads(uint64_t offset, uint64_t length, int error);
  void ClearFailingReads();

  // Blocks until a read touching [offset, offset+length) has started since
  // the last reset (it may still be sleeping); false on timeout.
  bool WaitForReadStart(uint64_t offset, uint64_t length, std::chrono::milliseconds timeout) const;

  // Called by TestDriver.
  Status BeforeRead(const std::string& path, uint64_t offset, uint64_t length);

 private:
  static bool Overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; }
  bool StartedLocked(uint64_t offset, uint64_t length) const;

  mutable std::mutex mutex_;
  mutable std::condition_variable read_started_;
  std::vector<ReadRecord> reads_;
  uint64_t slow_offset_ = 0, slow_length_ = 0;
  std::chrono::microseconds slow_delay_{0};
  uint64_t fail_offset_ = 0, fail_length_ = 0;
  int fail_error_ = 0;
};

// Wraps a real driver; reads go through `control` first.
class TestDriver final : public overlay::BlockDriver {
 public:
  TestDriver(std::unique_ptr<overlay::BlockDriver> inner, std::shared_ptr<DriverControl> control)
      : inner_(std::move(inner)), control_(std::move(control)) {}

  uint64_t size() const override { return inner_->size(); }
  const std::string& path() const override { return inner_->path(); }
  std::string format() const override { return inner_->format(); }
  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override { return inner_->Write(offset, data); }
  Status Flush() override { return inner_->Flush(); }
  Status Discard(uint64_t offset, uint64_t length) override { return inner_->Discard(offset, length); }
  Status GetBlockStatus(uint64_t offset, uint64_t length, overlay::BlockStatus* out) override {
    return inner_->GetBlockStatus(offset, length, out);
  }
  Status CheckUnchanged() const override { return inner_->CheckUnchanged(); }

 private:
  std::unique_ptr<overlay::BlockDriver> inner_;
  std::shared_ptr<DriverControl> control_;
};

// An opener that opens images with overlay::OpenImage and wraps them in a
// TestDriver sharing `control`.
overlay::ImageOpener TestOpener(const std::shared_ptr<DriverControl>& control);

// ---------------------------------------------------------------------------
// Running a program

struct CommandResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string out;
  std::string err;
};

// Runs `argv` (no shell) with stdin from /dev/null and returns its exit code
// and output.
CommandResult RunCommand(const std::vector<std::string>& argv);

}  // namespace corfs::testing
