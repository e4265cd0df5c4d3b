// libFuzzer target for the qcow2 header and table parsing
// (scripts/fuzz-qcow2.sh builds and runs it).
//
// Each input is a whole qcow2 file. It is put in a memfd, so the driver reads
// it with the same pread calls as a real image, and opened with
// Qcow2Driver::OpenFd. When the open succeeds, the allocation of the disk is
// walked with GetBlockStatus and a few clusters are read, which makes the
// driver load L1 entries, L2 tables (plain and extended), zero and
// compressed clusters from the fuzzed bytes.
//
// Anything but a Status is a bug: a crash, a sanitizer report, a hang, a
// huge allocation. Beyond that the walk checks the BlockDriver contract
// (runs are never empty nor longer than asked, so callers that loop over
// runs always advance), and that a range reported as zero reads as zeros.
// A broken contract aborts, so the fuzzer keeps the input.
//
// The work per input is bounded so that every input runs in milliseconds:
// at most kMaxWalk bytes of the virtual disk are walked, in at most
// kMaxStatusCalls calls, and at most kMaxReads reads of at most kMaxReadBytes
// each are made.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "overlay/qcow2_driver.h"

namespace {

using corfs::Status;
using corfs::UniqueFd;
using corfs::overlay::Allocation;
using corfs::overlay::BlockStatus;
using corfs::overlay::Qcow2Driver;

constexpr uint64_t kMaxWalk = uint64_t{64} << 20;
constexpr int kMaxStatusCalls = 512;
constexpr int kMaxReads = 12;
constexpr uint64_t kMaxReadBytes = uint64_t{128} << 10;

[[noreturn]] void Broken(const char* what, uint64_t a, uint64_t b) {
  std::fprintf(stderr, "qcow2_fuzz: %s (%llu, %llu)\n", what, static_cast<unsigned long long>(a),
               static_cast<unsigned long long>(b));
  std::abort();
}

// The input as a file: a memfd holding exactly `size` bytes.
UniqueFd InputFile(const uint8_t* data, size_t size) {
  UniqueFd fd(::memfd_create("qcow2-fuzz", MFD_CLOEXEC));
  if (!fd.valid()) {
    std::perror("memfd_create");
    std::abort();
  }
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd.get(), data + done, size - done);
    if (n <= 0) {
      std::perror("write memfd");
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  return fd;
}

bool AllZero(const std::vector<char>& buf, size_t n) {
  return std::all_of(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), [](char c) { return c == 0; });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Qcow2Driver::Options options;
  // A small cache, so that inputs with many L2 tables also exercise eviction.
  options.l2_cache_bytes = 256 << 10;
  std::unique_ptr<Qcow2Driver> driver;
  // The name is what a relative backing file name is resolved against; no
  // file is opened through it.
  Status opened = Qcow2Driver::OpenFd(InputFile(data, size), "fuzz/input.qcow2", options, &driver);
  if (!opened.ok()) return 0;

  if (driver->has_backing()) {
    std::string path, format;
    (void)driver->BackingFile(&path, &format);
  }

  const uint64_t disk = driver->size();
  const uint64_t cluster = driver->header().cluster_size();
  const uint64_t walk_end = std::min(disk, kMaxWalk);
  std::vector<char> buf(kMaxReadBytes);

  // Where to read: the first cluster, the start of every run the walk finds
  // (data, zero or unallocated), a cluster straddling read, and the end of
  // the disk.
  std::vector<uint64_t> read_at;
  uint64_t pos = 0;
  for (int calls = 0; pos < walk_end && calls < kMaxStatusCalls; ++calls) {
    BlockStatus status;
    const uint64_t asked = walk_end - pos;
    if (!driver->GetBlockStatus(pos, asked, &status).ok()) {
      // A damaged entry: skip the cluster, as a reader that ignores errors would.
      pos = (pos / cluster + 1) * cluster;
      continue;
    }
    if (status.length == 0 || status.length > asked) Broken("block status run out of range", status.length, asked);
    if (status.allocation != Allocation::kData) {
      // A zero or unallocated run reads as zeros (the driver reads what it
      // does not hold as zeros, whatever lies below it in a chain).
      const size_t n = static_cast<size_t>(std::min<uint64_t>(status.length, 4096));
      Status read = driver->Read(pos, std::span<char>(buf.data(), n));
      if (read.ok() && !AllZero(buf, n)) Broken("a zero run reads as data", pos, status.length);
    }
    if (read_at.size() < kMaxReads) read_at.push_back(pos);
    pos += status.length;
  }
  if (disk > cluster) read_at.push_back(cluster - 100);
  if (disk > 0) read_at.push_back(disk - std::min(disk, cluster));

  int reads = 0;
  for (uint64_t at : read_at) {
    if (reads++ >= kMaxReads) break;
    const uint64_t n = std::min({kMaxReadBytes, cluster * 2, disk - std::min(disk, at)});
    if (n == 0) continue;
    (void)driver->Read(at, std::span<char>(buf.data(), static_cast<size_t>(n)));
  }
  // Past the end of the disk: zeros, no error, and a run as long as asked.
  if (!driver->Read(disk, std::span<char>(buf.data(), 512)).ok() || !AllZero(buf, 512)) {
    Broken("a read past the end of the disk", disk, 0);
  }
  BlockStatus past;
  if (!driver->GetBlockStatus(disk, 512, &past).ok() || past.length != 512 || past.allocation == Allocation::kData) {
    Broken("block status past the end of the disk", disk, past.length);
  }
  return 0;
}
