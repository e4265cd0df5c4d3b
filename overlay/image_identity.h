#pragma once
// The identity of a backing image: its size and a fingerprint of its content.
//
// The overlay header records the identity of every image in its chain, so an
// overlay opened over a different template is refused instead of silently
// mixing two disks. Hashing a whole template would make every open as slow as
// a copy, so the fingerprint hashes a fixed set of 4 KiB samples spread over
// the image (and always its first and last 64 KiB, where partition tables,
// superblocks and backup headers live).

#include <cstdint>
#include <string>

#include "overlay/block_driver.h"

namespace corfs::overlay {

struct ImageIdentity {
  uint64_t size = 0;
  uint64_t fingerprint = 0;

  bool operator==(const ImageIdentity&) const = default;
  std::string ToString() const;  // "size 1073741824, fingerprint 0x1234..."
};

Status ComputeIdentity(BlockDriver& image, ImageIdentity* out);

}  // namespace corfs::overlay
