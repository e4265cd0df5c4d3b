#pragma once
// JobManager: the jobs of a mount, by id. One job per image at a time (like
// QEMU's "device is busy"). Concluded jobs are dismissed automatically once
// their final event is out, as with QEMU's auto-dismiss.

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "jobs/job.h"
#include "jobs/stream_job.h"
#include "jobs/worker_pool.h"

namespace corfs::jobs {

class JobManager {
 public:
  JobManager(unsigned workers, EventBus& events) : pool_(workers), events_(events) {}
  ~JobManager();  // cancels every job and waits for it

  WorkerPool& pool() { return pool_; }

  // Starts a stream job on `overlay` (named `device`); its id goes to *id.
  Status StartStream(overlay::Overlay& overlay, const std::string& device, const StreamOptions& options,
                     std::string* id);

  // The job with this id, or nullptr.
  std::shared_ptr<Job> Find(const std::string& id);
  std::vector<JobInfo> List();

 private:
  void Reap();  // drops concluded jobs; mutex_ held

  WorkerPool pool_;
  EventBus& events_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
};

}  // namespace corfs::jobs
