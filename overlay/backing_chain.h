#pragma once
// BackingChain: the read-only images below an overlay, top first.
//
// A read asks the top layer; what it does not hold (kUnallocated) falls
// through to the next layer, and what no layer holds reads as zeros. Each
// layer is seen only up to its own size and the size of every layer above it:
// past the end of a backing image the disk reads zeros, whatever lies below,
// as in QEMU.

#include <memory>
#include <vector>

#include "overlay/block_driver.h"

namespace corfs::overlay {

class BackingChain {
 public:
  BackingChain() = default;  // no backing: everything reads as zeros
  BackingChain(std::vector<std::unique_ptr<BlockDriver>> layers, uint64_t disk_size);
  BackingChain(std::vector<std::shared_ptr<BlockDriver>> layers, uint64_t disk_size);

  // The chain from layer `first` down, as the chain of a disk of `disk_size`
  // (what is left when the layers above `first` are streamed into the overlay).
  std::shared_ptr<BackingChain> Suffix(size_t first, uint64_t disk_size) const;

  size_t depth() const { return layers_.size(); }
  BlockDriver& layer(size_t i) const { return *layers_[i].driver; }
  // Bytes of layer i that show: its size, cut at the size of every layer above.
  uint64_t visible_size(size_t i) const { return layers_[i].visible_size; }

  // Reads the merged content of the top `end_layer` layers (all by default).
  Status Read(uint64_t offset, std::span<char> buf) { return Read(offset, buf, depth()); }
  Status Read(uint64_t offset, std::span<char> buf, size_t end_layer);

  // Allocation of the merged view: kData if some layer holds the range,
  // kZero if a layer says it is zero, kUnallocated if none of the top
  // `end_layer` layers holds it.
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
    return GetBlockStatus(offset, length, depth(), out);
  }
  Status GetBlockStatus(uint64_t offset, uint64_t length, size_t end_layer, BlockStatus* out) {
    return GetBlockStatus(offset, length, end_layer, out, nullptr);
  }
  // As above; for kData and kZero, *layer is the index of the layer that
  // holds the run.
  Status GetBlockStatus(uint64_t offset, uint64_t length, size_t end_layer, BlockStatus* out, size_t* layer);

 private:
  struct Layer {
    std::shared_ptr<BlockDriver> driver;  // shared: images over one template open it once
    uint64_t visible_size;  // min(disk size, size of this layer and of all above)
  };

  Status ReadFrom(size_t layer, size_t end_layer, uint64_t offset, std::span<char> buf);

  std::vector<Layer> layers_;
};

}  // namespace corfs::overlay
