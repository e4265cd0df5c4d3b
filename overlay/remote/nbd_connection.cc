#include "overlay/remote/nbd_connection.h"

#include <libnbd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace corfs::overlay {

namespace {

// Milliseconds to `deadline`, rounded up, for nbd_poll; 0 once it passed.
int MillisecondsLeft(NbdConnection::Clock::time_point deadline) {
  const auto left = deadline - NbdConnection::Clock::now();
  if (left <= NbdConnection::Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// The connection can carry commands (a ready handle, or one with commands
// in flight); otherwise it broke.
bool Alive(nbd_handle* handle) { return nbd_aio_is_ready(handle) == 1 || nbd_aio_is_processing(handle) == 1; }

// Collects the base:allocation extents of a block-status reply.
int OnExtents(void* user_data, const char* context, uint64_t /*offset*/, uint32_t* entries, size_t count,
              int* /*error*/) {
  if (std::strcmp(context, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
  auto* out = static_cast<std::vector<NbdConnection::Extent>*>(user_data);
  for (size_t i = 0; i + 1 < count; i += 2) out->push_back({entries[i], entries[i + 1]});
  return 0;
}

}  // namespace

Status NbdConnection::Connect(const std::string& uri, const std::string& shown, const std::string& tls_username,
                              Clock::time_point deadline, std::unique_ptr<NbdConnection>* out) {
  nbd_handle* handle = nbd_create();
  if (handle == nullptr) return Status::Error(ENOMEM, shown + ": " + nbd_get_error());
  std::unique_ptr<NbdConnection> connection(new NbdConnection(handle, shown));
  // Asked for before connecting: the handshake negotiates them.
  if (nbd_add_meta_context(handle, LIBNBD_CONTEXT_BASE_ALLOCATION) == -1 || nbd_set_full_info(handle, true) == -1 ||
      nbd_set_pread_initialize(handle, false) == -1 ||
      (!tls_username.empty() && nbd_set_tls_username(handle, tls_username.c_str()) == -1)) {
    return connection->Failed("setting up a connection");
  }
  if (nbd_aio_connect_uri(handle, uri.c_str()) == -1) return connection->Failed("connecting");
  while (nbd_aio_is_ready(handle) != 1) {
    if (nbd_aio_is_dead(handle) == 1 || nbd_aio_is_closed(handle) == 1) return connection->Failed("connecting");
    const int ms = MillisecondsLeft(deadline);
    if (ms == 0) {
      connection->Close();
      return Status::Error(ETIMEDOUT, shown + ": connecting: no answer within the connect timeout");
    }
    if (nbd_poll(handle, ms) == -1) return connection->Failed("connecting");
  }
  ExportInfo& info = connection->info_;
  const int64_t size = nbd_get_size(handle);
  if (size < 0) return connection->Failed("asking the export's size");
  info.size = static_cast<uint64_t>(size);
  const int64_t min_request = nbd_get_block_size(handle, LIBNBD_SIZE_MINIMUM);
  const int64_t max_request = nbd_get_block_size(handle, LIBNBD_SIZE_MAXIMUM);
  if (min_request > 0) info.min_request = static_cast<uint64_t>(min_request);
  // Without an advertised maximum, 32 MiB is what the NBD standard says
  // every server accepts.
  if (max_request > 0) info.max_request = std::min<uint64_t>(static_cast<uint64_t>(max_request), 32 << 20);
  info.max_request = std::max(info.max_request / info.min_request, uint64_t{1}) * info.min_request;
  info.multi_conn = nbd_can_multi_conn(handle) == 1;
  info.allocation = nbd_can_meta_context(handle, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
  info.read_only = nbd_is_read_only(handle) != 0;
  info.can_flush = nbd_can_flush(handle) == 1;
  info.can_zero = nbd_can_zero(handle) == 1;
  *out = std::move(connection);
  return Status::Ok();
}

NbdConnection::~NbdConnection() { Close(); }

void NbdConnection::Close() {
  if (handle_ == nullptr) return;
  nbd_close(handle_);
  handle_ = nullptr;
}

Status NbdConnection::Failed(const std::string& what) {
  const int code = nbd_get_errno();
  const char* error = nbd_get_error();
  std::string message = shown_ + ": " + what + ": " + (error != nullptr ? error : "failed");
  // NBD_ESHUTDOWN is a server's answer while it shuts down: the connection
  // is as good as gone, and the request is for a new one (a restarted
  // server) rather than an error of the request.
  if (handle_ != nullptr && (!Alive(handle_) || code == ESHUTDOWN)) Close();
  return Status::Error(code != 0 ? code : EIO, std::move(message));
}

Status NbdConnection::IssueSplit(uint64_t length, uint64_t max_part, const std::string& what,
                                 Clock::time_point deadline,
                                 const std::function<int64_t(uint64_t done, size_t length)>& issue) {
  if (handle_ == nullptr) return Status::Error(ENOTCONN, shown_ + ": " + what + ": not connected");
  std::vector<int64_t> cookies;
  for (uint64_t done = 0; done < length;) {
    const size_t part = std::min(length - done, max_part);
    const int64_t cookie = issue(done, part);
    if (cookie == -1) {
      Status failed = Failed(what);
      if (usable()) (void)Wait(cookies, deadline, what);
      return failed;
    }
    cookies.push_back(cookie);
    done += part;
  }
  return Wait(cookies, deadline, what);
}

Status NbdConnection::Read(uint64_t offset, std::span<char> buf, Clock::time_point deadline) {
  const std::string what = "read of " + std::to_string(buf.size()) + " bytes at " + std::to_string(offset);
  return IssueSplit(buf.size(), RequestPart(), what, deadline, [&](uint64_t done, size_t length) {
    return nbd_aio_pread(handle_, buf.data() + done, length, offset + done, NBD_NULL_COMPLETION, 0);
  });
}

Status NbdConnection::Write(uint64_t offset, std::span<const char> data, Clock::time_point deadline) {
  const std::string what = "write of " + std::to_string(data.size()) + " bytes at " + std::to_string(offset);
  return IssueSplit(data.size(), RequestPart(), what, deadline, [&](uint64_t done, size_t length) {
    return nbd_aio_pwrite(handle_, data.data() + done, length, offset + done, NBD_NULL_COMPLETION, 0);
  });
}

Status NbdConnection::Zero(uint64_t offset, uint64_t length, Clock::time_point deadline) {
  const std::string what = "zeroing " + std::to_string(length) + " bytes at " + std::to_string(offset);
  constexpr uint64_t kMaxZero = uint64_t{1} << 30;  // the protocol's lengths are 32 bits
  return IssueSplit(length, kMaxZero, what, deadline, [&](uint64_t done, size_t count) {
    return nbd_aio_zero(handle_, count, offset + done, NBD_NULL_COMPLETION, 0);
  });
}

Status NbdConnection::Flush(Clock::time_point deadline) {
  if (handle_ == nullptr) return Status::Error(ENOTCONN, shown_ + ": flush: not connected");
  if (!info_.can_flush) return Status::Ok();
  const int64_t cookie = nbd_aio_flush(handle_, NBD_NULL_COMPLETION, 0);
  if (cookie == -1) return Failed("flush");
  std::vector<int64_t> cookies{cookie};
  return Wait(cookies, deadline, "flush");
}

Status NbdConnection::BlockStatus(uint64_t offset, uint64_t length, Clock::time_point deadline,
                                  std::vector<Extent>* out) {
  const std::string what = "block status of " + std::to_string(length) + " bytes at " + std::to_string(offset);
  if (handle_ == nullptr) return Status::Error(ENOTCONN, shown_ + ": " + what + ": not connected");
  out->clear();
  // The protocol's lengths are 32 bits.
  const uint64_t count = std::min<uint64_t>(length, uint64_t{1} << 31);
  nbd_extent_callback on_extents{.callback = OnExtents, .user_data = out, .free = nullptr};
  const int64_t cookie = nbd_aio_block_status(handle_, count, offset, on_extents, NBD_NULL_COMPLETION, 0);
  if (cookie == -1) return Failed(what);
  std::vector<int64_t> cookies{cookie};
  CORFS_RETURN_IF_ERROR(Wait(cookies, deadline, what));
  if (out->empty()) return Status::Error(EPROTO, shown_ + ": " + what + ": the server sent no extents");
  return Status::Ok();
}

Status NbdConnection::Wait(std::vector<int64_t>& cookies, Clock::time_point deadline, const std::string& what) {
  Status first;
  while (!cookies.empty()) {
    for (size_t i = 0; i < cookies.size();) {
      const int done = nbd_aio_command_completed(handle_, cookies[i]);
      if (done == 0) {
        ++i;
        continue;
      }
      if (done == -1) {
        // A command fails when the server answers with an error, or when
        // the connection breaks under it; only the first leaves it usable.
        Status failed = Failed(what);
        if (!usable()) return failed;
        if (first.ok()) first = Status::Error(EIO, failed.message());
      }
      cookies[i] = cookies.back();
      cookies.pop_back();
    }
    if (cookies.empty()) break;
    if (!Alive(handle_)) return Failed(what);
    const int ms = MillisecondsLeft(deadline);
    if (ms == 0) {
      Close();
      return Status::Error(ETIMEDOUT, shown_ + ": " + what + ": no reply within the request timeout");
    }
    if (nbd_poll(handle_, ms) == -1) return Failed(what);
  }
  return first;
}

}  // namespace corfs::overlay
