#pragma once
// The content hash of a backing image: XXH3-128 of its size (u64,
// little-endian) followed by every byte the image presents, start to end.
//
// It is the "full-content identity" an overlay made with `--verify-backing
// full` records: the sampled fingerprint (image_identity.h) cannot see a
// rewrite between its samples, this hash sees any change. XXH3 is not
// cryptographic; it guards against accidents (a template rewritten in place,
// restored from the wrong backup), not against someone forging a template.
// Reading dominates its cost, so the image is read in large sequential
// chunks, the next chunk on a second thread while the current one is hashed.

#include <cstdint>
#include <string>

#include "common/status.h"
#include "overlay/block_driver.h"

namespace corfs::overlay {

struct ContentHash {
  uint64_t low = 0;
  uint64_t high = 0;

  bool operator==(const ContentHash&) const = default;
  std::string ToString() const;  // 32 hex digits, high half first
};

// Hashes the whole of `image` (its identity source, as the fingerprint does).
// Callable from any thread; it starts one helper thread of its own.
Status ComputeContentHash(BlockDriver& image, ContentHash* out);

}  // namespace corfs::overlay
