#pragma once
// NBD backing images, through libnbd: `nbd://HOST[:PORT]/EXPORT`,
// `nbd+unix:///EXPORT?socket=PATH` (the NBD URI standard) and their TLS
// forms. The driver is a protocol driver: it presents the export's bytes;
// a format driver (raw, qcow2) reads through it.
//
// Connections: a pool of RemoteOptions::connections connections when the
// server allows multi-conn (every connection then sees the same data),
// else one; each is used by one caller at a time (NbdConnection), opened
// when first needed and reopened after it broke. A read is split into
// requests of at most the server's maximum block size, all in flight on
// its connection; parallel reads (a stream's workers, guest requests) use
// parallel connections.
//
// Allocation: base:allocation block status. A run the server reports as a
// hole that reads as zeros is kUnallocated, as RawDriver reports a hole of
// a sparse file (a lower layer, if any, shows through; at the bottom of a
// chain it reads as zeros), so a stream or a guest read never transfers
// it; zeros that are allocated are kZero; everything else, and everything
// of a server without base:allocation, is kData.
//
// Faults: a request that finds its connection broken or gets no reply
// within request_timeout is retried on a new connection, after a back-off
// (RemoteOptions), up to `retries` times; then it is EIO. A server that
// answers a request with an error is EIO at once (the connection is fine;
// the caller's policy decides). A server that no longer has the export, or
// whose export changed size since it was opened (checked at every
// reconnect and by CheckUnchanged), is refused with EIO and a message that
// says so. Messages name the URI without credentials.
//
// Threading: every method may be called from several threads at once (the
// BlockDriver contract); the pool is guarded by a mutex, a connection is
// used by one thread at a time.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "overlay/block_driver.h"
#include "overlay/remote/nbd_connection.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Connects to the export `uri` names and presents it read-only.
Status OpenNbdImage(const std::string& uri, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out);

class NbdDriver final : public BlockDriver {
 public:
  static Status Open(const std::string& uri, const RemoteOptions& options, std::unique_ptr<NbdDriver>* out);

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return shown_; }
  std::string format() const override { return "raw"; }

  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t length) override;
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override;
  // Connects anew and compares the export's size with the size at open.
  Status CheckUnchanged() const override;

  // How many connections the pool may hold: RemoteOptions::connections with
  // multi-conn, else 1.
  unsigned max_connections() const { return max_connections_; }

 private:
  NbdDriver(std::string uri, std::string shown, const RemoteOptions& options, std::string tls_username,
            std::unique_ptr<NbdConnection> first);

  // A new connection, checked against the export as opened.
  Status Connect(std::unique_ptr<NbdConnection>* out) const;
  // Runs `request` on a pooled connection, retrying transient failures.
  template <typename Request>
  Status WithConnection(const std::string& what, Request&& request);
  // A connection from the pool (null: the caller may open one), or waits.
  std::unique_ptr<NbdConnection> Acquire(bool* may_open);
  // Gives a connection back (null or broken: its place is free again).
  void Release(std::unique_ptr<NbdConnection> connection);
  // Reads an aligned range: [offset, offset+buf.size()) on min_request.
  Status ReadAligned(uint64_t offset, std::span<char> buf);

  const std::string uri_;    // as given, for connecting
  const std::string shown_;  // without credentials, for messages
  const RemoteOptions options_;
  const std::string tls_username_;
  uint64_t size_ = 0;
  uint64_t min_request_ = 1;
  bool allocation_ = false;
  unsigned max_connections_ = 1;

  std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<NbdConnection>> idle_;  // guarded by mu_
  unsigned open_ = 0;                                 // idle or lent out; guarded by mu_
};

}  // namespace corfs::overlay
