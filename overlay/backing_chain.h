#pragma once
// BackingChain: the read-only images below an overlay, top first.
//
// A read asks the top layer; what it does not hold (kUnallocated) falls
// through to the next layer, and what no layer holds reads as zeros. Each
// layer is seen only up to its own size and the size of every layer above it:
// past the end of a backing image the disk reads zeros, whatever lies below,
// as in QEMU.
//
// Threading: a chain does not change once made (the overlay replaces it
// whole when its chain changes), and every method may be called from
// several threads at once, as BlockDriver allows for its reads.

#include <memory>
#include <vector>

#include "overlay/block_driver.h"

namespace corfs::overlay {

// What the layers above layer `end_layer` of a chain (the upper layers) say
// about a run of the disk: what a stream down to that layer (its base)
// needs to know to move the run into the overlay.
struct UpperLayersStatus {
  // kData or kZero: an upper layer holds the run, or knows it is zero;
  // kUnallocated: none does, and what shows there comes from the layers
  // below them.
  BlockStatus status;
  // Layers from `end_layer` down exist (with none, kUnallocated reads as zeros).
  bool has_lower_layers = false;
  // The run lies past the end of an upper layer but inside layer
  // `end_layer`: the disk reads zeros there (status is kZero) while that
  // layer has bytes there, which would show once the upper layers were gone.
  bool hides_lower_bytes = false;
};

class BackingChain {
 public:
  BackingChain() = default;  // no backing: everything reads as zeros
  BackingChain(std::vector<std::unique_ptr<BlockDriver>> layers, uint64_t disk_size);
  BackingChain(std::vector<std::shared_ptr<BlockDriver>> layers, uint64_t disk_size);

  // The chain from layer `first` down, as the chain of a disk of `disk_size`
  // (what is left when the layers above `first` are streamed into the overlay).
  std::shared_ptr<BackingChain> Suffix(size_t first, uint64_t disk_size) const;

  // The chain without layers [first, end) (what is left when a commit wrote
  // them into layer `end`), as the chain of a disk of `disk_size`.
  std::shared_ptr<BackingChain> Without(size_t first, size_t end, uint64_t disk_size) const;

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

  // The file of the one raw layer (BlockDriver::data_fd) that holds all of
  // [offset, offset + length) as data, at the same offsets; -1 when no
  // such layer does (the range spans layers or holes, or its layer is not a
  // raw file).
  int FileHolding(uint64_t offset, uint64_t length);
  // Whether every layer is a raw file (BlockDriver::data_fd): a read of the
  // chain then costs a read of local files, not a server's round trip or a
  // decompression.
  bool AllRawFiles() const { return all_raw_files_; }

  // Fails (EIO) if some layer's file changed since it was opened
  // (BlockDriver::CheckUnchanged).
  Status CheckUnchanged() const;

  // The run at `offset` (at most `length` bytes) as the top `end_layer`
  // layers see it; an `end_layer` past the bottom means the whole chain.
  Status GetUpperLayersStatus(uint64_t offset, uint64_t length, size_t end_layer, UpperLayersStatus* out);

 private:
  // An opened backing image, and how much of it shows.
  struct Layer {
    std::shared_ptr<BlockDriver> driver;  // shared: images over one template open it once
    uint64_t visible_size;                // min(disk size, size of this layer and of all above)
  };

  Status ReadFrom(size_t layer, size_t end_layer, uint64_t offset, std::span<char> buf);

  uint64_t disk_size_ = 0;
  std::vector<Layer> layers_;
  bool all_raw_files_ = true;  // AllRawFiles: a chain's layers do not change
};

}  // namespace corfs::overlay
