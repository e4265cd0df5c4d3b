#pragma once
// NBD backing images, through libnbd: `nbd://HOST[:PORT]/EXPORT`,
// `nbd+unix:///EXPORT?socket=PATH` (the NBD URI standard) and their TLS
// forms. The driver is a protocol driver: it presents the export's bytes;
// a format driver (raw, qcow2) reads through it.
//
// Connections: an NbdConnectionPool (nbd_connection_pool.h): several
// when the server allows multi-conn, else one. A read is split into
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
// within request_timeout is retried on a new connection by the pool, up to
// `retries` times; then it is EIO. A server that answers a request with an
// error is EIO at once (the connection is fine; the caller's policy
// decides). A server that no longer has the export, or whose export
// changed size since it was opened (checked at every reconnect and by
// CheckUnchanged), is refused with EIO and a message that says so.
//
// Threading: every method may be called from several threads at once (the
// BlockDriver contract); the pool allows it.

#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/nbd_connection_pool.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Connects to the export `uri` names and presents it read-only.
Status OpenNbdImage(const std::string& uri, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out);

class NbdDriver final : public BlockDriver {
 public:
  static Status Open(const std::string& uri, const RemoteOptions& options, std::unique_ptr<NbdDriver>* out);

  uint64_t size() const override { return pool_->info().size; }
  const std::string& path() const override { return pool_->shown(); }
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
  unsigned max_connections() const { return pool_->max_connections(); }

 private:
  NbdDriver(std::unique_ptr<NbdConnectionPool> pool, unsigned retries)
      : pool_(std::move(pool)), retries_(retries), size_(pool_->info().size), min_request_(pool_->info().min_request) {}

  // Reads an aligned range: [offset, offset+buf.size()) on min_request.
  Status ReadAligned(uint64_t offset, std::span<char> buf);

  const std::unique_ptr<NbdConnectionPool> pool_;
  const unsigned retries_;
  const uint64_t size_;
  const uint64_t min_request_;
};

}  // namespace corfs::overlay
