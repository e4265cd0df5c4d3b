#pragma once
// JobOptions: what every job is given, whatever its driver: its id, its
// speed limit and its on-error policy.

#include <cstdint>
#include <string>

#include "jobs/on_error.h"

namespace corfs::jobs {

struct JobOptions {
  std::string job_id;  // default: the name of the image the job works on
  uint64_t speed = 0;  // bytes/s, 0 = unlimited
  OnError on_error = OnError::kReport;

  // The job's id when it works on `image`.
  std::string IdFor(const std::string& image) const { return job_id.empty() ? image : job_id; }
};

}  // namespace corfs::jobs
