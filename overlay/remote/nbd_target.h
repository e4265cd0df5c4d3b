#pragma once
// NbdTarget: an NBD export as the image a job writes into (a mirror's
// target), a writable BlockDriver through libnbd: pwrite, flush, write
// zeroes (trim), read for checks.
//
// Open refuses an export the server offers read-only (qemu-nbd without -t
// or with -r, nbdkit -r) with a message that says so, and one whose size is
// not the disk's: nothing is written then.
//
// Connections: an NbdConnectionPool (nbd_connection_pool.h), several when
// the server allows multi-conn (qemu-nbd -e N), so a job keeps requests in
// flight: one synchronous request at a time runs at the round trip's pace,
// several times slower than the link. NBD gives no order between requests
// in flight, so writes to the same bytes must not be: the jobs never send
// them (a mirror copies a range under its range lock, a backup copies each
// chunk once). A flush goes to one connection, which with multi-conn covers
// the writes completed on all of them. A connection that breaks is opened
// again by the next call; the call that met the break fails (no retry), for
// the job's error policy to decide.
//
// Threading: every method may be called from several threads at once.

#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/nbd_connection_pool.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

class NbdTarget final : public BlockDriver {
 public:
  // Connects to `uri` and checks that the export is writable and has
  // `size` bytes.
  static Status Open(const std::string& uri, uint64_t size, const RemoteOptions& options,
                     std::unique_ptr<NbdTarget>* out);

  uint64_t size() const override { return pool_->info().size; }
  const std::string& path() const override { return pool_->shown(); }
  std::string format() const override { return "raw"; }

  Status Read(uint64_t offset, std::span<char> buf) override;
  Status Write(uint64_t offset, std::span<const char> data) override;
  Status Flush() override;
  Status Discard(uint64_t offset, uint64_t length) override;
  Status GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) override;

 private:
  explicit NbdTarget(std::unique_ptr<NbdConnectionPool> pool) : pool_(std::move(pool)) {}

  const std::unique_ptr<NbdConnectionPool> pool_;
};

}  // namespace corfs::overlay
