#pragma once
// JobInfo: a snapshot of a job, as query-block-jobs and the job's events
// report it. The states are QMP's: created -> running <-> paused ->
// concluded; a driver that waits for a complete (jobs/job_driver.h) enters
// ready on its way, and only such a job is ever reported ready.

#include <cstdint>
#include <string>

namespace corfs::jobs {

enum class JobState { kCreated, kRunning, kPaused, kReady, kConcluded };
const char* ToString(JobState state);

// Whether the job is stopped on an I/O error (on-error "stop"), as QEMU's
// BlockDeviceIoStatus: ok, failed, or failed for want of space (ENOSPC). A
// resume clears it.
enum class IoStatus { kOk, kFailed, kNoSpace };

struct JobInfo {
  std::string id;
  std::string type;   // the driver's: "stream"
  std::string image;  // the name of the image the job works on
  JobState state = JobState::kCreated;
  uint64_t offset = 0;      // bytes of the job's range processed (QMP "offset")
  uint64_t len = 0;         // bytes of the job's range (QMP "len")
  uint64_t copied = 0;      // bytes actually read from the chain
  uint64_t speed = 0;       // limit in bytes/s, 0 = none
  double rate = 0;          // measured progress in bytes/s
  double eta_seconds = -1;  // -1: unknown, and always while paused
  IoStatus io_status = IoStatus::kOk;
  std::string error;  // why it failed, once concluded; while stopped on an error, that error
  bool cancelled = false;
};

}  // namespace corfs::jobs
