#pragma once
// JobInfo: a snapshot of a job, as query-block-jobs and the job's events
// report it. The states are QMP's: created -> running <-> paused ->
// concluded; a driver that waits for a complete (jobs/job_driver.h) enters
// ready on its way, and only such a job is ever reported ready.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
  // Other images of the mount the job keeps in use (a commit's siblings):
  // none of them may leave the mount while it runs.
  std::vector<std::string> other_images;
  JobState state = JobState::kCreated;
  uint64_t offset = 0;  // bytes of the job's range processed (QMP "offset")
  uint64_t len = 0;     // bytes of the job's range (QMP "len")
  uint64_t copied = 0;  // of offset, bytes read from the chain and written
  uint64_t holes = 0;   // of offset, bytes recorded as zeros without reading
  uint64_t local = 0;   // of offset, bytes that needed nothing (held already)
  // Estimated bytes still to copy (0 once completed); nullopt: unknown.
  std::optional<uint64_t> remaining;
  uint64_t speed = 0;          // limit in bytes/s, 0 = none, on copied bytes
  double rate = 0;             // bytes copied per second, measured lately
  double eta_seconds = -1;     // remaining over rate; -1: unknown, and always while paused
  double elapsed_seconds = 0;  // since the job started; its whole run once concluded
  IoStatus io_status = IoStatus::kOk;
  std::string error;  // why it failed, once concluded; while stopped on an error, that error
  bool cancelled = false;
  bool resumed = false;  // started again at mount (JobOptions::resumed)
  // A stream replaying a boot profile (overlay/boot_profile.h) copies the
  // profile's ranges first: how many of the profile's bytes it is past
  // (copied, or behind the guest), of how many.
  bool profile = false;
  uint64_t profile_offset = 0;
  uint64_t profile_len = 0;
  // A job that tracks guest writes (a mirror): the bytes its dirty bitmap
  // marks, still to be copied again; nullopt for other jobs.
  std::optional<uint64_t> dirty_bytes;

  // Bytes copied per second over the job's whole run so far, pauses
  // included: the summary's average.
  double AverageRate() const { return elapsed_seconds > 0 ? static_cast<double>(copied) / elapsed_seconds : 0; }
};

}  // namespace corfs::jobs
