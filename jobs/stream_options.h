#pragma once
// StreamOptions: what a stream job is asked to do (block-stream's arguments,
// over the defaults of the image's `stream:` settings). Header-only, so the
// config layer can use the chunk default without linking jobs.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "jobs/job_options.h"

namespace corfs::overlay {
class BootProfileCursor;
}

namespace corfs::jobs {

// The largest run a stream copies as one step, unless told otherwise. It is
// at least a cluster; the config layer raises it to the cluster size.
inline constexpr uint64_t kDefaultChunkSize = 512 * 1024;
// The default instead when a layer of the chain cannot be copied inside the
// kernel (an image on a server, a qcow2 image): its bytes pass through a
// buffer, and each read costs a round trip or an inflate, so a step copies
// more at once to keep the link (or the cores) busy.
inline constexpr uint64_t kBufferedChunkSize = 4 * 1024 * 1024;

struct StreamOptions : JobOptions {
  std::optional<std::string> base;  // path of an image of the chain
  std::optional<uint64_t> range_offset;
  std::optional<uint64_t> range_length;
  uint64_t chunk_size = kDefaultChunkSize;
  // A boot profile to copy first, in its order, ahead of the guest
  // (StreamDriver); null: disk order only.
  std::shared_ptr<overlay::BootProfileCursor> profile;
};

}  // namespace corfs::jobs
