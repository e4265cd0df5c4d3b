#include "overlay/remote/nbd_target.h"

#include <algorithm>
#include <cerrno>
#include <vector>

namespace corfs::overlay {

namespace {

using Clock = NbdConnection::Clock;

// Zeros are written as data, in pieces this large, to a server without
// NBD_CMD_WRITE_ZEROES.
constexpr uint64_t kZeroPiece = 1 << 20;

}  // namespace

Status NbdTarget::Open(const std::string& uri, uint64_t size, const RemoteOptions& options,
                       std::unique_ptr<NbdTarget>* out) {
  std::unique_ptr<NbdConnectionPool> pool;
  Status connected = NbdConnectionPool::Open(uri, options, /*writable=*/true, &pool);
  if (!connected.ok()) return Status::Error(EIO, "target " + connected.message());
  const NbdConnection::ExportInfo& info = pool->info();
  if (info.read_only) {
    return Status::Error(EROFS, "target " + pool->shown() +
                                    " is exported read-only; export it writable (qemu-nbd without -r, nbdkit "
                                    "without -r)");
  }
  if (info.size != size) {
    return Status::Invalid("target " + pool->shown() + " has " + std::to_string(info.size) + " bytes, the disk " +
                           std::to_string(size));
  }
  out->reset(new NbdTarget(std::move(pool)));
  return Status::Ok();
}

Status NbdTarget::Read(uint64_t offset, std::span<char> buf) {
  return pool_->Run("read", 0, [&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Read(offset, buf, deadline);
  });
}

Status NbdTarget::Write(uint64_t offset, std::span<const char> data) {
  return pool_->Run("write", 0, [&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Write(offset, data, deadline);
  });
}

Status NbdTarget::Flush() {
  return pool_->Run("flush", 0,
                    [&](NbdConnection& connection, Clock::time_point deadline) { return connection.Flush(deadline); });
}

Status NbdTarget::Discard(uint64_t offset, uint64_t length) {
  return pool_->Run("zeroing", 0, [&](NbdConnection& connection, Clock::time_point deadline) -> Status {
    if (connection.info().can_zero) return connection.Zero(offset, length, deadline);
    const std::vector<char> zeros(std::min(length, kZeroPiece), 0);
    for (uint64_t done = 0; done < length;) {
      const uint64_t n = std::min<uint64_t>(length - done, zeros.size());
      CORFS_RETURN_IF_ERROR(connection.Write(offset + done, std::span(zeros.data(), n), deadline));
      done += n;
    }
    return Status::Ok();
  });
}

Status NbdTarget::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  // A target is written, not read as a chain: all data.
  *out = {Allocation::kData, std::min(length, size() - std::min(offset, size()))};
  return Status::Ok();
}

}  // namespace corfs::overlay
