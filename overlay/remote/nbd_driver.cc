#include "overlay/remote/nbd_driver.h"

#include <libnbd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace corfs::overlay {

namespace {

using Clock = NbdConnection::Clock;

// A backing image's failures are EIO to its callers, in the server's words.
Status AsIoError(Status status) {
  if (status.ok()) return status;
  return Status::Error(EIO, status.message());
}

Allocation AllocationOf(uint32_t flags) {
  const bool hole = (flags & LIBNBD_STATE_HOLE) != 0;
  const bool zero = (flags & LIBNBD_STATE_ZERO) != 0;
  if (hole && zero) return Allocation::kUnallocated;
  if (zero) return Allocation::kZero;
  return Allocation::kData;
}

}  // namespace

Status OpenNbdImage(const std::string& uri, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out) {
  std::unique_ptr<NbdDriver> driver;
  CORFS_RETURN_IF_ERROR(NbdDriver::Open(uri, options, &driver));
  *out = std::move(driver);
  return Status::Ok();
}

Status NbdDriver::Open(const std::string& uri, const RemoteOptions& options, std::unique_ptr<NbdDriver>* out) {
  std::unique_ptr<NbdConnectionPool> pool;
  CORFS_RETURN_IF_ERROR(NbdConnectionPool::Open(uri, options, /*writable=*/false, &pool));
  out->reset(new NbdDriver(std::move(pool), options.retries));
  return Status::Ok();
}

Status NbdDriver::Read(uint64_t offset, std::span<char> buf) {
  if (buf.empty()) return Status::Ok();
  // Past the end reads as zeros (the BlockDriver contract).
  const uint64_t inside = offset >= size_ ? 0 : std::min<uint64_t>(buf.size(), size_ - offset);
  std::fill(buf.begin() + static_cast<ptrdiff_t>(inside), buf.end(), 0);
  if (inside == 0) return Status::Ok();
  buf = buf.first(inside);
  const uint64_t start = offset / min_request_ * min_request_;
  const uint64_t end = std::min(size_, (offset + inside + min_request_ - 1) / min_request_ * min_request_);
  if (start == offset && end == offset + inside) return ReadAligned(offset, buf);
  // A server with a minimum block size (rare) is read through a bounce
  // buffer of whole blocks.
  std::vector<char> whole(end - start);
  CORFS_RETURN_IF_ERROR(ReadAligned(start, whole));
  std::memcpy(buf.data(), whole.data() + (offset - start), inside);
  return Status::Ok();
}

Status NbdDriver::ReadAligned(uint64_t offset, std::span<char> buf) {
  const std::string what = "read of " + std::to_string(buf.size()) + " bytes at " + std::to_string(offset);
  return AsIoError(pool_->Run(what, retries_, [&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Read(offset, buf, deadline);
  }));
}

Status NbdDriver::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  length = std::min(length, size_ - std::min(offset, size_));
  if (!pool_->info().allocation || length == 0) {
    *out = {Allocation::kData, std::max<uint64_t>(length, 1)};
    return Status::Ok();
  }
  const uint64_t start = offset / min_request_ * min_request_;
  const uint64_t end = std::min(size_, (offset + length + min_request_ - 1) / min_request_ * min_request_);
  std::vector<NbdConnection::Extent> extents;
  const std::string what = "block status at " + std::to_string(offset);
  CORFS_RETURN_IF_ERROR(AsIoError(pool_->Run(what, retries_,
                                             [&](NbdConnection& connection, Clock::time_point deadline) {
                                               return connection.BlockStatus(start, end - start, deadline, &extents);
                                             })));
  // The first run of one allocation, from `offset` on, within the query.
  const Allocation allocation = AllocationOf(extents.front().flags);
  uint64_t run_end = start;
  for (const NbdConnection::Extent& extent : extents) {
    if (AllocationOf(extent.flags) != allocation || extent.length == 0) break;
    run_end += extent.length;
  }
  if (run_end <= offset) {
    // A block that straddles `offset` is data: the caller must read it.
    *out = {Allocation::kData, std::min<uint64_t>(length, min_request_ - (offset - start))};
    return Status::Ok();
  }
  *out = {allocation, std::min(run_end, offset + length) - offset};
  return Status::Ok();
}

Status NbdDriver::CheckUnchanged() const { return AsIoError(pool_->CheckUnchanged()); }

Status NbdDriver::Write(uint64_t /*offset*/, std::span<const char> /*data*/) {
  return Status::Error(EROFS, path() + ": an NBD backing image is read-only");
}

Status NbdDriver::Flush() { return Status::Ok(); }

Status NbdDriver::Discard(uint64_t /*offset*/, uint64_t /*length*/) {
  return Status::Error(EROFS, path() + ": an NBD backing image is read-only");
}

}  // namespace corfs::overlay
