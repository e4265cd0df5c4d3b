#pragma once
// MirrorOptions: what a mirror job (jobs/mirror_driver.h) is asked to do,
// beside the JobOptions every job has. control/ fills it from QMP's
// drive-mirror; the spellings are QEMU's where they fit.

#include <cstdint>

#include "jobs/on_error.h"

namespace corfs::jobs {

enum class MirrorSync {
  kFull,  // the whole disk as the guest sees it
  kTop,   // only what the overlay holds: the target reads as the template already
};

enum class MirrorCopyMode {
  kBackground,     // guest writes are marked dirty and copied later, until READY
  kWriteBlocking,  // every guest write reaches the target before the guest hears of it, from the start
};

struct MirrorOptions {
  MirrorSync sync = MirrorSync::kFull;
  MirrorCopyMode copy_mode = MirrorCopyMode::kBackground;
  // The dirty bitmap's chunk: a power of two in [512, 64 MiB]; 0 = the
  // overlay's cluster size.
  uint64_t granularity = 0;
  OnError on_source_error = OnError::kReport;
  OnError on_target_error = OnError::kReport;
  // The target was made by this job (a new file): it reads as zeros, so
  // what the disk holds as zeros need not be copied.
  bool target_zeroed = false;
};

inline constexpr uint64_t kMinMirrorGranularity = 512;
inline constexpr uint64_t kMaxMirrorGranularity = 64ull << 20;

}  // namespace corfs::jobs
