// corfs mirror IMAGE TARGET: starts a mirror job (QMP drive-mirror) on an
// image of a running mount, and with --wait-ready waits until the target is
// identical and kept so (BLOCK_JOB_READY); `corfs complete JOB` ends it.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "common/size.h"
#include "overlay/image_location.h"

namespace corfs::cli {

namespace {

struct MirrorArgs {
  std::string socket, mountpoint;
  bool json = false;
  std::string image, target, sync = "full", mode, speed, copy_mode, granularity, job_id, on_source_error,
                             on_target_error;
  bool force = false;
  bool wait_ready = false;
};

// Waits for BLOCK_JOB_READY of job `id` (or its end, which is a failure),
// asking query-block-jobs too whenever no event came for a while.
int WaitReady(QmpClient& client, const std::string& id, bool json) {
  while (true) {
    std::optional<nlohmann::json> event;
    Status status = client.NextEvent(std::chrono::milliseconds(500), &event);
    if (!status.ok()) return Fail("the mount went away before job " + id + " was ready (" + status.message() + ")");
    if (event) {
      if ((*event)["data"].value("device", std::string()) != id) continue;
      const std::string name = event->value("event", std::string());
      if (name == "BLOCK_JOB_READY") break;
      if (name == "BLOCK_JOB_COMPLETED" || name == "BLOCK_JOB_CANCELLED") {
        if (json) std::printf("%s\n", event->dump().c_str());
        const std::string error = (*event)["data"].value("error", std::string());
        return Fail("job " + id + " ended before it was ready" + (error.empty() ? "" : ": " + error));
      }
      continue;
    }
    nlohmann::json jobs;
    if (!client.Execute("query-block-jobs", nlohmann::json::object(), &jobs).ok()) continue;
    bool ready = false;
    for (const nlohmann::json& job : jobs) {
      if (job.value("device", std::string()) == id && job.value("status", std::string()) == "ready") ready = true;
    }
    if (ready) break;
  }
  if (json) {
    std::printf("%s\n", nlohmann::json({{"job-id", id}, {"status", "ready"}}).dump().c_str());
  } else {
    std::printf("job %s is ready (complete it with: corfs complete %s)\n", id.c_str(), id.c_str());
  }
  return kExitOk;
}

int RunMirror(const MirrorArgs& a) {
  nlohmann::json args = {{"device", a.image}, {"sync", a.sync}};
  // The daemon has its own working folder: a relative path is made
  // absolute here, where the user meant it.
  std::string target = a.target;
  if (!overlay::IsUri(target) && !target.empty() && target.front() != '/') {
    target = (std::filesystem::current_path() / target).lexically_normal().string();
  }
  args["target"] = target;
  if (!a.mode.empty()) args["mode"] = a.mode;
  if (!a.copy_mode.empty()) args["copy-mode"] = a.copy_mode;
  if (!a.job_id.empty()) args["job-id"] = a.job_id;
  if (!a.on_source_error.empty()) args["on-source-error"] = a.on_source_error;
  if (!a.on_target_error.empty()) args["on-target-error"] = a.on_target_error;
  if (!a.speed.empty()) {
    uint64_t speed = 0;
    Status parsed = ParseSize(a.speed, &speed);
    if (!parsed.ok()) return UsageError("mirror", "--speed: " + parsed.message());
    args["speed"] = speed;
    if (a.force) args["force"] = true;
  }
  if (!a.granularity.empty()) {
    uint64_t granularity = 0;
    Status parsed = ParseSize(a.granularity, &granularity);
    if (!parsed.ok()) return UsageError("mirror", "--granularity: " + parsed.message());
    args["granularity"] = granularity;
  }
  QmpClient client;
  Status status = ConnectToMount(a.socket, a.mountpoint, &client);
  if (!status.ok()) return Fail(status.message());
  nlohmann::json result;
  status = client.Execute("drive-mirror", args, &result);
  if (!status.ok()) {
    if (a.json && !client.last_error().is_null()) {
      std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
    }
    return Fail(status.message());
  }
  const std::string id = result.value("job-id", a.image);
  if (!a.json) std::printf("started job %s\n", id.c_str());
  if (!a.wait_ready) {
    if (a.json) std::printf("%s\n", result.dump().c_str());
    return kExitOk;
  }
  std::fflush(stdout);
  return WaitReady(client, id, a.json);
}

}  // namespace

void AddMirrorCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<MirrorArgs>();
  CLI::App* cmd = app.add_subcommand("mirror", "Mirror an image of a running mount to a target (drive-mirror)");
  cmd->add_option("image", a->image, "Image name in the mount")->required();
  cmd->add_option("target", a->target, "A raw file (made unless --mode existing) or an NBD URI")->required();
  cmd->add_option("--sync", a->sync, "full: the whole disk; top: only what the overlay holds")
      ->check(CLI::IsMember({"full", "top"}));
  cmd->add_option("--mode", a->mode, "existing: write into a target that exists (it must have the disk's size)")
      ->check(CLI::IsMember({"existing", "absolute-paths"}));
  cmd->add_option("--speed", a->speed, "Speed limit per second, e.g. 100M (0 = none; at least 64K)");
  cmd->add_flag("--force", a->force, "Accept a --speed under 64K per second");
  cmd->add_option("--copy-mode", a->copy_mode,
                  "background (default) or write-blocking: guest writes reach the target before they are answered")
      ->check(CLI::IsMember({"background", "write-blocking"}));
  cmd->add_option("--granularity", a->granularity, "Dirty-tracking chunk, a power of two (default: a cluster)");
  cmd->add_option("--on-source-error", a->on_source_error, "report, ignore or stop");
  cmd->add_option("--on-target-error", a->on_target_error, "report, ignore or stop");
  cmd->add_option("--job-id", a->job_id, "Job id (default: the image name)");
  cmd->add_flag("--wait-ready", a->wait_ready, "Wait until the job is ready (the target identical and kept so)");
  cmd->add_option("-m,--mountpoint", a->mountpoint, "The mount to steer (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", a->socket, "The mount's control socket");
  AddOutputOptions(cmd, &a->json);
  cmd->callback([a, exit_code] { *exit_code = RunMirror(*a); });
}

}  // namespace corfs::cli
