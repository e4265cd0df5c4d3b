#include "control/job_arguments.h"

#include <cctype>

#include "jobs/job_options.h"

namespace corfs::control {

namespace {

bool WellFormedId(const std::string& id) {
  if (id.empty() || !std::isalpha(static_cast<unsigned char>(id[0]))) return false;
  for (const char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') return false;
  }
  return true;
}

}  // namespace

std::optional<QmpResult> ParseJobId(const Arguments& a, std::string* job_id) {
  if (!a.Has("job-id")) return std::nullopt;
  QmpError error;
  std::string id;
  if (!a.String("job-id", &id, &error)) return Failed(error);
  if (id.empty()) return QmpResult::Generic("Parameter 'job-id' must not be empty");
  if (!WellFormedId(id)) {
    // Not echoed: what makes it invalid may be a line break meant for a log.
    return QmpResult::Generic(
        "Invalid job ID: an id starts with a letter and holds only letters, digits, '-', '.' and '_'");
  }
  *job_id = id;
  return std::nullopt;
}

std::optional<QmpResult> ParseSpeed(const Arguments& a, uint64_t* speed) {
  if (!a.Has("speed")) return std::nullopt;
  QmpError error;
  uint64_t value = 0;
  if (!a.Unsigned("speed", &value, &error)) return Failed(error);
  bool force = false;
  if (a.Has("force") && !a.Bool("force", &force, &error)) return Failed(error);
  Status status = jobs::CheckSpeed(value, force);
  if (!status.ok()) return QmpResult::Generic(status.message());
  *speed = value;
  return std::nullopt;
}

}  // namespace corfs::control
