#pragma once
// NbdTarget: an NBD export as the image a job writes into (a mirror's
// target), a writable BlockDriver through libnbd: pwrite, flush, write
// zeroes (trim), read for checks.
//
// Open refuses an export the server offers read-only (qemu-nbd without -t
// or with -r, nbdkit -r) with a message that says so, and one whose size is
// not the disk's: nothing is written then.
//
// One connection, one request at a time (a mutex): a mirror's target is
// written by the job's copy and by guest writes after READY, and NBD gives
// no order between requests in flight on one connection, so serialising is
// what keeps "the later write wins" without further bookkeeping. A
// connection that breaks is opened again by the next call (once); the call
// that met the break fails, for the job's error policy to decide.
//
// Threading: every method may be called from several threads at once.

#include <memory>
#include <mutex>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/nbd_connection.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

class NbdTarget final : public BlockDriver {
 public:
  // Connects to `uri` and checks that the export is writable and has
  // `size` bytes.
  static Status Open(const std::string& uri, uint64_t size, const RemoteOptions& options,
                     std::unique_ptr<NbdTarget>* out);

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return shown_; }
  std::string format() const override { return "raw"; }

  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t length) override;
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override;

 private:
  NbdTarget(std::string uri, std::string shown, std::string tls_username, const RemoteOptions& options,
            std::unique_ptr<NbdConnection> connection);
  // Runs `request` on the connection (connecting again first if it broke),
  // under the mutex.
  template <typename Request>
  Status WithConnection(Request&& request);

  const std::string uri_;
  const std::string shown_;
  const std::string tls_username_;
  const RemoteOptions options_;
  const uint64_t size_;
  std::mutex mutex_;
  std::unique_ptr<NbdConnection> connection_;  // guarded by mutex_
};

}  // namespace corfs::overlay
