#include "control/mirror_commands.h"

#include <unistd.h>

#include <bit>
#include <memory>
#include <optional>
#include <string>

#include "control/job_arguments.h"
#include "control/job_target.h"
#include "jobs/mirror_driver.h"
#include "overlay/image_location.h"
#include "overlay/target_image.h"

namespace corfs::control {

namespace {

// An on-error policy argument; the refusal, if any.
std::optional<QmpResult> ParsePolicy(const Arguments& a, const char* name, jobs::OnError* out) {
  if (!a.Has(name)) return std::nullopt;
  QmpError error;
  std::string text;
  if (!a.String(name, &text, &error)) return Failed(error);
  // QEMU's "enospc" (stop on ENOSPC only) has no counterpart: refused.
  if (!jobs::ParseOnError(text, out)) {
    return QmpResult::Generic(std::string("Parameter '") + name + "' does not accept value '" + text +
                              "' (expected report, ignore or stop)");
  }
  return std::nullopt;
}

// format, sync, mode, copy-mode and granularity; *existing is set by
// mode "existing". The refusal, if any.
std::optional<QmpResult> ParseModes(const Arguments& a, jobs::MirrorOptions* out, bool* existing) {
  QmpError error;
  std::string text;
  jobs::MirrorOptions& options = *out;
  if (a.Has("format")) {
    if (!a.String("format", &text, &error)) return Failed(error);
    if (text != "raw") return QmpResult::Generic("format '" + text + "' is not supported: a target is raw");
  }
  if (!a.Has("sync")) return QmpResult::Generic("Parameter 'sync' is missing (full or top)");
  if (!a.String("sync", &text, &error)) return Failed(error);
  if (text == "full") {
    options.sync = jobs::MirrorSync::kFull;
  } else if (text == "top") {
    options.sync = jobs::MirrorSync::kTop;
  } else {
    return QmpResult::Generic("Parameter 'sync' does not accept value '" + text + "' (expected full or top)");
  }
  if (a.Has("mode")) {
    if (!a.String("mode", &text, &error)) return Failed(error);
    if (text == "existing") {
      *existing = true;
    } else if (text != "absolute-paths") {
      return QmpResult::Generic("Parameter 'mode' does not accept value '" + text +
                                "' (expected absolute-paths or existing)");
    }
  }
  if (a.Has("copy-mode")) {
    if (!a.String("copy-mode", &text, &error)) return Failed(error);
    if (text == "write-blocking") {
      options.copy_mode = jobs::MirrorCopyMode::kWriteBlocking;
    } else if (text != "background") {
      return QmpResult::Generic("Parameter 'copy-mode' does not accept value '" + text +
                                "' (expected background or write-blocking)");
    }
  }
  if (a.Has("granularity") && !a.Unsigned("granularity", &options.granularity, &error)) return Failed(error);
  return std::nullopt;
}

QmpResult DriveMirror(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device", "target", "format", "sync", "mode", "speed", "force", "job-id", "granularity",
                    "on-source-error", "on-target-error", "copy-mode"},
                   &error)) {
    return Failed(error);
  }
  std::string image_name;
  std::string target_name;
  if (!a.String("device", &image_name, &error) || !a.String("target", &target_name, &error)) return Failed(error);
  std::shared_ptr<const mount::MountedImage> image = context.images->Find(image_name);
  if (image == nullptr) return QmpResult::Error("DeviceNotFound", "Image '" + image_name + "' not found");
  if (target_name.empty()) return QmpResult::Generic("Parameter 'target' must not be empty");

  jobs::JobOptions job_options;
  jobs::MirrorOptions options;
  bool existing = overlay::IsUri(target_name);  // an export is never made
  if (auto refused = ParseModes(a, &options, &existing)) return *refused;
  if (auto refused = ParseJobId(a, &job_options.job_id)) return *refused;
  if (auto refused = ParseSpeed(a, &job_options.speed)) return *refused;
  if (auto refused = ParsePolicy(a, "on-source-error", &options.on_source_error)) return *refused;
  if (auto refused = ParsePolicy(a, "on-target-error", &options.on_target_error)) return *refused;
  job_options.on_error = options.on_target_error;
  // Checked before a target is made, so a refusal leaves nothing behind.
  if (options.granularity != 0 &&
      (!std::has_single_bit(options.granularity) || options.granularity < jobs::kMinMirrorGranularity ||
       options.granularity > jobs::kMaxMirrorGranularity)) {
    return QmpResult::Generic("Parameter 'granularity' must be a power of two between 512 and 64M");
  }
  if (context.jobs->Find(job_options.IdFor(image_name)) != nullptr) {
    return QmpResult::Generic("a job with id '" + job_options.IdFor(image_name) + "' exists already");
  }

  if (Status refused = CheckJobTarget(context, target_name); !refused.ok()) {
    return QmpResult::Generic(refused.message());
  }
  overlay::TargetOptions target_options;
  target_options.size = image->overlay->size();
  target_options.existing = existing;
  target_options.remote = context.remote;
  std::unique_ptr<overlay::BlockDriver> target;
  Status status = overlay::OpenTarget(target_name, target_options, &target);
  if (!status.ok()) return QmpResult::Generic(status.message());
  options.target_zeroed = !existing;
  // A new file this command made goes again if the job does not start.
  auto discard_new_target = [&] {
    if (!existing) ::unlink(target_name.c_str());
  };
  std::unique_ptr<jobs::MirrorDriver> driver;
  status = jobs::MirrorDriver::Make(*image->overlay, std::move(target), options, context.jobs->pool(), &driver);
  std::string job_id;
  if (status.ok()) status = context.jobs->StartJob(image_name, job_options, std::move(driver), &job_id);
  if (!status.ok()) {
    discard_new_target();
    return QmpResult::Generic(status.message());
  }
  return QmpResult::Ok({{"job-id", job_id}});
}

}  // namespace

void AddMirrorCommand(CommandTable& table, ControlContext* context) {
  table.Add("drive-mirror", [context](const nlohmann::json& args) { return DriveMirror(*context, args); });
}

}  // namespace corfs::control
