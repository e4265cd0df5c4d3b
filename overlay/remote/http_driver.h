#pragma once
// HTTP(S) backing images, through libcurl: a file on a server that answers
// range requests (nginx, object stores, CDNs). The driver is a protocol
// driver: it presents the file's bytes; a format driver (raw, qcow2) reads
// through it.

#include <memory>
#include <string>

#include "overlay/block_driver.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Opens the file at `url` (http:// or https://) read-only.
Status OpenHttpImage(const std::string& url, const RemoteOptions& options, std::unique_ptr<BlockDriver>* out);

}  // namespace corfs::overlay
