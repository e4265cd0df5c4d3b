#pragma once
// NBD backing images, through libnbd: `nbd://HOST[:PORT]/EXPORT`,
// `nbd+unix:///EXPORT?socket=PATH` (the NBD URI standard) and their TLS
// forms. The driver is a protocol driver: it presents the export's bytes;
// a format driver (raw, qcow2) reads through it.

#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Connects to the export `uri` names and presents it read-only.
Status OpenNbdImage(const std::string& uri, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out);

}  // namespace corfs::overlay
