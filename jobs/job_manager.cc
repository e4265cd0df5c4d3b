#include "jobs/job_manager.h"

#include "jobs/stream_driver.h"

namespace corfs::jobs {

JobManager::~JobManager() {
  std::map<std::string, std::shared_ptr<Job>> jobs;
  {
    std::lock_guard lock(mutex_);
    jobs.swap(jobs_);
  }
  for (auto& [id, job] : jobs) job->Interrupt();
  jobs.clear();  // each job's destructor waits for its thread
}

void JobManager::Reap() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    it = it->second->concluded() ? jobs_.erase(it) : std::next(it);
  }
}

Status JobManager::CheckFree(const std::string& job_id, const std::string& image_name) {
  if (jobs_.contains(job_id)) return Status::Error(EEXIST, "a job with id '" + job_id + "' exists already");
  for (auto& [other_id, job] : jobs_) {
    if (job->image() == image_name) {
      return Status::Error(EBUSY, "image '" + image_name + "' is busy: job '" + other_id + "' works on it");
    }
  }
  return Status::Ok();
}

void JobManager::Launch(std::unique_ptr<Job> job) {
  std::shared_ptr<Job> shared(std::move(job));
  jobs_[shared->id()] = shared;
  shared->Start();
}

Status JobManager::StartStream(overlay::Overlay& overlay, const std::string& image_name, const StreamOptions& options,
                               StartedStream* out) {
  std::lock_guard lock(mutex_);
  Reap();
  const std::string job_id = options.IdFor(image_name);
  CORFS_RETURN_IF_ERROR(CheckFree(job_id, image_name));
  std::unique_ptr<StreamDriver> driver;
  CORFS_RETURN_IF_ERROR(StreamDriver::Make(overlay, image_name, options, pool_, &driver));
  CORFS_RETURN_IF_ERROR(driver->RecordWish(options));
  StartedStream started{job_id, std::nullopt};
  if (options.range_offset || options.range_length) started.next_offset = driver->range_end();
  Launch(std::make_unique<Job>(image_name, options, std::move(driver), events_));
  *out = std::move(started);
  return Status::Ok();
}

Status JobManager::StartJob(const std::string& image_name, const JobOptions& options, std::unique_ptr<JobDriver> driver,
                            std::string* job_id) {
  std::lock_guard lock(mutex_);
  Reap();
  const std::string id = options.IdFor(image_name);
  CORFS_RETURN_IF_ERROR(CheckFree(id, image_name));
  Launch(std::make_unique<Job>(image_name, options, std::move(driver), events_));
  *job_id = id;
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
