#pragma once
// ForwardingDriver: a BlockDriver that hands every call to another one, for
// wrappers that change one thing (fail some reads, share a driver) and
// should repeat nothing else.

#include <memory>

#include "overlay/block_driver.h"

namespace corfs::overlay {

class ForwardingDriver : public BlockDriver {
 public:
  explicit ForwardingDriver(std::shared_ptr<BlockDriver> inner) : inner_(std::move(inner)) {}

  uint64_t size() const override { return inner_->size(); }
  const std::string& path() const override { return inner_->path(); }
  std::string format() const override { return inner_->format(); }
  BlockDriver& identity_source() override { return inner_->identity_source(); }
  Status Read(uint64_t offset, std::span<char> buf) override { return inner_->Read(offset, buf); }
  Status Write(uint64_t offset, std::span<const char> data) override { return inner_->Write(offset, data); }
  Status Flush() override { return inner_->Flush(); }
  Status Discard(uint64_t offset, uint64_t length) override { return inner_->Discard(offset, length); }
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override {
    return inner_->GetBlockStatus(offset, length, out);
  }
  Status CheckUnchanged() const override { return inner_->CheckUnchanged(); }

 protected:
  BlockDriver& inner() const { return *inner_; }

 private:
  std::shared_ptr<BlockDriver> inner_;
};

}  // namespace corfs::overlay
