#pragma once
// JobOptions: what every job is given, whatever its driver: its id, its
// speed limit, its on-error policy, and whether it resumes an earlier one.

#include <cstdint>
#include <string>

#include "common/size.h"
#include "common/status.h"
#include "jobs/on_error.h"

namespace corfs::jobs {

// The slowest speed a job is given without being told twice: below this a
// speed is most likely a typo (50 for 50M), and it would stall the job.
inline constexpr uint64_t kMinSpeed = 64 * 1024;

// Refuses a speed limit under kMinSpeed unless `force`; 0 (unlimited) is
// always fine.
inline Status CheckSpeed(uint64_t bytes_per_second, bool force) {
  if (bytes_per_second == 0 || bytes_per_second >= kMinSpeed || force) return Status::Ok();
  return Status::Invalid("speed " + std::to_string(bytes_per_second) + " bytes/s is below the minimum of " +
                         FormatSize(kMinSpeed) +
                         "/s (a missing unit?); force it to go that slow, or give 0 for "
                         "no limit");
}

struct JobOptions {
  std::string job_id;  // default: the name of the image the job works on
  uint64_t speed = 0;  // bytes/s, 0 = unlimited
  OnError on_error = OnError::kReport;
  // Started again at mount, from what an earlier job that did not end
  // recorded (a stream's wish in the overlay's header); reported as such.
  bool resumed = false;

  // The job's id when it works on `image`.
  std::string IdFor(const std::string& image) const { return job_id.empty() ? image : job_id; }
};

}  // namespace corfs::jobs
