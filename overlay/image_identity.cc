#include "overlay/image_identity.h"

#include <xxhash.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <vector>

namespace corfs::overlay {

namespace {
constexpr uint64_t kEdgeBytes = 64 * 1024;
constexpr uint64_t kSampleBytes = 4096;
constexpr uint64_t kSamples = 64;
}  // namespace

std::string ImageIdentity::ToString() const {
  char text[80];
  std::snprintf(text, sizeof text, "size %" PRIu64 ", fingerprint %016" PRIx64, size, fingerprint);
  return text;
}

Status ComputeIdentity(BlockDriver& driver, ImageIdentity* out) {
  BlockDriver& image = driver.identity_source();
  const uint64_t size = image.size();
  XXH3_state_t* state = XXH3_createState();
  if (state == nullptr) return Status::Error(ENOMEM, "out of memory hashing " + image.path());
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, &size, sizeof size);

  std::vector<char> buf(kEdgeBytes);
  auto hash_range = [&](uint64_t offset, uint64_t length) -> Status {
    length = std::min(length, size - std::min(size, offset));
    if (length == 0) return Status::Ok();
    std::span<char> part(buf.data(), length);
    CORFS_RETURN_IF_ERROR(image.Read(offset, part));
    XXH3_64bits_update(state, part.data(), part.size());
    return Status::Ok();
  };

  Status status = hash_range(0, kEdgeBytes);
  for (uint64_t i = 1; status.ok() && i <= kSamples; ++i) {
    uint64_t offset = size / (kSamples + 1) * i / kSampleBytes * kSampleBytes;
    status = hash_range(offset, kSampleBytes);
  }
  if (status.ok() && size > kEdgeBytes) status = hash_range(size - kEdgeBytes, kEdgeBytes);
  if (status.ok()) *out = {size, XXH3_64bits_digest(state)};
  XXH3_freeState(state);
  return status;
}

}  // namespace corfs::overlay
