#include "overlay/remote/nbd_driver.h"

#include <libnbd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

using Clock = NbdConnection::Clock;

// Failures no retry mends: the server has no such export, the URI is bad,
// TLS refused us, the export changed.
bool Permanent(const Status& status) {
  switch (status.code()) {
    case ENOENT:
    case EINVAL:
    case ENOTSUP:
    case EPERM:
    case EACCES:
    case ESTALE: return true;
    default: return false;
  }
}

// The message of a connect failure, saying plainly what ENOENT means.
Status Explain(const Status& status, const std::string& shown) {
  if (status.code() != ENOENT) return status;
  return Status::Error(ENOENT, shown + ": the server has no such export (" + status.message() + ")");
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

NbdDriver::NbdDriver(std::string uri, std::string shown, const RemoteOptions& options, std::string tls_username,
                     std::unique_ptr<NbdConnection> first)
    : uri_(std::move(uri)), shown_(std::move(shown)), options_(options), tls_username_(std::move(tls_username)) {
  const NbdConnection::ExportInfo& info = first->info();
  size_ = info.size;
  min_request_ = info.min_request;
  allocation_ = info.allocation;
  max_connections_ = info.multi_conn ? std::max(options.connections, 1u) : 1;
  idle_.push_back(std::move(first));
  open_ = 1;
}

Status NbdDriver::Open(const std::string& uri, const RemoteOptions& options, std::unique_ptr<NbdDriver>* out) {
  const std::string shown = RedactCredentials(uri);
  // In NBD a user name is the TLS (PSK) identity; there is no password.
  std::string tls_username;
  if (auto found = options.uri_credentials.find(shown); found != options.uri_credentials.end()) {
    tls_username = found->second.user;
  }
  // Opening tries once: a server that is not there is reported at once,
  // not after the retries meant for a server that went away.
  std::unique_ptr<NbdConnection> first;
  Status connected = NbdConnection::Connect(uri, shown, tls_username, Clock::now() + options.connect_timeout, &first);
  if (!connected.ok()) return Status::Error(EIO, Explain(connected, shown).message());
  out->reset(new NbdDriver(uri, shown, options, std::move(tls_username), std::move(first)));
  return Status::Ok();
}

Status NbdDriver::Connect(std::unique_ptr<NbdConnection>* out) const {
  std::unique_ptr<NbdConnection> connection;
  Status connected =
      NbdConnection::Connect(uri_, shown_, tls_username_, Clock::now() + options_.connect_timeout, &connection);
  if (!connected.ok()) return Explain(connected, shown_);
  if (connection->info().size != size_) {
    return Status::Error(ESTALE, shown_ + ": the export changed size from " + std::to_string(size_) + " to " +
                                     std::to_string(connection->info().size) +
                                     " bytes; its data is no longer the image that was opened");
  }
  *out = std::move(connection);
  return Status::Ok();
}

std::unique_ptr<NbdConnection> NbdDriver::Acquire(bool* may_open) {
  std::unique_lock lock(mu_);
  returned_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  *may_open = false;
  if (!idle_.empty()) {
    std::unique_ptr<NbdConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    return connection;
  }
  ++open_;
  *may_open = true;
  return nullptr;
}

void NbdDriver::Release(std::unique_ptr<NbdConnection> connection) {
  {
    std::lock_guard lock(mu_);
    if (connection != nullptr && connection->usable()) {
      idle_.push_back(std::move(connection));
    } else {
      --open_;
    }
  }
  returned_.notify_one();
}

template <typename Request>
Status NbdDriver::WithConnection(const std::string& what, Request&& request) {
  Status last;
  auto backoff = options_.backoff;
  for (unsigned attempt = 0;; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    bool may_open = false;
    std::unique_ptr<NbdConnection> connection = Acquire(&may_open);
    if (connection == nullptr) last = Connect(&connection);
    if (connection != nullptr) last = request(*connection, Clock::now() + options_.request_timeout);
    const bool broke = connection == nullptr || !connection->usable();
    Release(std::move(connection));
    if (last.ok()) return last;
    // A server that answered (with an error, or a changed export) is not
    // asked again; a connection that broke or timed out is.
    if (!broke || Permanent(last)) return Status::Error(EIO, last.message());
    if (attempt >= options_.retries) {
      return Status::Error(EIO, shown_ + ": " + what + " failed " + std::to_string(attempt + 1) +
                                    " times, the last time with: " + last.message());
    }
  }
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
  return WithConnection(what, [&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.Read(offset, buf, deadline);
  });
}

Status NbdDriver::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) {
  length = std::min(length, size_ - std::min(offset, size_));
  if (!allocation_ || length == 0) {
    *out = {Allocation::kData, std::max<uint64_t>(length, 1)};
    return Status::Ok();
  }
  const uint64_t start = offset / min_request_ * min_request_;
  const uint64_t end = std::min(size_, (offset + length + min_request_ - 1) / min_request_ * min_request_);
  std::vector<NbdConnection::Extent> extents;
  const std::string what = "block status at " + std::to_string(offset);
  CORFS_RETURN_IF_ERROR(WithConnection(what, [&](NbdConnection& connection, Clock::time_point deadline) {
    return connection.BlockStatus(start, end - start, deadline, &extents);
  }));
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

Status NbdDriver::CheckUnchanged() const {
  std::unique_ptr<NbdConnection> connection;
  Status checked = Connect(&connection);
  if (checked.ok()) return checked;
  return Status::Error(EIO, checked.message());
}

Status NbdDriver::Write(uint64_t /*offset*/, std::span<const char> /*data*/) {
  return Status::Error(EROFS, shown_ + ": an NBD backing image is read-only");
}

Status NbdDriver::Flush() { return Status::Ok(); }

Status NbdDriver::Discard(uint64_t /*offset*/, uint64_t /*length*/) {
  return Status::Error(EROFS, shown_ + ": an NBD backing image is read-only");
}

}  // namespace corfs::overlay
