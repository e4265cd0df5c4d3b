// corfs backup IMAGE TARGET (drive-backup) and corfs bitmap add|remove|clear
// (block-dirty-bitmap-*): backups of an image of a running mount.

#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "common/size.h"

namespace corfs::cli {

namespace {

struct MountOptions {
  std::string socket;
  std::string mountpoint;
  bool json = false;
};

void AddMountOptions(CLI::App* cmd, MountOptions* mount) {
  cmd->add_option("-m,--mountpoint", mount->mountpoint, "The mount (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", mount->socket, "The mount's control socket");
  AddOutputOptions(cmd, &mount->json);
}

// A failed command: its message; with --json the QMP error too, on stdout.
int FailQmp(const MountOptions& mount, const QmpClient& client, const Status& status) {
  if (mount.json && !client.last_error().is_null()) {
    std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
  }
  return Fail(status.message());
}

struct BackupArgs {
  MountOptions mount;
  std::string image, target, sync = "full", bitmap, speed, mode, job_id;
  bool wait = false;
  bool force = false;
};

int RunBackup(const BackupArgs& a) {
  nlohmann::json args = {{"device", a.image}, {"target", a.target}, {"sync", a.sync}};
  if (a.sync != "full" && a.sync != "top" && a.sync != "incremental") {
    return UsageError("backup", "--sync: '" + a.sync + "' is not full, top or incremental");
  }
  if (!a.bitmap.empty()) args["bitmap"] = a.bitmap;
  if (!a.job_id.empty()) args["job-id"] = a.job_id;
  if (!a.mode.empty()) args["mode"] = a.mode;
  if (!a.speed.empty()) {
    uint64_t speed = 0;
    Status parsed = ParseSize(a.speed, &speed);
    if (!parsed.ok()) return UsageError("backup", "--speed: " + parsed.message());
    args["speed"] = speed;
    if (a.force) args["force"] = true;
  }
  QmpClient client;
  Status status = ConnectToMount(a.mount.socket, a.mount.mountpoint, &client);
  if (!status.ok()) return Fail(status.message());
  nlohmann::json result;
  status = client.Execute("drive-backup", args, &result);
  if (!status.ok()) return FailQmp(a.mount, client, status);
  const std::string id = result.value("job-id", a.image);
  if (!a.wait) {
    if (a.mount.json) {
      std::printf("%s\n", result.dump().c_str());
    } else {
      std::printf("started job %s\n", id.c_str());
    }
    return kExitOk;
  }
  return FollowJob(client, id, a.mount.json);
}

struct BitmapArgs {
  MountOptions mount;
  std::string image, name, granularity;
  bool transient = false;
};

int RunBitmap(const std::string& verb, const BitmapArgs& a) {
  nlohmann::json args = {{"node", a.image}, {"name", a.name}};
  if (verb == "add") {
    args["persistent"] = !a.transient;
    if (!a.granularity.empty()) {
      uint64_t granularity = 0;
      Status parsed = ParseSize(a.granularity, &granularity);
      if (!parsed.ok()) return UsageError("bitmap add", "--granularity: " + parsed.message());
      args["granularity"] = granularity;
    }
  }
  QmpClient client;
  Status status = ConnectToMount(a.mount.socket, a.mount.mountpoint, &client);
  nlohmann::json result;
  if (status.ok()) status = client.Execute("block-dirty-bitmap-" + verb, args, &result);
  if (!status.ok()) return FailQmp(a.mount, client, status);
  if (a.mount.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("bitmap %s of %s: %s\n", a.name.c_str(), a.image.c_str(),
                verb == "add"      ? "added"
                : verb == "remove" ? "removed"
                                   : "cleared");
  }
  return kExitOk;
}

}  // namespace

void AddBackupCommand(CLI::App& app, int* exit_code) {
  {
    auto a = std::make_shared<BackupArgs>();
    CLI::App* cmd =
        app.add_subcommand("backup",
                           "Back up an image of a running mount as it is now, while it is in use (drive-backup)");
    cmd->add_option("image", a->image, "Image name in the mount")->required();
    cmd->add_option("target", a->target,
                    "Where the copy goes: a new raw file (full, top), or a new corfs overlay over the bitmap's "
                    "last backup (incremental)")
        ->required();
    cmd->add_option("--sync", a->sync, "full (the whole disk), top (what the overlay holds) or incremental")
        ->capture_default_str();
    cmd->add_option("--bitmap", a->bitmap,
                    "Dirty bitmap: what an incremental copies; a full backup with one starts it afresh");
    cmd->add_option("--mode", a->mode, "existing: write into a target that is there already");
    cmd->add_option("--speed", a->speed, "Speed limit per second, e.g. 100M (0 = none; at least 64K)");
    cmd->add_flag("--force", a->force, "Accept a --speed under 64K per second");
    cmd->add_option("--job-id", a->job_id, "Job id (default: the image name)");
    cmd->add_flag("--wait", a->wait, "Wait until the job ends; exit 0 if it completed");
    AddMountOptions(cmd, &a->mount);
    cmd->callback([a, exit_code] { *exit_code = RunBackup(*a); });
  }
  CLI::App* bitmap = app.add_subcommand("bitmap", "Dirty bitmaps of an image of a running mount");
  bitmap->require_subcommand(1);
  for (const char* verb : {"add", "remove", "clear"}) {
    auto a = std::make_shared<BitmapArgs>();
    const std::string name = verb;
    CLI::App* cmd = bitmap->add_subcommand(name, name == "add"      ? "Start recording writes in a new bitmap"
                                                 : name == "remove" ? "Drop a bitmap"
                                                                    : "Clear a bitmap (and make it consistent)");
    cmd->add_option("image", a->image, "Image name in the mount")->required();
    cmd->add_option("name", a->name, "Bitmap name")->required();
    if (name == "add") {
      cmd->add_option("--granularity", a->granularity, "Bytes per bit, a power of two (default: the cluster size)");
      cmd->add_flag("--transient", a->transient, "Keep it for this mount only (not in NAME.bitmaps)");
    }
    AddMountOptions(cmd, &a->mount);
    cmd->callback([a, name, exit_code] { *exit_code = RunBitmap(name, *a); });
  }
}

}  // namespace corfs::cli
