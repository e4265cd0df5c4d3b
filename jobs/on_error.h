#pragma once
// OnError: what a job does when one of its steps fails, as QMP's on-error
// argument and the YAML file's `stream.on_error` name it:
//   report  end the job with the error;
//   ignore  skip the failed step and go on (the outcome is then partial);
//   stop    pause the job; resume retries the step.
// Header-only, so the config layer can name a policy without linking jobs.

#include <string_view>

namespace corfs::jobs {

enum class OnError { kReport, kIgnore, kStop };

// The policies' names, in the order of the enum.
inline constexpr std::string_view kOnErrorNames[] = {"report", "ignore", "stop"};

// The names are literals, so data() is a C string.
inline const char* ToString(OnError policy) { return kOnErrorNames[static_cast<int>(policy)].data(); }

// False when `text` names no policy.
inline bool ParseOnError(std::string_view text, OnError* out) {
  for (OnError policy : {OnError::kReport, OnError::kIgnore, OnError::kStop}) {
    if (text == ToString(policy)) {
      *out = policy;
      return true;
    }
  }
  return false;
}

}  // namespace corfs::jobs
