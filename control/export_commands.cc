#include "control/export_commands.h"

#include <memory>
#include <string>

namespace corfs::control {

namespace {

// The image `device` names, or the reply that says why there is none.
QmpResult FindImage(ControlContext& context, const nlohmann::json& args, std::shared_ptr<mount::MountedImage>* image) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device"}, &error)) return {nlohmann::json(), error};
  std::string name;
  if (!a.String("device", &name, &error)) return {nlohmann::json(), error};
  *image = context.images->Find(name);
  if (*image == nullptr) return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
  return QmpResult::Ok();
}

QmpResult ExportPrep(ControlContext& context, const nlohmann::json& args) {
  std::shared_ptr<mount::MountedImage> image;
  QmpResult found = FindImage(context, args, &image);
  if (image == nullptr) return found;
  // Jobs start and this runs under the session's control mutex, so no job
  // starts between this look and the gate closing. A stream is welcome: it
  // copies into the overlay what the guest sees already.
  for (const jobs::JobInfo& job : context.jobs->List()) {
    if (job.image != image->name() || job.state == jobs::JobState::kConcluded || job.type == "stream") continue;
    return QmpResult::Generic("Image '" + image->name() + "' has a " + job.type + " job ('" + job.id +
                              "'); export it once the job has ended");
  }
  const bool was_closed = image->export_gate.closed();
  image->export_gate.Close();  // waits for the guest's changes in flight
  Status flushed = image->overlay->Flush();
  if (!flushed.ok()) {
    // Nothing is exported on a disk that is not durable; the guest goes on.
    if (!was_closed) image->export_gate.Open();
    return QmpResult::Generic("Cannot export image '" + image->name() + "': " + flushed.message());
  }
  return QmpResult::Ok();
}

QmpResult ExportEnd(ControlContext& context, const nlohmann::json& args) {
  std::shared_ptr<mount::MountedImage> image;
  QmpResult found = FindImage(context, args, &image);
  if (image == nullptr) return found;
  image->export_gate.Open();
  return QmpResult::Ok();
}

}  // namespace

void AddExportCommands(CommandTable& table, ControlContext* context) {
  table.Add("image-export-prep", [context](const nlohmann::json& args) { return ExportPrep(*context, args); });
  table.Add("image-export-end", [context](const nlohmann::json& args) { return ExportEnd(*context, args); });
}

}  // namespace corfs::control
