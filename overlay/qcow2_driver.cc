#include "overlay/qcow2_driver.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "common/hex.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

namespace {

// Bits 9..55 of L1 entries and standard L2 descriptors: a host offset.
constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ULL;
constexpr uint64_t kL2Compressed = uint64_t{1} << 62;
constexpr uint64_t kL2ZeroFlag = uint64_t{1} << 0;
constexpr uint64_t kDescriptorMask = (uint64_t{1} << 62) - 1;

uint64_t FromBigEndian(uint64_t raw) {
  if constexpr (std::endian::native == std::endian::little) return __builtin_bswap64(raw);
  return raw;
}

void ToHostOrder(std::vector<uint64_t>& words) {
  for (uint64_t& w : words) w = FromBigEndian(w);
}

struct ZstdDCtxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};

// Decompression state each thread keeps from one cluster to the next:
// setting up a zlib stream or a zstd context costs allocations (and, for
// zlib, a 32 KiB window) that would otherwise be paid per cluster.
struct ThreadInflater {
  z_stream zlib{};
  bool zlib_ready = false;
  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter> zstd;

  ThreadInflater() = default;
  ThreadInflater(const ThreadInflater&) = delete;
  ThreadInflater& operator=(const ThreadInflater&) = delete;
  ~ThreadInflater() {
    if (zlib_ready) inflateEnd(&zlib);
  }
};

ThreadInflater& Inflater() {
  thread_local ThreadInflater inflater;
  return inflater;
}

// The compressed bytes a thread reads from the file, kept for its next read
// so sequential reads do not allocate (and fault in) fresh memory each time.
// Not zero-filled: every byte used is read into first. Only the reading
// thread touches its buffer; inflating tasks on other threads read it while
// that thread waits for them.
class InputBuffer {
 public:
  char* Get(size_t bytes) {
    if (bytes > capacity_) {
      data_.reset(new char[bytes]);
      capacity_ = bytes;
    }
    return data_.get();
  }
  // Gives back memory above what a common request needs.
  void Trim() {
    if (capacity_ > kKeep) {
      data_.reset();
      capacity_ = 0;
    }
  }

 private:
  static constexpr size_t kKeep = size_t{4} << 20;
  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
};

InputBuffer& ThreadInput() {
  thread_local InputBuffer buffer;
  return buffer;
}

// Compressed bytes read and inflated per batch: bounds a thread's input
// buffer when one Read asks for many megabytes.
constexpr uint64_t kBatchInputBytes = uint64_t{2} << 20;
// A request with fewer compressed clusters than this inflates them on the
// calling thread: handing a task to another thread costs more than it saves.
constexpr size_t kParallelMinClusters = 4;

// The arena compressed clusters are inflated in, shared by all images. Its
// own arena, not the caller's: a thread waiting for its clusters here only
// picks up other inflating tasks (short, lock-free), never a task of the
// caller's arena (a stream job's worker may hold a cluster lock). Never
// destroyed, so it outlives every reader at exit.
tbb::task_arena& InflateArena() {
  static tbb::task_arena* arena =
      new tbb::task_arena(static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));
  return *arena;
}

}  // namespace

Status Qcow2Driver::Open(const std::string& path, std::unique_ptr<Qcow2Driver>* out) {
  return Open(path, Options{}, out);
}

Status Qcow2Driver::Open(const std::string& path, const Options& options, std::unique_ptr<Qcow2Driver>* out) {
  std::unique_ptr<RawDriver> file;
  CORFS_RETURN_IF_ERROR(RawDriver::Open(path, /*writable=*/false, &file));
  return Open(std::move(file), options, out);
}

Status Qcow2Driver::OpenFd(UniqueFd fd, const std::string& path, const Options& options,
                           std::unique_ptr<Qcow2Driver>* out) {
  std::unique_ptr<RawDriver> file;
  CORFS_RETURN_IF_ERROR(RawDriver::Adopt(std::move(fd), path, /*writable=*/false, &file));
  return Open(std::move(file), options, out);
}

Status Qcow2Driver::Open(std::unique_ptr<BlockDriver> file, const Options& options, std::unique_ptr<Qcow2Driver>* out) {
  const std::string& path = file->path();
  Qcow2Header header;
  CORFS_RETURN_IF_ERROR(ReadQcow2Header(*file, &header));

  // The L1 entries the virtual size needs (the header checked that they lie
  // inside the file and take at most 32 MiB). Each one must point to a
  // cluster-aligned L2 table inside the file, or be empty.
  const uint64_t entries = header.l1_entries_needed();
  std::vector<uint64_t> l1(entries);
  if (entries > 0) {
    CORFS_RETURN_IF_ERROR(file->Read(header.l1_table_offset,
                                     std::span<char>(reinterpret_cast<char*>(l1.data()), entries * 8)));
    ToHostOrder(l1);
  }
  const uint64_t cluster_size = header.cluster_size();
  for (uint64_t i = 0; i < entries; ++i) {
    const uint64_t l2 = l1[i] & kOffsetMask;
    if (l2 == 0) continue;
    if (l2 % cluster_size != 0) {
      return Status::Corrupt(path + ": qcow2 L1 entry " + std::to_string(i) + " points to L2 table offset " + Hex(l2) +
                             ", which is not a cluster boundary");
    }
    if (l2 > header.file_size || cluster_size > header.file_size - l2) {
      return Status::Corrupt(path + ": qcow2 L1 entry " + std::to_string(i) + " points to an L2 table at " + Hex(l2) +
                             ", past the end of the file (" + std::to_string(header.file_size) +
                             " bytes); the image is truncated or damaged");
    }
  }
  out->reset(new Qcow2Driver(std::move(file), std::move(header), std::move(l1), options));
  return Status::Ok();
}

Qcow2Driver::Qcow2Driver(std::unique_ptr<BlockDriver> file, Qcow2Header header, std::vector<uint64_t> l1,
                         const Options& options)
    : file_(std::move(file)),
      path_(file_->path()),
      header_(std::move(header)),
      l1_(std::move(l1)),
      l2_cache_(header_.cluster_size(), options.l2_cache_bytes) {}

Status Qcow2Driver::BackingFile(std::string* path, std::string* format) const {
  if (!has_backing()) return Status::NotFound(path_ + " has no backing file");
  CORFS_RETURN_IF_ERROR(ResolveQcow2BackingPath(path_, header_.backing_file, path));
  *format = header_.backing_format;
  return Status::Ok();
}

Status Qcow2Driver::Write(uint64_t, std::span<const char>) {
  return Status::Error(EROFS, path_ + ": qcow2 images are read-only in corfs");
}

Status Qcow2Driver::Discard(uint64_t, uint64_t) {
  return Status::Error(EROFS, path_ + ": qcow2 images are read-only in corfs");
}

Status Qcow2Driver::LoadL2(uint64_t offset, Qcow2L2Cache::Table* table) {
  // Offsets were checked with the L1 table: aligned and inside the file.
  table->resize(header_.cluster_size() / 8);
  CORFS_RETURN_IF_ERROR(file_->Read(offset,
                                    std::span<char>(reinterpret_cast<char*>(table->data()), table->size() * 8)));
  ToHostOrder(*table);
  return Status::Ok();
}

// One L2 entry Map looked up, with what locates it for messages.
struct Qcow2Driver::L2Entry {
  uint64_t offset = 0;     // the guest offset asked about
  uint64_t l2_offset = 0;  // the file offset of its L2 table
  uint64_t entry = 0;      // the standard descriptor
  uint64_t bitmap = 0;     // extended L2 entries: the subcluster bitmap

  std::string Where() const {
    return " (guest offset " + std::to_string(offset) + ", L2 table at " + Hex(l2_offset) + ")";
  }
};

Status Qcow2Driver::Map(uint64_t offset, Extent* out) {
  const uint64_t cluster_size = header_.cluster_size();
  const uint32_t l1_shift = header_.l1_entry_shift();
  const uint64_t l1_index = offset >> l1_shift;
  if (l1_index >= l1_.size()) {  // past the virtual size
    *out = Extent{Kind::kUnallocated, cluster_size - (offset & (cluster_size - 1))};
    return Status::Ok();
  }
  const uint64_t l2_offset = l1_[l1_index] & kOffsetMask;
  if (l2_offset == 0) {  // no L2 table: the whole range of this L1 entry is unallocated
    *out = Extent{Kind::kUnallocated, ((l1_index + 1) << l1_shift) - offset};
    return Status::Ok();
  }
  std::shared_ptr<const Qcow2L2Cache::Table> table;
  CORFS_RETURN_IF_ERROR(l2_cache_.Get(
      l2_offset, [this](uint64_t at, Qcow2L2Cache::Table* t) { return LoadL2(at, t); }, &table));

  const uint64_t l2_index = (offset >> header_.cluster_bits) & ((uint64_t{1} << header_.l2_bits()) - 1);
  const bool extended = header_.extended_l2();
  const L2Entry entry{offset, l2_offset, (*table)[extended ? 2 * l2_index : l2_index],
                      extended ? (*table)[2 * l2_index + 1] : 0};
  if (entry.entry & kL2Compressed) return MapCompressed(entry, out);
  if (!extended) return MapStandard(entry, out);
  return MapSubclusters(entry, out);
}

Status Qcow2Driver::MapCompressed(const L2Entry& entry, Extent* out) const {
  // Offset in the low x bits, x = 62 - (cluster_bits - 8); above it, the
  // number of 512-byte sectors beyond the one holding the offset.
  const uint32_t x = 62 - (header_.cluster_bits - 8);
  const uint64_t host = entry.entry & ((uint64_t{1} << x) - 1);
  const uint64_t extra_sectors = (entry.entry & kDescriptorMask) >> x;
  if ((host >> 56) != 0 || host >= header_.file_size) {
    return Status::Corrupt(path_ + ": compressed cluster at " + Hex(host) + " lies past the end of the file (" +
                           std::to_string(header_.file_size) + " bytes)" + entry.Where());
  }
  const uint64_t cluster_size = header_.cluster_size();
  out->kind = Kind::kCompressed;
  out->length = cluster_size - (entry.offset & (cluster_size - 1));
  out->host = host;
  out->descriptor = entry.entry & kDescriptorMask;
  out->compressed_bytes = (extra_sectors + 1) * 512 - (host & 511);
  return Status::Ok();
}

Status Qcow2Driver::CheckDataCluster(const L2Entry& entry, uint64_t host) const {
  if (host % header_.cluster_size() != 0) {
    return Status::Corrupt(path_ + ": data cluster offset " + Hex(host) + " is not a cluster boundary" + entry.Where());
  }
  if (host >= header_.file_size) {
    return Status::Corrupt(path_ + ": data cluster at " + Hex(host) + " lies past the end of the file (" +
                           std::to_string(header_.file_size) + " bytes)" + entry.Where());
  }
  return Status::Ok();
}

Status Qcow2Driver::MapStandard(const L2Entry& entry, Extent* out) const {
  const uint64_t cluster_size = header_.cluster_size();
  const uint64_t in_cluster = entry.offset & (cluster_size - 1);
  const uint64_t rest = cluster_size - in_cluster;
  const uint64_t host = entry.entry & kOffsetMask;
  if (header_.version >= 3 && (entry.entry & kL2ZeroFlag)) {
    *out = Extent{Kind::kZero, rest};
    return Status::Ok();
  }
  if (host == 0) {
    *out = Extent{Kind::kUnallocated, rest};
    return Status::Ok();
  }
  CORFS_RETURN_IF_ERROR(CheckDataCluster(entry, host));
  *out = Extent{Kind::kData, rest, host + in_cluster};
  return Status::Ok();
}

// Extended L2 entries: 32 subclusters, each allocated, zero or neither. The
// extent is the run of subclusters of one kind from the guest offset.
Status Qcow2Driver::MapSubclusters(const L2Entry& entry, Extent* out) const {
  const uint64_t host = entry.entry & kOffsetMask;
  const uint32_t alloc = static_cast<uint32_t>(entry.bitmap);
  const uint32_t zero = static_cast<uint32_t>(entry.bitmap >> 32);
  if (alloc & zero) {
    return Status::Corrupt(path_ + ": subclusters both allocated and zero (bitmap " + Hex(entry.bitmap) + ")" +
                           entry.Where());
  }
  if (alloc != 0) {
    if (host == 0) {
      return Status::Corrupt(path_ + ": allocated subclusters without a host cluster (bitmap " + Hex(entry.bitmap) +
                             ")" + entry.Where());
    }
    CORFS_RETURN_IF_ERROR(CheckDataCluster(entry, host));
  }
  const uint64_t in_cluster = entry.offset & (header_.cluster_size() - 1);
  const uint32_t sub_bits = header_.cluster_bits - 5;
  const uint32_t first = static_cast<uint32_t>(in_cluster >> sub_bits);
  auto kind_of = [&](uint32_t i) {
    if ((alloc >> i) & 1) return Kind::kData;
    if ((zero >> i) & 1) return Kind::kZero;
    return Kind::kUnallocated;
  };
  const Kind kind = kind_of(first);
  uint32_t end = first + 1;
  while (end < 32 && kind_of(end) == kind) ++end;
  *out = Extent{kind, (uint64_t{end} << sub_bits) - in_cluster, kind == Kind::kData ? host + in_cluster : 0};
  return Status::Ok();
}

Allocation Qcow2Driver::Classify(Kind kind) const {
  switch (kind) {
    case Kind::kData:
    case Kind::kCompressed: return Allocation::kData;
    case Kind::kZero: return Allocation::kZero;
    case Kind::kUnallocated: break;
  }
  return has_backing() ? Allocation::kUnallocated : Allocation::kZero;
}

Status Qcow2Driver::Inflate(std::span<const char> in, std::span<char> out, const Extent& extent) {
  auto corrupt = [&](const std::string& why) {
    return Status::Corrupt(path_ + ": compressed cluster at " + Hex(extent.host) + " (" +
                           std::to_string(extent.compressed_bytes) + " bytes) cannot be decompressed: " + why);
  };
  ThreadInflater& state = Inflater();
  if (header_.compression == Qcow2Compression::kZlib) {
    z_stream& stream = state.zlib;
    if (!state.zlib_ready) {
      stream = z_stream{};
      if (inflateInit2(&stream, -15) != Z_OK) return Status::Error(ENOMEM, "zlib: cannot start inflating");
      state.zlib_ready = true;
    } else if (inflateReset2(&stream, -15) != Z_OK) {
      return Status::Error(EINVAL, "zlib: cannot reset the inflating stream");
    }
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    stream.avail_in = static_cast<uInt>(in.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    const int ret = inflate(&stream, Z_FINISH);
    const uInt left = stream.avail_out;
    // Decompression stops once a whole cluster came out; what follows in
    // the last sector may belong to another cluster.
    if (ret != Z_STREAM_END && ret != Z_OK && ret != Z_BUF_ERROR) return corrupt("zlib error " + std::to_string(ret));
    if (left != 0) return corrupt("it holds " + std::to_string(out.size() - left) + " bytes, not a whole cluster");
    return Status::Ok();
  }

  std::unique_ptr<ZSTD_DCtx, ZstdDCtxDeleter>& context = state.zstd;
  if (!context) {
    context.reset(ZSTD_createDCtx());
    if (!context) return Status::Error(ENOMEM, "zstd: cannot make a decompression context");
    // A cluster is at most 2 MiB: refuse frames that ask for larger windows.
    // Resetting the session (below) keeps this parameter.
    ZSTD_DCtx_setParameter(context.get(), ZSTD_d_windowLogMax, 22);
  }
  ZSTD_DCtx_reset(context.get(), ZSTD_reset_session_only);
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  ZSTD_outBuffer output{out.data(), out.size(), 0};
  while (output.pos < output.size) {
    const size_t in_before = input.pos;
    const size_t out_before = output.pos;
    const size_t ret = ZSTD_decompressStream(context.get(), &output, &input);
    if (ZSTD_isError(ret)) return corrupt(std::string("zstd: ") + ZSTD_getErrorName(ret));
    if (ret == 0) break;                                            // the frame is complete
    if (input.pos == in_before && output.pos == out_before) break;  // no progress: input used up
  }
  if (output.pos != output.size) {
    return corrupt("it holds " + std::to_string(output.pos) + " bytes, not a whole cluster");
  }
  return Status::Ok();
}

Status Qcow2Driver::Decompressed(const Extent& extent, ClusterBuffer* out) {
  ClusterBuffer cluster;
  {
    std::lock_guard lock(decompressed_mutex_);
    for (const auto& [key, data] : decompressed_) {
      if (data && key == extent.descriptor) {
        *out = data;
        return Status::Ok();
      }
    }
    if (!spare_.empty()) {
      cluster = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  // Not zero-filled: Inflate writes every byte or fails.
  if (!cluster) cluster.reset(new char[header_.cluster_size()]);
  CompressedJob job{extent, cluster.get(), 0, Status::Ok()};
  CORFS_RETURN_IF_ERROR(InflateJobs(std::span(&job, 1)));

  std::lock_guard lock(decompressed_mutex_);
  ClusterBuffer evicted = std::move(decompressed_[decompressed_next_].second);
  decompressed_[decompressed_next_] = {extent.descriptor, cluster};
  decompressed_next_ = (decompressed_next_ + 1) % kDecompressedSlots;
  // Readers copy the pointer under this lock, so a count of 1 here means
  // none holds it or can get it; the fence orders their last reads of it
  // (before their release of the count) before our next write into it.
  if (evicted && evicted.use_count() == 1 && spare_.size() < kSpareBuffers) {
    std::atomic_thread_fence(std::memory_order_acquire);
    spare_.push_back(std::move(evicted));
  }
  *out = std::move(cluster);
  return Status::Ok();
}

Status Qcow2Driver::InflateJobs(std::span<CompressedJob> jobs) {
  if (jobs.empty()) return Status::Ok();
  // Compressed clusters whose bytes touch or overlap in the file (they
  // share the last sector of one and the first of the next when written
  // back to back) are read with one pread; the input buffer holds each such
  // run once, and each job points into it.
  struct Run {
    uint64_t start, end;
    size_t at;
  };
  std::vector<Run> runs;
  size_t total = 0;
  for (CompressedJob& job : jobs) {
    const uint64_t start = job.extent.host;
    const uint64_t end = start + job.extent.compressed_bytes;  // host < 2^56, bytes < 2^23: no overflow
    if (!runs.empty() && start >= runs.back().start && start <= runs.back().end) {
      Run& run = runs.back();
      if (end > run.end) {
        total += end - run.end;
        run.end = end;
      }
      job.in_at = run.at + (start - run.start);
    } else {
      runs.push_back({start, end, total});
      job.in_at = total;
      total += end - start;
    }
  }
  // compressed_bytes <= 2 * cluster size + 512 by the descriptor's layout;
  // bytes past the end of the file read as zeros.
  InputBuffer& input = ThreadInput();
  char* in = input.Get(total);
  Status status;
  for (const Run& run : runs) {
    status = file_->Read(run.start, std::span<char>(in + run.at, run.end - run.start));
    if (!status.ok()) break;
  }
  if (status.ok()) {
    const uint64_t cluster_size = header_.cluster_size();
    auto inflate_one = [&](CompressedJob& job) {
      job.status = Inflate(std::span<const char>(in + job.in_at, job.extent.compressed_bytes),
                           std::span<char>(job.out, cluster_size), job.extent);
    };
    if (jobs.size() >= kParallelMinClusters) {
      InflateArena().execute([&] {
        tbb::parallel_for(size_t{0}, jobs.size(), [&](size_t i) { inflate_one(jobs[i]); });
      });
    } else {
      for (CompressedJob& job : jobs) inflate_one(job);
    }
    for (const CompressedJob& job : jobs) {
      if (!job.status.ok()) {
        status = job.status;
        break;
      }
    }
  }
  input.Trim();
  return status;
}

Status Qcow2Driver::Read(uint64_t offset, std::span<char> buf) {
  // Data extents that follow each other in the file are read with one read.
  size_t pending_at = 0, pending_length = 0;
  uint64_t pending_host = 0;
  auto flush = [&]() -> Status {
    if (pending_length == 0) return Status::Ok();
    Status read = file_->Read(pending_host, buf.subspan(pending_at, pending_length));
    pending_length = 0;
    return read;
  };
  // Whole compressed clusters are gathered while mapping and inflated in
  // batches, straight into `buf`.
  const uint64_t cluster_size = header_.cluster_size();
  std::vector<CompressedJob> jobs;
  uint64_t jobs_input = 0;
  auto inflate_jobs = [&]() -> Status {
    Status status = InflateJobs(jobs);
    jobs.clear();
    jobs_input = 0;
    return status;
  };
  const uint64_t size = header_.size;
  size_t done = 0;
  while (done < buf.size()) {
    const uint64_t pos = offset + done;
    if (offset >= size || pos >= size) {  // past the virtual size: zeros
      std::memset(buf.data() + done, 0, buf.size() - done);
      break;
    }
    Extent extent;
    CORFS_RETURN_IF_ERROR(Map(pos, &extent));
    const size_t n = static_cast<size_t>(std::min<uint64_t>({extent.length, buf.size() - done, size - pos}));
    switch (extent.kind) {
      case Kind::kData:
        if (pending_length > 0 && pending_at + pending_length == done && pending_host + pending_length == extent.host) {
          pending_length += n;
        } else {
          CORFS_RETURN_IF_ERROR(flush());
          pending_at = done;
          pending_host = extent.host;
          pending_length = n;
        }
        break;
      case Kind::kZero:
      case Kind::kUnallocated: std::memset(buf.data() + done, 0, n); break;
      case Kind::kCompressed: {
        const uint64_t in_cluster = pos & (cluster_size - 1);
        if (in_cluster == 0 && n == cluster_size) {
          if (jobs_input + extent.compressed_bytes > kBatchInputBytes && !jobs.empty()) {
            CORFS_RETURN_IF_ERROR(inflate_jobs());
          }
          jobs.push_back({extent, buf.data() + done, 0, Status::Ok()});
          jobs_input += extent.compressed_bytes;
          break;
        }
        ClusterBuffer cluster;
        CORFS_RETURN_IF_ERROR(Decompressed(extent, &cluster));
        std::memcpy(buf.data() + done, cluster.get() + in_cluster, n);
        break;
      }
    }
    done += n;
  }
  CORFS_RETURN_IF_ERROR(flush());
  return inflate_jobs();
}

Status Qcow2Driver::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  const uint64_t size = header_.size;
  if (offset >= size) {
    *out = {Classify(Kind::kUnallocated), length};
    return Status::Ok();
  }
  length = std::min(length, size - offset);
  Extent extent;
  CORFS_RETURN_IF_ERROR(Map(offset, &extent));
  const Allocation kind = Classify(extent.kind);
  uint64_t run = std::min(extent.length, length);
  while (run < length) {
    // A damaged entry further on ends the run here; it is reported when
    // the caller asks about it.
    if (!Map(offset + run, &extent).ok() || Classify(extent.kind) != kind) break;
    run += std::min(extent.length, length - run);
  }
  *out = {kind, run};
  return Status::Ok();
}

}  // namespace corfs::overlay
