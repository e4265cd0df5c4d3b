#pragma once
// JobManager: the jobs of a mount, by id. One job per image at a time (like
// QEMU's "device is busy"). Concluded jobs are dismissed automatically once
// their final event is out, as with QEMU's auto-dismiss. Its methods may be
// called from any thread.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job.h"
#include "jobs/stream_options.h"
#include "jobs/worker_pool.h"
#include "overlay/overlay.h"

namespace corfs::jobs {

// What starting a stream tells its caller.
struct StartedStream {
  std::string job_id;
  std::optional<uint64_t> next_offset;  // a range: where the next range starts
};

class JobManager {
 public:
  // Every job's events go to `events`.
  JobManager(unsigned workers, JobEventSink events) : pool_(workers), events_(std::move(events)) {}
  // Interrupts every job (Job::Interrupt: the mount goes down, so what
  // resumes a job at the next mount stays) and waits for it.
  ~JobManager();

  WorkerPool& pool() { return pool_; }

  // Starts a stream job on `overlay`, which the mount names `image_name`.
  // A whole-image stream first records its wish in the overlay
  // (StreamDriver::RecordWish), so that the next mount resumes it.
  Status StartStream(overlay::Overlay& overlay, const std::string& image_name, const StreamOptions& options,
                     StartedStream* out);

  // Starts a job of any kind (mirror, commit, backup) on the image the
  // mount names `image_name`, with `driver` doing its work: refused while
  // another job works on the image or has the id. *job_id is its id.
  Status StartJob(const std::string& image_name, const JobOptions& options, std::unique_ptr<JobDriver> driver,
                  std::string* job_id);

  // The job with this id, or nullptr.
  std::shared_ptr<Job> Find(const std::string& id);
  std::vector<JobInfo> List();

 private:
  // The rest hold mutex_.
  void Reap();  // drops concluded jobs
  // Whether a job with id `job_id` may start on `image_name`.
  Status CheckFree(const std::string& job_id, const std::string& image_name);
  // Adds the job and starts it.
  void Launch(std::unique_ptr<Job> job);

  WorkerPool pool_;
  const JobEventSink events_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
};

}  // namespace corfs::jobs
