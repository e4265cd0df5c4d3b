#pragma once
// ScratchBuffer: memory for copying clusters or bitmap pages, not
// zero-initialised (unlike a vector): every byte is written before it is read.
// Owned by one thread.

#include <cstddef>
#include <memory>
#include <span>

namespace corfs::overlay {

class ScratchBuffer {
 public:
  explicit ScratchBuffer(size_t bytes) : data_(new char[bytes]), size_(bytes) {}
  std::span<char> span() { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

}  // namespace corfs::overlay
