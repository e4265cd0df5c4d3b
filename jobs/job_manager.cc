#include "jobs/job_manager.h"

namespace corfs::jobs {

JobManager::~JobManager() {
  std::map<std::string, std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(mutex_);
    jobs.swap(jobs_);
  }
  for (auto& [id, job] : jobs) job->Cancel();
  jobs.clear();  // each job's destructor waits for its driver
}

void JobManager::Reap() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    it = it->second->concluded() ? jobs_.erase(it) : std::next(it);
  }
}

Status JobManager::StartStream(overlay::Overlay& overlay, const std::string& device, const StreamOptions& options,
                               std::string* id) {
  std::lock_guard lock(mutex_);
  Reap();
  const std::string job_id = options.job_id.empty() ? device : options.job_id;
  if (jobs_.contains(job_id)) return Status::Error(EEXIST, "a job with id '" + job_id + "' exists already");
  for (auto& [other_id, job] : jobs_) {
    if (job->device() == device) {
      return Status::Error(EBUSY, "image '" + device + "' is busy: job '" + other_id + "' works on it");
    }
  }
  std::unique_ptr<StreamJob> job;
  CORFS_RETURN_IF_ERROR(StreamJob::Make(overlay, device, options, pool_, events_, &job));
  std::shared_ptr<Job> shared(std::move(job));
  jobs_[job_id] = shared;
  shared->Start();
  *id = job_id;
  return Status::Ok();
}

std::shared_ptr<Job> JobManager::Find(const std::string& id) {
  std::lock_guard lock(mutex_);
  Reap();
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

std::vector<JobInfo> JobManager::List() {
  std::lock_guard lock(mutex_);
  Reap();
  std::vector<JobInfo> infos;
  for (auto& [id, job] : jobs_) infos.push_back(job->Info());
  return infos;
}

}  // namespace corfs::jobs
