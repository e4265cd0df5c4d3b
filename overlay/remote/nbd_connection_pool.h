#pragma once
// NbdConnectionPool: the connections to one NBD export, for the driver of
// a backing image (nbd_driver.h) and for a job's target (nbd_target.h).
//
// It holds up to RemoteOptions::connections connections when the server
// allows multi-conn (every connection then sees the same data, and a flush
// on one covers writes completed on any), else one; each is lent to one
// caller at a time (NbdConnection is single-threaded), opened when first
// needed and reopened after it broke. A reopened connection is checked
// against the export as first opened (its size; for a target, that it is
// still writable): an export that changed is refused (ESTALE), never used.
//
// Run lends a connection to a request. A request whose connection broke
// or timed out (a transient failure) is retried on a new connection, after
// a back-off (RemoteOptions), up to `retries` times, and so is one the
// server answered with NBD_ESHUTDOWN (it is going away; NbdConnection then
// closes the connection); a server that answered with another error is not
// asked again (the connection is fine; the caller's policy decides). A
// failure comes back as the request's own status (its errno: a server's
// ENOSPC stays ENOSPC), or EIO once the retries are spent; messages name
// the URI without credentials.
//
// Threading: every method may be called from several threads at once; the
// pool is guarded by a mutex, a connection is used by one thread at a time.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/remote/nbd_connection.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

class NbdConnectionPool {
 public:
  using Clock = NbdConnection::Clock;
  using Request = std::function<Status(NbdConnection& connection, Clock::time_point deadline)>;

  // Connects once to `uri` (a server that is not there is reported at
  // once, not after the retries meant for one that went away). `writable`:
  // for a target, so every connection must be writable.
  static Status Open(const std::string& uri, const RemoteOptions& options, bool writable,
                     std::unique_ptr<NbdConnectionPool>* out);

  // What the server said of the export at open.
  const NbdConnection::ExportInfo& info() const { return info_; }
  // The URI without credentials, for messages.
  const std::string& shown() const { return shown_; }
  // How many connections the pool may hold: RemoteOptions::connections with
  // multi-conn, else 1.
  unsigned max_connections() const { return max_connections_; }

  // Runs `request` on a pooled connection before the request timeout,
  // retrying transient failures up to `retries` times. `what` names the
  // request in messages.
  Status Run(const std::string& what, unsigned retries, const Request& request);

  // Connects anew, in the place of a pooled connection, and checks the
  // export against the one opened.
  Status CheckUnchanged();

 private:
  NbdConnectionPool(std::string uri, std::string shown, std::string tls_username, const RemoteOptions& options,
                    bool writable, std::unique_ptr<NbdConnection> first);

  // A new connection, checked against the export as opened.
  Status Connect(std::unique_ptr<NbdConnection>* out) const;
  // A connection from the pool (null: the caller may open one), or waits.
  std::unique_ptr<NbdConnection> Acquire();
  // Gives a connection back (null or broken: its place is free again).
  void Release(std::unique_ptr<NbdConnection> connection);

  const std::string uri_;    // as given, for connecting
  const std::string shown_;  // without credentials, for messages
  const std::string tls_username_;
  const RemoteOptions options_;
  const bool writable_;
  const NbdConnection::ExportInfo info_;
  const unsigned max_connections_;

  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<NbdConnection>> idle_;  // guarded by mu_
  unsigned open_ = 0;                                 // idle or lent out; guarded by mu_
};

}  // namespace corfs::overlay
