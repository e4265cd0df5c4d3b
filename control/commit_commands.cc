#include "control/commit_commands.h"

#include <string>
#include <vector>

#include "control/job_arguments.h"
#include "jobs/commit_driver.h"

namespace corfs::control {

namespace {

QmpResult BlockCommit(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  // x-exit-after-step is a test hook (jobs::CommitOptions), not for users.
  if (!a.OnlyKnown({"device", "job-id", "top", "base", "speed", "force", "on-error", "x-exit-after-step"}, &error)) {
    return Failed(error);
  }
  std::string image_name;
  if (!a.String("device", &image_name, &error)) return Failed(error);
  std::shared_ptr<mount::MountedImage> image = context.images->Find(image_name);
  if (image == nullptr) return QmpResult::Error("DeviceNotFound", "Image '" + image_name + "' not found");
  jobs::JobOptions job;
  jobs::CommitOptions options;
  std::string text;
  uint64_t number = 0;
  if (auto refused = ParseJobId(a, &job.job_id)) return *refused;
  if (a.Has("top")) {
    if (!a.String("top", &text, &error)) return Failed(error);
    options.top = text;
  }
  if (a.Has("base")) {
    if (!a.String("base", &text, &error)) return Failed(error);
    options.base = text;
  }
  if (auto refused = ParseSpeed(a, &job.speed)) return *refused;
  if (a.Has("on-error")) {
    if (!a.String("on-error", &text, &error)) return Failed(error);
    if (!jobs::ParseOnError(text, &job.on_error)) {
      return QmpResult::Generic("Parameter 'on-error' does not accept value '" + text +
                                "' (expected report, ignore or stop)");
    }
  }
  if (a.Has("x-exit-after-step")) {
    if (!a.Unsigned("x-exit-after-step", &number, &error)) return Failed(error);
    options.exit_after_step = static_cast<int>(number);
  }
  std::vector<jobs::CommitSibling> others;
  for (const std::shared_ptr<mount::MountedImage>& other : context.images->Snapshot()) {
    if (other != image) others.push_back({other->name(), other->overlay.get(), other});
  }
  std::unique_ptr<jobs::CommitDriver> driver;
  Status status = jobs::CommitDriver::Make(*image->overlay, image_name, options, std::move(others), &driver);
  std::string job_id;
  if (status.ok()) status = context.jobs->StartJob(image_name, job, std::move(driver), &job_id);
  if (!status.ok()) return QmpResult::Generic(status.message());
  return QmpResult::Ok({{"job-id", job_id}});
}

}  // namespace

void AddCommitCommands(CommandTable& table, ControlContext* context) {
  table.Add("block-commit", [context](const nlohmann::json& args) { return BlockCommit(*context, args); });
}

}  // namespace corfs::control
