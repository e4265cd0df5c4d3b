#include "control/backup_commands.h"

#include <functional>
#include <memory>
#include <string>

#include "control/job_arguments.h"
#include "control/job_target.h"
#include "jobs/backup_driver.h"

namespace corfs::control {

namespace {

QmpResult NoSuchImage(const std::string& name) {
  return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
}

QmpResult DriveBackup(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device", "target", "sync", "bitmap", "speed", "force", "job-id", "mode", "format"}, &error)) {
    return Failed(error);
  }
  std::string image_name, text, sync;
  jobs::BackupOptions options;
  jobs::JobOptions job;
  if (!a.String("device", &image_name, &error)) return Failed(error);
  if (!a.String("target", &options.target, &error)) return Failed(error);
  if (!a.String("sync", &sync, &error)) return Failed(error);
  if (!jobs::ParseBackupSync(sync, &options.sync)) {
    return QmpResult::Generic("Parameter 'sync' does not accept value '" + sync +
                              "' (expected full, top or incremental)");
  }
  if (a.Has("bitmap") && !a.String("bitmap", &options.bitmap, &error)) return Failed(error);
  if (auto refused = ParseJobId(a, &job.job_id)) return *refused;
  if (auto refused = ParseSpeed(a, &job.speed)) return *refused;
  if (a.Has("mode")) {
    if (!a.String("mode", &text, &error)) return Failed(error);
    if (text != "existing" && text != "absolute-paths") {
      return QmpResult::Generic("Parameter 'mode' does not accept value '" + text +
                                "' (expected existing or absolute-paths)");
    }
    options.existing = text == "existing";
  }
  if (a.Has("format")) {
    if (!a.String("format", &text, &error)) return Failed(error);
    // A full or top backup writes a raw image; an incremental one a corfs
    // overlay over the previous backup.
    const char* expected = options.sync == jobs::BackupSync::kIncremental ? "corfs" : "raw";
    if (text != expected) {
      return QmpResult::Generic("Parameter 'format' does not accept value '" + text + "' here (a sync '" + sync +
                                "' backup writes " + expected + ")");
    }
  }
  std::shared_ptr<const mount::MountedImage> image = context.images->Find(image_name);
  if (image == nullptr) return NoSuchImage(image_name);
  if (Status refused = CheckJobTarget(context, options.target); !refused.ok()) {
    return QmpResult::Generic(refused.message());
  }
  std::unique_ptr<jobs::BackupDriver> driver;
  Status status = jobs::BackupDriver::Make(*image->overlay, image->bitmaps, options, &driver);
  if (!status.ok()) return QmpResult::Generic(status.message());
  std::string job_id;
  status = context.jobs->StartJob(image_name, job, std::move(driver), &job_id);
  if (!status.ok()) return QmpResult::Generic(status.message());
  return QmpResult::Ok({{"job-id", job_id}});
}

// The image named by "node" and its bitmaps, for the block-dirty-bitmap-*
// commands; `act` gets the name.
QmpResult WithBitmaps(ControlContext& context, const nlohmann::json& args, std::initializer_list<const char*> known,
                      const std::function<Status(overlay::PersistentBitmaps&, const std::string&)>& act) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown(known, &error)) return Failed(error);
  std::string node, name;
  if (!a.String("node", &node, &error) || !a.String("name", &name, &error)) return Failed(error);
  std::shared_ptr<const mount::MountedImage> image = context.images->Find(node);
  if (image == nullptr) return NoSuchImage(node);
  if (image->bitmaps == nullptr) return QmpResult::Generic("image '" + node + "' keeps no bitmaps");
  Status status = act(*image->bitmaps, name);
  if (!status.ok()) return QmpResult::Generic(status.message());
  return QmpResult::Ok();
}

}  // namespace

nlohmann::json DirtyBitmapsJson(const mount::MountedImage& image) {
  nlohmann::json list = nlohmann::json::array();
  if (image.bitmaps == nullptr) return list;
  for (const overlay::BitmapInfo& info : image.bitmaps->List()) {
    nlohmann::json entry = {{"name", info.name},
                            {"granularity", info.granularity},
                            {"count", info.count},
                            {"recording", !image.overlay->read_only()},
                            {"busy", info.busy},
                            {"persistent", info.persistent},
                            {"inconsistent", info.inconsistent}};
    if (!info.last_target.empty()) entry["last-target"] = info.last_target;
    list.push_back(std::move(entry));
  }
  return list;
}

void AddBackupCommands(CommandTable& table, ControlContext* ctx) {
  table.Add("drive-backup", [ctx](const nlohmann::json& args) { return DriveBackup(*ctx, args); });
  table.Add("block-dirty-bitmap-add", [ctx](const nlohmann::json& args) {
    return WithBitmaps(*ctx, args, {"node", "name", "granularity", "persistent"},
                       [&args](overlay::PersistentBitmaps& bitmaps, const std::string& name) {
                         Arguments a(args);
                         QmpError error;
                         uint64_t granularity = 0;
                         bool persistent = false;  // QEMU's default
                         if (a.Has("granularity") && !a.Unsigned("granularity", &granularity, &error)) {
                           return Status::Invalid(error.desc);
                         }
                         if (a.Has("persistent") && !a.Bool("persistent", &persistent, &error)) {
                           return Status::Invalid(error.desc);
                         }
                         if (a.Has("granularity") && granularity == 0) {
                           return Status::Invalid("granularity 0 must be a power of two between 512 and 2147483648");
                         }
                         return bitmaps.Add(name, granularity, persistent);
                       });
  });
  table.Add("block-dirty-bitmap-remove", [ctx](const nlohmann::json& args) {
    return WithBitmaps(*ctx, args, {"node", "name"}, [](overlay::PersistentBitmaps& bitmaps, const std::string& name) {
      return bitmaps.Remove(name);
    });
  });
  table.Add("block-dirty-bitmap-clear", [ctx](const nlohmann::json& args) {
    return WithBitmaps(*ctx, args, {"node", "name"}, [](overlay::PersistentBitmaps& bitmaps, const std::string& name) {
      return bitmaps.Clear(name);
    });
  });
}

}  // namespace corfs::control
