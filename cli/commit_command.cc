// corfs commit IMAGE [--top IMG] [--base IMG] [--speed S] [--wait] -m MNT:
// block-commit on a running mount (jobs/commit_driver.h). Without --top it
// is an active commit: it waits in READY for `corfs complete`, or with
// --wait is completed as soon as it is ready.

#include <chrono>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "common/size.h"

namespace corfs::cli {

namespace {

struct CommitArgs {
  std::string socket, mountpoint, image, top, base, speed, on_error, job_id;
  bool wait = false;
  bool force = false;
  bool json = false;
};

int RunCommit(const CommitArgs& a) {
  nlohmann::json args = {{"device", a.image}};
  if (!a.job_id.empty()) args["job-id"] = a.job_id;
  if (!a.top.empty()) args["top"] = a.top;
  if (!a.base.empty()) args["base"] = a.base;
  if (!a.on_error.empty()) args["on-error"] = a.on_error;
  if (!a.speed.empty()) {
    uint64_t speed = 0;
    Status parsed = ParseSize(a.speed, &speed);
    if (!parsed.ok()) return UsageError("commit", "--speed: " + parsed.message());
    args["speed"] = speed;
    if (a.force) args["force"] = true;
  }
  QmpClient client;
  Status status = ConnectToMount(a.socket, a.mountpoint, &client);
  if (!status.ok()) return Fail(status.message());
  nlohmann::json result;
  status = client.Execute("block-commit", args, &result);
  if (!status.ok()) {
    if (a.json && !client.last_error().is_null()) {
      std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
    }
    return Fail(status.message());
  }
  const std::string id = result.value("job-id", a.image);
  if (!a.wait) {
    if (a.json) {
      std::printf("%s\n", result.dump().c_str());
    } else {
      std::printf("started job %s\n", id.c_str());
    }
    return kExitOk;
  }
  if (a.top.empty()) {
    // An active commit waits in READY for block-job-complete: --wait gives
    // it as soon as the job is ready (the guest's writes are held back for
    // the last copy only).
    while (true) {
      nlohmann::json jobs;
      status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
      if (!status.ok()) return Fail(status.message());
      const nlohmann::json* found = nullptr;
      for (const nlohmann::json& job : jobs) {
        if (job.value("device", std::string()) == id) found = &job;
      }
      if (found == nullptr) break;  // ended: its end event tells how
      if (found->value("status", std::string()) == "ready") {
        status = client.Execute("block-job-complete", {{"device", id}}, &result);
        if (!status.ok()) return Fail(status.message());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return FollowJob(client, id, a.json);
}

}  // namespace

void AddCommitCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<CommitArgs>();
  CLI::App* cmd = app.add_subcommand("commit",
                                     "Write the overlay or an image of its chain into a raw image below it, then drop "
                                     "what is above it (block-commit)");
  cmd->add_option("image", a->image, "Image name in the mount")->required();
  cmd->add_option("--top", a->top,
                  "The image of the chain to commit, with everything down to the base (default: the overlay itself, an "
                  "active commit)");
  cmd->add_option("--base", a->base, "The raw image to write into (default: the bottom of the chain)");
  cmd->add_option("--speed", a->speed, "Speed limit per second, e.g. 100M (0 = none; at least 64K)");
  cmd->add_flag("--force", a->force, "Accept a --speed under 64K per second");
  cmd->add_option("--on-error", a->on_error, "report, ignore or stop");
  cmd->add_option("--job-id", a->job_id, "Job id (default: the image name)");
  cmd->add_flag("--wait", a->wait,
                "Follow the job until it ends (an active commit is completed once ready); exit 0 if it completed");
  cmd->add_option("-m,--mountpoint", a->mountpoint, "The mount to steer (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", a->socket, "The mount's control socket");
  AddOutputOptions(cmd, &a->json);
  cmd->callback([a, exit_code] { *exit_code = RunCommit(*a); });
}

}  // namespace corfs::cli
