#include "overlay/content_hash.h"

#include <fcntl.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/hex.h"
#include "overlay/scratch_buffer.h"

namespace corfs::overlay {

namespace {

// Large enough that the fixed cost of a read is noise next to its copy, and
// small enough that a chunk is still in the CPU's cache when it is hashed:
// the copy out of the page cache, not the hash, is what costs.
constexpr uint64_t kChunkBytes = 256 * 1024;
constexpr uint64_t kBuffers = 8;

// Chunk buffers handed between a reader thread and the hashing thread: the
// reader fills chunk i while the chunks before it are hashed.
class ChunkPipeline {
 public:
  ChunkPipeline(BlockDriver& image, uint64_t size) : image_(image), size_(size) {
    for (auto& buffer : buffers_) buffer = std::make_unique<ScratchBuffer>(kChunkBytes);
    chunks_ = (size + kChunkBytes - 1) / kChunkBytes;
    reader_ = std::jthread([this](const std::stop_token& stop) { ReadAll(stop); });
  }
  ChunkPipeline(const ChunkPipeline&) = delete;
  ChunkPipeline& operator=(const ChunkPipeline&) = delete;
  ~ChunkPipeline() {
    reader_.request_stop();
    { std::lock_guard lock(mutex_); }
    changed_.notify_all();
  }

  uint64_t chunks() const { return chunks_; }

  // Waits for chunk `i` (taken in order) and returns its bytes, or the
  // error reading it.
  Status Take(uint64_t i, std::span<const char>* out) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return read_ > i || !error_.ok(); });
    if (read_ <= i) return error_;
    *out = buffers_[i % kBuffers]->span().first(ChunkLength(i));
    return Status::Ok();
  }

  // Chunk `i` is hashed: its buffer may be filled again.
  void Release(uint64_t i) {
    {
      std::lock_guard lock(mutex_);
      released_ = i + 1;
    }
    changed_.notify_all();
  }

 private:
  uint64_t ChunkLength(uint64_t i) const { return std::min(kChunkBytes, size_ - i * kChunkBytes); }

  void ReadAll(const std::stop_token& stop) {
    for (uint64_t i = 0; i < chunks_; ++i) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return released_ + kBuffers > i || stop.stop_requested(); });
        if (stop.stop_requested()) return;
      }
      Status status = image_.Read(i * kChunkBytes, buffers_[i % kBuffers]->span().first(ChunkLength(i)));
      {
        std::lock_guard lock(mutex_);
        if (!status.ok()) {
          error_ = status;
        } else {
          read_ = i + 1;
        }
      }
      changed_.notify_all();
      if (!status.ok()) return;
    }
  }

  BlockDriver& image_;
  const uint64_t size_;
  uint64_t chunks_ = 0;
  std::array<std::unique_ptr<ScratchBuffer>, kBuffers> buffers_;
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t read_ = 0;      // chunks [0, read_) are in their buffers
  uint64_t released_ = 0;  // chunks [0, released_) are hashed
  Status error_;
  std::jthread reader_;  // last: it stops and joins before the members it uses go
};

}  // namespace

std::string ContentHash::ToString() const { return Hex16(high) + Hex16(low); }

Status ComputeContentHash(BlockDriver& driver, ContentHash* out) {
  BlockDriver& image = driver.identity_source();
  const uint64_t size = image.size();
  // A hint only: the kernel reads further ahead for a sequential reader.
  if (image.data_fd() >= 0) (void)::posix_fadvise(image.data_fd(), 0, 0, POSIX_FADV_SEQUENTIAL);

  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  if (!state) return Status::Error(ENOMEM, "out of memory hashing " + image.path());
  XXH3_128bits_reset(state.get());
  unsigned char size_bytes[8];
  for (size_t i = 0; i < sizeof size_bytes; ++i) size_bytes[i] = static_cast<unsigned char>(size >> (8 * i));
  XXH3_128bits_update(state.get(), size_bytes, sizeof size_bytes);

  ChunkPipeline pipeline(image, size);
  for (uint64_t i = 0; i < pipeline.chunks(); ++i) {
    std::span<const char> chunk;
    Status read = pipeline.Take(i, &chunk);
    if (!read.ok()) return read.WithContext("hashing " + image.path());
    XXH3_128bits_update(state.get(), chunk.data(), chunk.size());
    pipeline.Release(i);
  }
  const XXH128_hash_t digest = XXH3_128bits_digest(state.get());
  *out = {digest.low64, digest.high64};
  return Status::Ok();
}

}  // namespace corfs::overlay
