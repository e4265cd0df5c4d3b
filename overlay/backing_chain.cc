#include "overlay/backing_chain.h"

#include <algorithm>
#include <cstring>

namespace corfs::overlay {

BackingChain::BackingChain(std::vector<std::unique_ptr<BlockDriver>> layers, uint64_t disk_size)
    : BackingChain(std::vector<std::shared_ptr<BlockDriver>>(std::make_move_iterator(layers.begin()),
                                                             std::make_move_iterator(layers.end())),
                   disk_size) {}

BackingChain::BackingChain(std::vector<std::shared_ptr<BlockDriver>> layers, uint64_t disk_size)
    : disk_size_(disk_size) {
  uint64_t visible = disk_size;
  for (auto& driver : layers) {
    visible = std::min(visible, driver->size());
    all_raw_files_ = all_raw_files_ && driver->data_fd() >= 0;
    layers_.push_back({std::move(driver), visible});
  }
}

std::shared_ptr<BackingChain> BackingChain::Suffix(size_t first, uint64_t disk_size) const {
  std::vector<std::shared_ptr<BlockDriver>> rest;
  for (size_t i = first; i < layers_.size(); ++i) rest.push_back(layers_[i].driver);
  return std::make_shared<BackingChain>(std::move(rest), disk_size);
}

std::shared_ptr<BackingChain> BackingChain::Without(size_t first, size_t end, uint64_t disk_size) const {
  std::vector<std::shared_ptr<BlockDriver>> rest;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (i < first || i >= end) rest.push_back(layers_[i].driver);
  }
  return std::make_shared<BackingChain>(std::move(rest), disk_size);
}

Status BackingChain::Read(uint64_t offset, std::span<char> buf, size_t end_layer) {
  return ReadFrom(0, std::min(end_layer, depth()), offset, buf);
}

Status BackingChain::ReadFrom(size_t layer, size_t end_layer, uint64_t offset, std::span<char> buf) {
  uint64_t pos = 0;
  while (pos < buf.size()) {
    const uint64_t at = offset + pos;
    std::span<char> rest = buf.subspan(pos);
    if (layer >= end_layer || at >= layers_[layer].visible_size) {
      std::memset(rest.data(), 0, rest.size());
      return Status::Ok();
    }
    BlockDriver& driver = *layers_[layer].driver;
    const uint64_t limit = std::min<uint64_t>(rest.size(), layers_[layer].visible_size - at);
    BlockStatus status;
    CORFS_RETURN_IF_ERROR(driver.GetBlockStatus(at, limit, &status));
    std::span<char> run = rest.first(std::min<uint64_t>(status.length, limit));
    switch (status.allocation) {
      case Allocation::kData: CORFS_RETURN_IF_ERROR(driver.Read(at, run)); break;
      case Allocation::kZero: std::memset(run.data(), 0, run.size()); break;
      case Allocation::kUnallocated: CORFS_RETURN_IF_ERROR(ReadFrom(layer + 1, end_layer, at, run)); break;
    }
    pos += run.size();
  }
  return Status::Ok();
}

int BackingChain::FileHolding(uint64_t offset, uint64_t length) {
  BlockStatus status;
  size_t layer = 0;
  if (!GetBlockStatus(offset, length, depth(), &status, &layer).ok()) return -1;
  if (status.allocation != Allocation::kData || status.length < length) return -1;
  return this->layer(layer).data_fd();
}

Status BackingChain::GetBlockStatus(uint64_t offset, uint64_t length, size_t end_layer, BlockStatus* out,
                                    size_t* layer) {
  end_layer = std::min(end_layer, depth());
  for (size_t i = 0; i < end_layer; ++i) {
    if (offset >= layers_[i].visible_size) break;  // past this layer's end: zeros
    length = std::min(length, layers_[i].visible_size - offset);
    BlockStatus status;
    CORFS_RETURN_IF_ERROR(layers_[i].driver->GetBlockStatus(offset, length, &status));
    if (status.allocation != Allocation::kUnallocated) {
      *out = status;
      if (layer != nullptr) *layer = i;
      return Status::Ok();
    }
    // Nothing here for status.length bytes: the answer for that run comes
    // from the layers below.
    length = std::min(length, status.length);
  }
  *out = {Allocation::kUnallocated, length};
  return Status::Ok();
}

Status BackingChain::GetUpperLayersStatus(uint64_t offset, uint64_t length, size_t end_layer, UpperLayersStatus* out) {
  end_layer = std::min(end_layer, depth());
  *out = {};
  out->has_lower_layers = end_layer < depth();
  if (out->has_lower_layers) {
    // Past the end of an upper layer the disk reads zeros, while layer
    // `end_layer` may hold bytes there. Today that layer shows up to
    // visible_size(end_layer), which is cut at the end of every upper
    // layer; without them it would show up to its own size (cut at the
    // disk's). Its bytes in between are hidden now.
    const uint64_t hidden_from = visible_size(end_layer);
    const uint64_t lower_end = std::min(disk_size_, layers_[end_layer].driver->size());
    if (offset >= hidden_from && offset < lower_end) {
      out->status = {Allocation::kZero, std::min(length, lower_end - offset)};
      out->hides_lower_bytes = true;
      return Status::Ok();
    }
  }
  return GetBlockStatus(offset, length, end_layer, &out->status);
}

Status BackingChain::CheckUnchanged() const {
  for (const Layer& layer : layers_) CORFS_RETURN_IF_ERROR(layer.driver->CheckUnchanged());
  return Status::Ok();
}

}  // namespace corfs::overlay
