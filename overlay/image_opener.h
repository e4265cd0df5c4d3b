#pragma once
// Opening backing images: picks the block driver for a file by its format
// name, or by its first bytes when the format is not given.
//
// The overlay takes an ImageOpener instead of calling OpenImage directly, so
// tests can slip a counting, slow or failing driver under a real overlay.

#include <functional>
#include <memory>
#include <string>

#include "overlay/block_driver.h"

namespace corfs::overlay {

// Opens `path` read-only as `format` ("" or "auto" = detect).
using ImageOpener =
    std::function<Status(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out)>;

// The real opener: raw files and block devices.
Status OpenImage(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out);

// Reads the first bytes of `path` and names its format ("raw", "qcow2", "corfs").
Status DetectFormat(const std::string& path, std::string* format);

}  // namespace corfs::overlay
