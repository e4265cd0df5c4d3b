#pragma once
// JobEvent: something a job reports as it happens (it ended, a step failed,
// it is ready to complete), typed. The control layer turns each into QMP's
// BLOCK_JOB_* event; the jobs layer knows nothing of QMP's spellings.

#include <functional>
#include <optional>
#include <string>

#include "jobs/job_info.h"
#include "jobs/on_error.h"

namespace corfs::jobs {

// Which side of a failed step failed: reading from the chain or writing the
// image.
enum class IoOperation { kRead, kWrite };

struct JobEvent {
  enum class Kind {
    kCompleted,  // the job ended; `error` says why it failed, when it did
    kCancelled,  // the job ended on a cancel, without an error
    kReady,      // the job waits for a complete
    kError,      // steps failed: `error`, `operation`; `action` is what follows
  };
  Kind kind = Kind::kCompleted;
  JobInfo job;  // the job when it happened
  std::optional<std::string> error;
  IoOperation operation = IoOperation::kRead;  // kError only
  OnError action = OnError::kReport;           // kError only
  // kError only: how many failed steps this event stands for. Identical
  // errors (same errno, same operation) are coalesced to at most one event
  // a second per job; `error` is then the last one's message.
  uint64_t count = 1;
};

// Receives a job's events on the job's own thread; it must not block (the
// job waits for it).
using JobEventSink = std::function<void(const JobEvent&)>;

}  // namespace corfs::jobs
