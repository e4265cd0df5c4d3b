#pragma once
// OpenTarget: the image a job writes into (a mirror's or a backup's
// target), as a writable BlockDriver: a local raw file, or an NBD export.
//
// A new target is refused when the name exists already, unless the caller
// says it is `existing` (QMP's mode "existing"): a job never overwrites a
// file nobody meant it to. An existing target must have the disk's size.

#include <cstdint>
#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

struct TargetOptions {
  uint64_t size = 0;      // the disk's size: what a new target is made with, an existing one must have
  bool existing = false;  // the target exists already (a file or an export); else a new file is made
  RemoteOptions remote;   // for a target on a server
};

// Opens (or makes) the target `name`: a path, or an NBD URI (`nbd://`,
// `nbd+unix://`; always existing). Nothing is made or changed when it
// fails.
Status OpenTarget(const std::string& name, const TargetOptions& options, std::unique_ptr<BlockDriver>* out);

}  // namespace corfs::overlay
