#pragma once
// The arguments every command that starts a job takes (block-stream,
// block-commit, drive-mirror, drive-backup), read one way for all of them.

#include <cstdint>
#include <optional>
#include <string>

#include "control/qmp_command.h"

namespace corfs::control {

// `job-id`, when given: well formed as QEMU requires of an id (a letter,
// then letters, digits, '-', '.' and '_'), so that an id can neither split
// a log line nor be mistaken for another word of a reply. Leaves *job_id
// as it is when absent. The refusal, if any.
std::optional<QmpResult> ParseJobId(const Arguments& a, std::string* job_id);

// `speed` (bytes per second, 0: unlimited) with `force` for a speed below
// the floor that jobs::CheckSpeed names. Leaves *speed as it is when
// absent. The refusal, if any.
std::optional<QmpResult> ParseSpeed(const Arguments& a, uint64_t* speed);

}  // namespace corfs::control
