#pragma once
// NbdConnection: one libnbd handle, that is one connection (TCP, Unix
// socket, TLS) to an NBD server and one export: read by a backing image's
// driver, written by a job's target (overlay/remote/nbd_target.h).
//
// Every call has a deadline. libnbd's synchronous calls wait as long as the
// server takes, so the connection uses libnbd's asynchronous calls
// (nbd_aio_connect_uri, nbd_aio_pread, nbd_aio_block_status) and drives the
// handle with nbd_poll until the command completes or the deadline passes.
// A connection that times out is closed at once: a late reply must never
// land in a buffer its caller has taken back, and after a timeout the
// server's state is unknown.
//
// A failure leaves the connection either usable() (the server answered the
// request with an error: the connection itself is fine) or not (it broke,
// timed out, was refused, or the server answered NBD_ESHUTDOWN because it
// is shutting down: a transient failure, for the caller to retry on a new
// connection).
//
// Threading: one thread at a time (NbdDriver's pool hands a connection to
// one caller). libnbd would allow more, but one poller per handle keeps the
// deadlines simple; parallel requests use several connections, and one
// Read keeps several requests in flight on its connection.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

struct nbd_handle;

namespace corfs::overlay {

class NbdConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // What the server said about the export in the handshake.
  struct ExportInfo {
    uint64_t size = 0;
    uint64_t min_request = 1;         // requests must be aligned to this
    uint64_t max_request = 32 << 20;  // and no longer than this
    bool multi_conn = false;          // several connections see the same data
    bool allocation = false;          // base:allocation block status is offered
    bool read_only = true;            // the server refuses writes
    bool can_flush = false;
    bool can_zero = false;  // NBD_CMD_WRITE_ZEROES
  };

  // One run of a block-status reply: its length and its NBD_STATE_* flags.
  struct Extent {
    uint64_t length;
    uint32_t flags;
  };

  // Connects to `uri` (the NBD URI standard) before `deadline`. `shown`
  // names the server in messages (the URI without credentials);
  // `tls_username` is used for TLS when not empty. A server that does not
  // have the export fails with ENOENT (not transient); other failures are
  // transient (refused, reset, timed out).
  static Status Connect(const std::string& uri, const std::string& shown, const std::string& tls_username,
                        Clock::time_point deadline, std::unique_ptr<NbdConnection>* out);
  ~NbdConnection();
  NbdConnection(const NbdConnection&) = delete;
  NbdConnection& operator=(const NbdConnection&) = delete;

  const ExportInfo& info() const { return info_; }
  // False once the connection broke or timed out; it is then closed.
  bool usable() const { return handle_ != nullptr; }

  // Reads and writes go out in requests of at most this, all in flight at
  // once, however long the caller's buffer: a server allocates a buffer per
  // request (nbdkit also zeroes it), and one of several MiB is fresh pages
  // each time. Eight mounts streaming 4 MiB requests from one nbdkit made
  // it spend 2.6x the CPU that nbdcopy's 256 KiB requests cost, and took
  // 1.7x nbdcopy's time; in 512 KiB parts they take about nbdcopy's time.
  // 512 KiB is also a guest's largest read (the mount's max_read), so a
  // cold guest read is one request.
  static constexpr uint64_t kRequestPart = 512 << 10;

  // Reads `buf` at `offset` (aligned to info().min_request, within the
  // export) in requests of at most kRequestPart (less if the server's
  // maximum is less), all in flight at once.
  Status Read(uint64_t offset, std::span<char> buf, Clock::time_point deadline);
  // Writes `data` at `offset` (aligned, within the export) in requests of
  // at most kRequestPart (or the server's maximum), all in flight at once.
  Status Write(uint64_t offset, std::span<const char> data, Clock::time_point deadline);
  // Makes [offset, offset + length) read as zeros (NBD_CMD_WRITE_ZEROES,
  // the server may trim); the caller writes zeros itself when the server
  // cannot (!info().can_zero).
  Status Zero(uint64_t offset, uint64_t length, Clock::time_point deadline);
  // What the server acknowledged is durable (NBD_CMD_FLUSH); nothing to do
  // when the server has no flush (it writes through).
  Status Flush(Clock::time_point deadline);
  // The base:allocation runs from `offset` (at most `length` bytes; the
  // server may answer for less).
  Status BlockStatus(uint64_t offset, uint64_t length, Clock::time_point deadline, std::vector<Extent>* out);

 private:
  NbdConnection(nbd_handle* handle, std::string shown) : handle_(handle), shown_(std::move(shown)) {}

  // Polls until every command in `cookies` has completed or `deadline`
  // passed; the first failure is returned (the others are still waited
  // for, so no request is left holding a buffer).
  Status Wait(std::vector<int64_t>& cookies, Clock::time_point deadline, const std::string& what);
  // The failure of the libnbd call just made, naming `what`; a connection
  // that is no longer ready is closed.
  Status Failed(const std::string& what);
  // The length Read and Write split into: kRequestPart, or less to stay
  // within the server's maximum, aligned to its minimum.
  uint64_t RequestPart() const {
    return std::max(std::min(info_.max_request, kRequestPart) / info_.min_request, uint64_t{1}) * info_.min_request;
  }
  // Issues [offset, offset + length) as requests of at most `max_part`
  // bytes, `issue(done, length)` each (an nbd_aio_* call giving its
  // cookie, -1 when it failed), and waits for them all.
  Status IssueSplit(uint64_t length, uint64_t max_part, const std::string& what, Clock::time_point deadline,
                    const std::function<int64_t(uint64_t done, size_t length)>& issue);
  void Close();

  nbd_handle* handle_;
  std::string shown_;
  ExportInfo info_;
};

}  // namespace corfs::overlay
