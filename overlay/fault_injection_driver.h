#pragma once
// FaultInjectionDriver: a backing image that fails chosen reads, in the
// spirit of QEMU's blkdebug, for testing error policies on real mounts.
//
// It is opened as format "blkdebug", and its path names a rules file:
//
//   # comments and blank lines are ignored
//   image template.raw          (relative to the rules file's folder)
//   format raw                  (optional; default: detect)
//   read-error 1048576 65536 EIO 1   (offset, length, errno name, how many
//                                     times it fails; 0 or absent = always)
//
// A read overlapping a rule's range fails with its errno while the rule has
// failures left. The image's identity is that of the image itself, so an
// overlay made over the faulty view opens over the plain image too.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "overlay/forwarding_driver.h"
#include "overlay/image_opener.h"

namespace corfs::overlay {

class FaultInjectionDriver final : public ForwardingDriver {
 public:
  struct Rule {
    uint64_t offset = 0;
    uint64_t length = 0;
    int error = EIO;
    std::unique_ptr<std::atomic<int64_t>> remaining;  // < 0: always
  };

  // Reads the rules file at `path` and opens the image it names.
  static Status Open(const std::string& path, const ImageOpener& opener, std::unique_ptr<BlockDriver>* out);

  std::string format() const override { return "blkdebug"; }
  Status Read(uint64_t offset, std::span<char> buf) override;

 private:
  FaultInjectionDriver(std::unique_ptr<BlockDriver> inner, std::vector<Rule> rules)
      : ForwardingDriver(std::move(inner)), rules_(std::move(rules)) {}

  std::vector<Rule> rules_;
};

}  // namespace corfs::overlay
