#pragma once
// What an image starts with when it joins a mount, at mount time or later
// (image-add, SIGHUP): its write threshold and its stream, the one it was
// running when the last mount ended (resumed) or `stream.auto`'s.

#include "common/event_bus.h"
#include "common/status.h"
#include "jobs/job_manager.h"
#include "mount/mounted_image.h"

namespace corfs::cli {

// Arms `image`'s write threshold and starts its stream, as above.
Status StartImageJobs(const mount::MountedImage& image, jobs::JobManager& jobs, EventBus& events);

}  // namespace corfs::cli
