// The CLI side of the control socket: corfs stream, jobs, pause, resume,
// cancel, set-speed, threshold, events, status.

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <set>

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
  return ConnectToMount(target.socket, target.mountpoint, client);
}

// A failed command: its message for people; with --json the QMP error
// object too (class and desc), on stdout where the JSON goes.
int FailQmp(const Target& target, const QmpClient& client, const Status& status) {
  if (target.json && !client.last_error().is_null()) {
    std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
  }
  return Fail(status.message());
}

// Connects, runs one command, prints its result as JSON when asked. With
// `wait_for` (a job id), then follows that job until it ends: the exit
// code is the job's.
int RunSimple(const Target& target, const std::string& command, const nlohmann::json& args, const char* done,
              const std::string& wait_for = "") {
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
  std::fflush(stdout);
  if (!wait_for.empty()) return FollowJob(client, wait_for, target.json);
  return 0;
}

// The end events of a job: BLOCK_JOB_COMPLETED or BLOCK_JOB_CANCELLED.
bool IsJobEnd(const nlohmann::json& event) {
  const std::string name = event.value("event", std::string());
  return name == "BLOCK_JOB_COMPLETED" || name == "BLOCK_JOB_CANCELLED";
}

// Whether an end event says the job completed without an error.
bool EndedWell(const nlohmann::json& event) {
  return event.value("event", std::string()) == "BLOCK_JOB_COMPLETED" && !event["data"].contains("error");
}

// The last frame of a job's bar, from its end event: a job that completed
// is drawn at 100% (its data say nothing remains) with no time left.
std::string FinalBar(const nlohmann::json& event) {
  nlohmann::json job = event["data"];
  job["rate"] = job.value("average-rate", 0.0);
  job["eta-seconds"] = EndedWell(event) ? 0.0 : -1.0;
  return ProgressBar(job, TerminalColumns() - 1);
}

// A watch whose mount went away (unmounted, or the daemon died): a clear
// message instead of the socket's error, and exit status 2.
int MountWentAway(const Status& status, const std::string& what) {
  std::fprintf(stderr, "corfs: the mount went away %s (%s)\n", what.c_str(), status.message().c_str());
  return 2;
}

// Follows job `id` until it concludes: a bar on a terminal (as wide as the
// terminal, asked at every redraw), lines otherwise; at the end the last
// frame and a summary. Returns the exit code: 0 when it completed without
// error.
int WaitForJob(QmpClient& client, const std::string& id, bool json) {
  const bool tty = !json && ::isatty(STDOUT_FILENO);
  auto last_line = std::chrono::steady_clock::now() - std::chrono::hours(1);
  while (true) {
    std::optional<nlohmann::json> event;
    Status status = client.NextEvent(std::chrono::milliseconds(500), &event);
    if (status.ok() && !event) {
      nlohmann::json jobs;
      status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
      for (const nlohmann::json& job : status.ok() ? jobs : nlohmann::json::array()) {
        if (job.value("device", std::string()) != id) continue;
        if (tty) {
          std::printf("\r%s\033[K", ProgressBar(job, TerminalColumns() - 1).c_str());
        } else if (std::chrono::steady_clock::now() - last_line >= std::chrono::seconds(1)) {
          std::printf("%s\n", json ? job.dump().c_str() : ProgressLine(job).c_str());
          last_line = std::chrono::steady_clock::now();
        }
        std::fflush(stdout);
      }
    }
    if (!status.ok()) {
      if (tty) std::printf("\n");
      std::fflush(stdout);
      return MountWentAway(status, "before job " + id + " ended");
    }
    if (!event || (*event)["data"].value("device", std::string()) != id) continue;
    if (IsJobEnd(*event)) {
      if (json) {
        std::printf("%s\n", event->dump().c_str());
      } else {
        if (tty) std::printf("\r%s\033[K\n", FinalBar(*event).c_str());
        std::printf("%s\n", JobSummary((*event)["event"], (*event)["data"]).c_str());
      }
      std::fflush(stdout);
      return EndedWell(*event) ? 0 : 1;
    }
    if ((*event)["event"] == "BLOCK_JOB_ERROR" && !tty) {
      std::printf("event=BLOCK_JOB_ERROR %s\n", (*event)["data"].dump().c_str());
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

// What `corfs jobs` has drawn, so that a watch redraws it in place and
// prints the summary of each job that ends.
class JobsView {
 public:
  explicit JobsView(bool json) : json_(json), tty_(!json && ::isatty(STDOUT_FILENO)) {}

  void Draw(const nlohmann::json& jobs, bool watch) {
    if (tty_ && drawn_ > 0) std::printf("\033[%dA", drawn_);  // redraw in place
    drawn_ = 0;
    if (json_) {
      std::printf("%s\n", jobs.dump().c_str());
    } else if (jobs.empty() && !watch) {
      std::printf("no jobs\n");
    }
    for (const nlohmann::json& job : jobs) {
      open_.insert(job.value("device", std::string()));
      if (json_) continue;
      // The erase-to-end-of-line escape ("\033[K") is for redrawing bars in
      // place on a terminal; piped output gets plain lines. A bar is one
      // column short of the terminal, so it never wraps.
      if (tty_) {
        std::printf("%s\033[K\n", ProgressBar(job, TerminalColumns() - 1).c_str());
        ++drawn_;
      } else {
        std::printf("%s\n", ProgressLine(job).c_str());
      }
    }
    std::fflush(stdout);
  }

  // A job ended: its last frame and summary go above the bars, which the
  // next Draw puts back below.
  void Ended(const nlohmann::json& event) {
    if (!open_.erase(event["data"].value("device", std::string()))) return;
    if (tty_ && drawn_ > 0) std::printf("\033[%dA\033[J", drawn_);
    drawn_ = 0;
    if (json_) {
      std::printf("%s\n", event.dump().c_str());
    } else {
      if (tty_) std::printf("%s\033[K\n", FinalBar(event).c_str());
      std::printf("%s\n", JobSummary(event["event"], event["data"]).c_str());
    }
    std::fflush(stdout);
  }

  // Jobs drawn whose end was not printed yet.
  bool waiting() const { return !open_.empty(); }

 private:
  const bool json_;
  const bool tty_;
  int drawn_ = 0;
  std::set<std::string> open_;
};

// Waits up to `timeout` for events, showing the jobs that end; with
// `until_all_ended`, only until every job drawn has ended.
Status ShowEnds(QmpClient& client, std::chrono::milliseconds timeout, bool until_all_ended, JobsView* view) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!until_all_ended || view->waiting()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Ok();
    std::optional<nlohmann::json> event;
    CORFS_RETURN_IF_ERROR(client.NextEvent(left, &event));
    if (event && IsJobEnd(*event)) view->Ended(*event);
  }
  return Status::Ok();
}

// corfs jobs [--watch]: a watch redraws every second until no job is left,
// and shows each job's summary as it ends. Exit 2 when the mount goes away
// during a watch.
int RunJobs(const Target& target, bool watch) {
  QmpClient client;
  Status status = Connect(target, &client);
  if (!status.ok()) return Fail(status.message());
  JobsView view(target.json);
  while (true) {
    nlohmann::json jobs;
    status = client.Execute("query-block-jobs", nlohmann::json::object(), &jobs);
    if (!status.ok()) return watch ? MountWentAway(status, "while jobs ran") : Fail(status.message());
    view.Draw(jobs, watch);
    if (!watch) return 0;
    if (jobs.empty()) {
      // A job that just ended is gone from the list before its end event
      // may have arrived; its summary is still due.
      status = ShowEnds(client, std::chrono::seconds(2), /*until_all_ended=*/true, &view);
      return status.ok() ? 0 : MountWentAway(status, "while jobs ran");
    }
    status = ShowEnds(client, std::chrono::seconds(1), /*until_all_ended=*/false, &view);
    if (!status.ok()) return MountWentAway(status, "while jobs ran");
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

}  // namespace

int FollowJob(QmpClient& client, const std::string& id, bool json) { return WaitForJob(client, id, json); }

namespace {

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
    bool can_wait;  // --wait: follow the job until it ends
  };
  for (const JobVerb& verb :
       {JobVerb{"pause", "block-job-pause", "Pause a job", "paused", false},
        JobVerb{"resume", "block-job-resume", "Resume a paused job", "resumed", false},
        JobVerb{"cancel", "block-job-cancel", "Cancel a job", "cancel requested", true},
        JobVerb{"complete", "block-job-complete", "Finish a job that is ready (a mirror, an active commit)",
                "completion requested", true}}) {
    auto target = std::make_shared<Target>();
    auto job = std::make_shared<std::string>();
    auto wait = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand(verb.name, verb.help);
    cmd->add_option("job", *job, "Job id")->required();
    if (verb.can_wait) cmd->add_flag("--wait", *wait, "Then wait until the job ends; exit 0 if it completed");
    AddTargetOptions(cmd, target.get());
    cmd->callback([=] {
      *exit_code = RunSimple(*target, verb.command, {{"device", *job}}, verb.done, *wait ? *job : "");
    });
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
