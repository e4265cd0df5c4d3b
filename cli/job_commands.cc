// The CLI side of the control socket: corfs stream, jobs, pause, resume,
// cancel, set-speed, threshold, events, status.

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "cli/progress_display.h"
#include "cli/qmp_client.h"
#include "common/size.h"

namespace corfs::cli {

namespace {

struct Target {
  std::string socket;
  std::string mountpoint;
  bool json = false;
};

void AddTargetOptions(CLI::App* cmd, Target* target, bool with_json = true) {
  cmd->add_option("-m,--mountpoint", target->mountpoint, "The mount to steer (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", target->socket, "The mount's control socket");
  if (with_json) AddOutputOptions(cmd, &target->json);
}

Status Connect(const Target& target, QmpClient* client) {
  std::string path;
  CORFS_RETURN_IF_ERROR(ResolveSocket(target.socket, target.mountpoint, &path));
  return QmpClient::Connect(path, client);
}

// A failed command: its message for people; with --json the QMP error
// object too (class and desc), on stdout where the JSON goes.
int FailQmp(const Target& target, const QmpClient& client, const Status& status) {
  if (target.json && !client.last_error().is_null()) {
    std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
  }
  return Fail(status.message());
}

// Connects, runs one command, prints its result as JSON when asked.
int RunSimple(const Target& target, const std::string& command, const nlohmann::json& args, const char* done) {
  QmpClient client;
  Status status = Connect(target, &client);
  nlohmann::json result;
  if (status.ok()) status = client.Execute(command, args, &result);
  if (!status.ok()) return FailQmp(target, client, status);
  if (target.json) {
    std::printf("%s\n", result.dump().c_str());
  } else if (done != nullptr) {
    std::printf("%s\n", done);
  }
  return 0;
}

// Follows job `id` until it concludes: a bar on a terminal, lines otherwise.
// Returns the exit code: 0 when it completed without error.
int WaitForJob(QmpClient& client, const std::string& id, bool json) {
  const bool tty = !json && ::isatty(STDOUT_FILENO);
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (true) {
    std::optional<nlohmann::json> event;
    Status status = client.NextEvent(std::chrono::milliseconds(500), &event);
    if (!status.ok()) return Fail(status.message());
    if (event && (*event)["data"].value("device", std::string()) == id) {
      const std::string name = (*event)["event"].get<std::string>();
      if (name == "BLOCK_JOB_COMPLETED" || name == "BLOCK_JOB_CANCELLED") {
        if (tty) std::printf("\n");
        if (json) {
          std::printf("%s\n", event->dump().c_str());
        } else if (name == "BLOCK_JOB_CANCELLED") {
          std::printf("job %s cancelled\n", id.c_str());
        } else if ((*event)["data"].contains("error")) {
          std::printf("job %s failed: %s\n", id.c_str(), (*event)["data"]["error"].get<std::string>().c_str());
        } else {
          std::printf("job %s completed\n", id.c_str());
        }
        std::fflush(stdout);
        return name == "BLOCK_JOB_COMPLETED" && !(*event)["data"].contains("error") ? 0 : 1;
      }
      if (name == "BLOCK_JOB_ERROR" && !tty)
        std::printf("event=%s %s\n", name.c_str(), (*event)["data"].dump().c_str());
      continue;
    }
    nlohmann::json jobs;
    status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
    if (!status.ok()) return Fail(status.message());
    for (const nlohmann::json& job : jobs) {
      if (job.value("device", std::string()) != id) continue;
      if (tty) {
        std::printf("\r%s\033[K", ProgressBar(job, 30).c_str());
      } else if (std::chrono::steady_clock::now() - last_line >= std::chrono::seconds(1)) {
        std::printf("%s\n", json ? job.dump().c_str() : ProgressLine(job).c_str());
        last_line = std::chrono::steady_clock::now();
      }
      std::fflush(stdout);
    }
  }
}

// The image's state as query-images reports it ("" when unknown: the
// command that follows will say what is wrong).
std::string ImageState(QmpClient& client, const std::string& image) {
  nlohmann::json images;
  if (!client.Execute("query-images", nlohmann::json::object(), &images).ok()) return "";
  for (const nlohmann::json& entry : images) {
    if (entry.value("name", std::string()) == image) return entry.value("state", std::string());
  }
  return "";
}

struct StreamArgs {
  Target target;
  std::string image, speed, base, range, on_error, job_id;
  bool wait = false;
  bool force = false;
};

int RunStream(const StreamArgs& a) {
  nlohmann::json args = {{"device", a.image}};
  if (!a.job_id.empty()) args["job-id"] = a.job_id;
  if (!a.base.empty()) args["base"] = a.base;
  if (!a.on_error.empty()) args["on-error"] = a.on_error;
  if (!a.speed.empty()) {
    uint64_t speed = 0;
    Status parsed = ParseSize(a.speed, &speed);
    if (!parsed.ok()) return UsageError("stream", "--speed: " + parsed.message());
    args["speed"] = speed;
    if (a.force) args["force"] = true;
  }
  if (!a.range.empty()) {
    size_t colon = a.range.find(':');
    uint64_t offset = 0, length = 0;
    Status parsed = colon == std::string::npos ? Status::Invalid("expected OFFSET:LENGTH, e.g. 0:1G")
                                               : ParseSize(a.range.substr(0, colon), &offset);
    if (parsed.ok()) parsed = ParseSize(a.range.substr(colon + 1), &length);
    if (!parsed.ok()) return UsageError("stream", "--range: " + parsed.message());
    args["offset"] = offset;
    args["length"] = length;
  }
  QmpClient client;
  Status status = Connect(a.target, &client);
  if (!status.ok()) return Fail(status.message());
  if (ImageState(client, a.image) == "standalone") {
    // QEMU would start a job that completes at once; saying "started job"
    // for it misleads, and the goal (an image that needs no template) holds.
    if (a.target.json) {
      std::printf("%s\n", nlohmann::json({{"image", a.image}, {"state", "standalone"}}).dump().c_str());
    } else {
      std::printf("nothing to stream: %s is standalone (it has no backing image)\n", a.image.c_str());
    }
    return kExitOk;
  }
  nlohmann::json result;
  status = client.Execute("block-stream", args, &result);
  if (!status.ok()) return FailQmp(a.target, client, status);
  const std::string id = result.value("job-id", a.image);
  if (!a.wait) {
    if (a.target.json) {
      std::printf("%s\n", result.dump().c_str());
    } else {
      std::printf("started job %s", id.c_str());
      if (result.contains("next-offset"))
        std::printf(" (next range starts at %" PRIu64 ")", result["next-offset"].get<uint64_t>());
      std::printf("\n");
    }
    return 0;
  }
  return WaitForJob(client, id, a.target.json);
}

int RunJobs(const Target& target, bool watch) {
  QmpClient client;
  Status status = Connect(target, &client);
  if (!status.ok()) return Fail(status.message());
  const bool tty = !target.json && ::isatty(STDOUT_FILENO);
  int drawn = 0;
  while (true) {
    nlohmann::json jobs;
    status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
    if (!status.ok()) return Fail(status.message());
    if (tty && drawn > 0) std::printf("\033[%dA", drawn);  // redraw in place
    drawn = 0;
    if (target.json) {
      std::printf("%s\n", jobs.dump().c_str());
    } else if (jobs.empty() && !watch) {
      std::printf("no jobs\n");
    }
    for (const nlohmann::json& job : jobs) {
      if (target.json) break;
      // The erase-to-end-of-line escape ("\033[K") is for redrawing bars in
      // place on a terminal; piped output gets plain lines.
      if (tty) {
        std::printf("%s\033[K\n", ProgressBar(job, 30).c_str());
      } else {
        std::printf("%s\n", ProgressLine(job).c_str());
      }
      ++drawn;
    }
    std::fflush(stdout);
    if (!watch || jobs.empty()) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// A bare number under this is taken for a forgotten unit ("threshold IMG 40"
// meaning 40G or 40%), not for bytes: no overlay holds less than a cluster.
constexpr uint64_t kBareThresholdMinimum = uint64_t{1} << 20;

// "write threshold of IMG set to 12.8 MiB (80%)" or "... disabled".
void PrintThreshold(const std::string& image, const std::string& value, const nlohmann::json& result) {
  const uint64_t bytes = result.value("write-threshold", uint64_t{0});
  if (bytes == 0) {
    std::printf("write threshold of %s disabled\n", image.c_str());
    return;
  }
  const std::string percent = !value.empty() && value.back() == '%' ? " (" + value + " of the disk)" : "";
  std::printf("write threshold of %s set to %s%s: one event when the overlay holds more\n", image.c_str(),
              FormatSize(bytes).c_str(), percent.c_str());
}

int RunThreshold(const Target& target, const std::string& image, const std::string& value) {
  nlohmann::json args = {{"node-name", image}};
  if (!value.empty() && value.back() == '%') {
    double percent = 0;
    try {
      size_t used = 0;
      percent = std::stod(value.substr(0, value.size() - 1), &used);
      if (used != value.size() - 1) throw std::invalid_argument(value);
    } catch (const std::exception&) {
      return UsageError("threshold", "'" + value + "' is not a percentage like 80%");
    }
    if (percent < 0 || percent > 100) return UsageError("threshold", "'" + value + "' is not between 0% and 100%");
    args["percent-thousandths"] = static_cast<uint64_t>(std::llround(percent * 1000));
  } else {
    uint64_t bytes = 0;
    Status parsed = ParseSize(value, &bytes);
    if (!parsed.ok()) return UsageError("threshold", parsed.message());
    if (bytes != 0 && bytes < kBareThresholdMinimum && !SizeHasUnit(value)) {
      return UsageError("threshold", "'" + value + "' would be " + value + " bytes: give a unit (e.g. " + value +
                                         "G) or a percentage (" + value + "%), or write " + value +
                                         "B if bytes are meant");
    }
    args["write-threshold"] = bytes;
  }
  QmpClient client;
  Status status = Connect(target, &client);
  nlohmann::json result;
  if (status.ok()) status = client.Execute("block-set-write-threshold", args, &result);
  if (!status.ok()) return FailQmp(target, client, status);
  if (target.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    PrintThreshold(image, value, result);
  }
  return kExitOk;
}

int RunEvents(const Target& target) {
  QmpClient client;
  Status status = Connect(target, &client);
  if (!status.ok()) return Fail(status.message());
  while (true) {
    std::optional<nlohmann::json> event;
    status = client.NextEvent(std::chrono::milliseconds(-1), &event);
    if (!status.ok()) return Fail(status.message());
    if (!event) continue;
    if (target.json) {
      std::printf("%s\n", event->dump().c_str());
    } else {
      std::printf("%s %s\n", (*event)["event"].get<std::string>().c_str(), (*event)["data"].dump().c_str());
    }
    std::fflush(stdout);
  }
}

// query-images' state for people: "has-backing" -> "has backing".
std::string StateText(std::string state) {
  std::replace(state.begin(), state.end(), '-', ' ');
  return state;
}

int RunStatus(const Target& target) {
  QmpClient client;
  Status status = Connect(target, &client);
  nlohmann::json images, jobs;
  if (status.ok()) status = client.Execute("query-images", nlohmann::json::object(), &images);
  if (status.ok()) status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
  if (!status.ok()) return FailQmp(target, client, status);
  if (target.json) {
    std::printf("%s\n", nlohmann::json({{"images", images}, {"jobs", jobs}}).dump().c_str());
    return 0;
  }
  // The name column is as wide as the longest name, so long names keep the
  // columns in line.
  int width = 5;  // "IMAGE"
  for (const nlohmann::json& image : images) {
    width = std::max(width, static_cast<int>(image.value("name", std::string()).size()));
  }
  std::printf("%-*s %10s %7s %-11s %s\n", width, "IMAGE", "SIZE", "LOCAL", "STATE", "JOB");
  for (const nlohmann::json& image : images) {
    const uint64_t size = image.value("virtual-size", uint64_t{0});
    const double local = size == 0 ? 0
                                   : 100.0 * static_cast<double>(image.value("allocated-bytes", uint64_t{0})) /
                                         static_cast<double>(size);
    std::string job = "-";
    for (const nlohmann::json& j : jobs) {
      if (j.value("image", std::string()) == image.value("name", std::string())) {
        char text[96];
        std::snprintf(text, sizeof text, "%s %s %.1f%%", j.value("device", std::string()).c_str(),
                      j.value("status", std::string()).c_str(),
                      j.value("len", uint64_t{0}) == 0 ? 100.0
                                                       : 100.0 * static_cast<double>(j.value("offset", uint64_t{0})) /
                                                             static_cast<double>(j.value("len", uint64_t{1})));
        job = text;
      }
    }
    std::printf("%-*s %10s %6.1f%% %-11s %s\n", width, image.value("name", std::string()).c_str(),
                FormatSize(size).c_str(), local, StateText(image.value("state", std::string())).c_str(), job.c_str());
  }
  return 0;
}

// corfs stream IMAGE [--speed ...] [--wait]
void AddStreamCommand(CLI::App& app, int* exit_code) {
  auto a = std::make_shared<StreamArgs>();
  CLI::App* cmd = app.add_subcommand("stream", "Start streaming an image of a running mount (block-stream)");
  cmd->add_option("image", a->image, "Image name in the mount")->required();
  cmd->add_option("--speed", a->speed, "Speed limit per second, e.g. 100M (0 = none; at least 64K)");
  cmd->add_flag("--force", a->force, "Accept a --speed under 64K per second");
  cmd->add_option("--base", a->base, "Copy only what lies above this backing image; it becomes the backing image");
  cmd->add_option("--range", a->range, "Copy only OFFSET:LENGTH, e.g. 0:1G");
  cmd->add_option("--on-error", a->on_error, "report, ignore or stop");
  cmd->add_option("--job-id", a->job_id, "Job id (default: the image name)");
  cmd->add_flag("--wait", a->wait, "Follow the job until it ends; exit 0 if it completed");
  AddTargetOptions(cmd, &a->target);
  cmd->callback([a, exit_code] { *exit_code = RunStream(*a); });
}

// corfs jobs, pause, resume, cancel, set-speed: the jobs and their control.
void AddJobControlCommands(CLI::App& app, int* exit_code) {
  {
    auto target = std::make_shared<Target>();
    auto watch = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("jobs", "List the jobs of a running mount");
    cmd->add_flag("--watch", *watch, "Redraw every second until no job is left");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = RunJobs(*target, *watch); });
  }
  struct JobVerb {
    const char* name;
    const char* command;
    const char* help;
    const char* done;
  };
  for (const JobVerb& verb : {JobVerb{"pause", "block-job-pause", "Pause a job", "paused"},
                              JobVerb{"resume", "block-job-resume", "Resume a paused job", "resumed"},
                              JobVerb{"cancel", "block-job-cancel", "Cancel a job", "cancel requested"}}) {
    auto target = std::make_shared<Target>();
    auto job = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand(verb.name, verb.help);
    cmd->add_option("job", *job, "Job id")->required();
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = RunSimple(*target, verb.command, {{"device", *job}}, verb.done); });
  }
  {
    auto target = std::make_shared<Target>();
    auto job = std::make_shared<std::string>();
    auto speed = std::make_shared<std::string>();
    auto force = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("set-speed", "Change a job's speed limit");
    cmd->add_option("job", *job, "Job id")->required();
    cmd->add_option("speed", *speed, "Bytes per second, e.g. 50M (0 = unlimited; at least 64K)")->required();
    cmd->add_flag("--force", *force, "Accept a speed under 64K per second");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] {
      uint64_t bytes = 0;
      Status parsed = ParseSize(*speed, &bytes);
      if (!parsed.ok()) {
        *exit_code = UsageError("set-speed", "speed: " + parsed.message());
        return;
      }
      nlohmann::json args = {{"device", *job}, {"speed", bytes}};
      if (*force) args["force"] = true;
      *exit_code = RunSimple(*target, "block-job-set-speed", args, "speed set");
    });
  }
}

// corfs threshold, events, status: the rest of what a mount reports.
void AddMountCommands(CLI::App& app, int* exit_code) {
  {
    auto target = std::make_shared<Target>();
    auto image = std::make_shared<std::string>();
    auto value = std::make_shared<std::string>();
    CLI::App* cmd =
        app.add_subcommand("threshold", "Set a one-shot write threshold (event when the overlay holds more)");
    cmd->add_option("image", *image, "Image name")->required();
    cmd->add_option("value", *value,
                    "A size (10G, 512M; a bare number under 1M is refused as a missing unit: write 40B for bytes) "
                    "or a percentage of the disk (80%); 0 disables")
        ->required();
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = RunThreshold(*target, *image, *value); });
  }
  {
    auto target = std::make_shared<Target>();
    CLI::App* cmd = app.add_subcommand("events", "Print the mount's events as they happen");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = RunEvents(*target); });
  }
  {
    auto target = std::make_shared<Target>();
    CLI::App* cmd = app.add_subcommand("status", "A table of the mount's images: size, local %, state, job");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = RunStatus(*target); });
  }
}

}  // namespace

void AddJobCommands(CLI::App& app, int* exit_code) {
  AddStreamCommand(app, exit_code);
  AddJobControlCommands(app, exit_code);
  AddMountCommands(app, exit_code);
}

}  // namespace corfs::cli
