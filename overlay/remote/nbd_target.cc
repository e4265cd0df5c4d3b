#include "overlay/remote/nbd_target.h"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

using Clock = NbdConnection::Clock;

// Zeros are written as data, in pieces this large, to a server without
// NBD_CMD_WRITE_ZEROES.
constexpr uint64_t kZeroPiece = 1 << 20;

}  // namespace

NbdTarget::NbdTarget(std::string uri, std::string shown, std::string tls_username, const RemoteOptions& options,
                     std::unique_ptr<NbdConnection> connection)
    : uri_(std::move(uri)),
      shown_(std::move(shown)),
      tls_username_(std::move(tls_username)),
      options_(options),
      size_(connection->info().size),
      connection_(std::move(connection)) {}

Status NbdTarget::Open(const std::string& uri, uint64_t size, const RemoteOptions& options,
                       std::unique_ptr<NbdTarget>* out) {
  const std::string shown = RedactCredentials(uri);
  std::string tls_username;
  if (auto found = options.uri_credentials.find(shown); found != options.uri_credentials.end()) {
    tls_username = found->second.user;
  }
  std::unique_ptr<NbdConnection> connection;
  Status connected =
      NbdConnection::Connect(uri, shown, tls_username, Clock::now() + options.connect_timeout, &connection);
  if (!connected.ok()) return Status::Error(EIO, "target " + connected.message());
  const NbdConnection::ExportInfo& info = connection->info();
  if (info.read_only) {
    return Status::Error(EROFS, "target " + shown +
                                    " is exported read-only; export it writable (qemu-nbd without -r, nbdkit "
                                    "without -r)");
  }
  if (info.size != size) {
    return Status::Invalid("target " + shown + " has " + std::to_string(info.size) + " bytes, the disk " +
                           std::to_string(size));
  }
  out->reset(new NbdTarget(uri, shown, std::move(tls_username), options, std::move(connection)));
  return Status::Ok();
}

template <typename Request>
Status NbdTarget::WithConnection(Request&& request) {
  std::lock_guard lock(mutex_);
  if (connection_ == nullptr || !connection_->usable()) {
    std::unique_ptr<NbdConnection> connection;
    CORFS_RETURN_IF_ERROR(NbdConnection::Connect(uri_, shown_, tls_username_, Clock::now() + options_.connect_timeout,
                                                 &connection));
    if (connection->info().size != size_ || connection->info().read_only) {
      return Status::Error(ESTALE, shown_ + ": the export changed (size or writability) since the job began");
    }
    connection_ = std::move(connection);
  }
  return request(*connection_, Clock::now() + options_.request_timeout);
}

Status NbdTarget::Read(uint64_t offset, std::span<char> buf) {
  return WithConnection([&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Read(offset, buf, deadline);
  });
}

Status NbdTarget::Write(uint64_t offset, std::span<const char> data) {
  return WithConnection([&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Write(offset, data, deadline);
  });
}

Status NbdTarget::Flush() {
  return WithConnection([&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Flush(deadline);
  });
}

Status NbdTarget::Discard(uint64_t offset, uint64_t length) {
  return WithConnection([&](NbdConnection& connection, Clock::time_point deadline) -> Status {
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
  *out = {Allocation::kData, std::min(length, size_ - std::min(offset, size_))};
  return Status::Ok();
}

}  // namespace corfs::overlay
