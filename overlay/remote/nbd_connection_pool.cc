#include "overlay/remote/nbd_connection_pool.h"

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

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

}  // namespace

NbdConnectionPool::NbdConnectionPool(std::string uri, std::string shown, std::string tls_username,
                                     const RemoteOptions& options, bool writable, std::unique_ptr<NbdConnection> first)
    : uri_(std::move(uri)),
      shown_(std::move(shown)),
      tls_username_(std::move(tls_username)),
      options_(options),
      writable_(writable),
      info_(first->info()),
      max_connections_(info_.multi_conn ? std::max(options.connections, 1u) : 1) {
  idle_.push_back(std::move(first));
  open_ = 1;
}

Status NbdConnectionPool::Open(const std::string& uri, const RemoteOptions& options, bool writable,
                               std::unique_ptr<NbdConnectionPool>* out) {
  const std::string shown = RedactCredentials(uri);
  // In NBD a user name is the TLS (PSK) identity; there is no password.
  std::string tls_username;
  if (auto found = options.uri_credentials.find(shown); found != options.uri_credentials.end()) {
    tls_username = found->second.user;
  }
  std::unique_ptr<NbdConnection> first;
  Status connected = NbdConnection::Connect(uri, shown, tls_username, Clock::now() + options.connect_timeout, &first);
  if (!connected.ok()) return Status::Error(EIO, Explain(connected, shown).message());
  out->reset(new NbdConnectionPool(uri, shown, std::move(tls_username), options, writable, std::move(first)));
  return Status::Ok();
}

Status NbdConnectionPool::Connect(std::unique_ptr<NbdConnection>* out) const {
  std::unique_ptr<NbdConnection> connection;
  Status connected =
      NbdConnection::Connect(uri_, shown_, tls_username_, Clock::now() + options_.connect_timeout, &connection);
  if (!connected.ok()) return Explain(connected, shown_);
  if (connection->info().size != info_.size) {
    return Status::Error(ESTALE, shown_ + ": the export changed size from " + std::to_string(info_.size) + " to " +
                                     std::to_string(connection->info().size) +
                                     " bytes; its data is no longer the image that was opened");
  }
  if (writable_ && connection->info().read_only) {
    return Status::Error(ESTALE, shown_ + ": the export is read-only now; it was writable when the job began");
  }
  *out = std::move(connection);
  return Status::Ok();
}

std::unique_ptr<NbdConnection> NbdConnectionPool::Acquire() {
  std::unique_lock lock(mu_);
  returned_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    std::unique_ptr<NbdConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    return connection;
  }
  ++open_;  // the caller opens it
  return nullptr;
}

void NbdConnectionPool::Release(std::unique_ptr<NbdConnection> connection) {
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

Status NbdConnectionPool::Run(const std::string& what, unsigned retries, const Request& request) {
  Status last;
  auto backoff = options_.backoff;
  for (unsigned attempt = 0;; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
    std::unique_ptr<NbdConnection> connection = Acquire();
    if (connection == nullptr) last = Connect(&connection);
    if (connection != nullptr) last = request(*connection, Clock::now() + options_.request_timeout);
    const bool broke = connection == nullptr || !connection->usable();
    Release(std::move(connection));
    if (last.ok()) return last;
    // A server that answered (with an error, or a changed export) is not
    // asked again; a connection that broke or timed out is.
    if (!broke || Permanent(last) || retries == 0) return last;
    if (attempt >= retries) {
      return Status::Error(EIO, shown_ + ": " + what + " failed " + std::to_string(attempt + 1) +
                                    " times, the last time with: " + last.message());
    }
  }
}

Status NbdConnectionPool::CheckUnchanged() {
  // The check takes a place in the pool (an idle connection, closed, or the
  // right to open one; it waits while all are lent out), so there are never
  // more than max_connections_: a server may accept no more (qemu-nbd -e N
  // leaves the next one unanswered, and the check would wait out the
  // connect timeout).
  std::unique_ptr<NbdConnection> connection = Acquire();
  connection.reset();
  Status status = Connect(&connection);
  Release(std::move(connection));  // kept for later requests; null: the place is free again
  return status;
}

}  // namespace corfs::overlay
