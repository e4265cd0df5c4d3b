#include "control/block_commands.h"

#include <functional>
#include <string>
#include <vector>

#include "control/backup_commands.h"
#include "control/commit_commands.h"
#include "control/export_commands.h"
#include "control/image_commands.h"
#include "control/job_arguments.h"
#include "control/mirror_commands.h"
#include "control/observability_commands.h"
#include "control/version.h"

namespace corfs::control {

namespace {

QmpResult NoSuchImage(const std::string& name) {
  return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
}

QmpResult NoSuchJob(const std::string& id) {
  return QmpResult::Error("DeviceNotActive", "No active block job with id '" + id + "'");
}

// QEMU's reply to a job command naming no job (query-jobs' id space), also
// what a job that concluded gets: corfs dismisses a job once it concludes,
// as QEMU does with auto-dismiss.
QmpResult JobNotFound() { return QmpResult::Generic("Job not found"); }

// A query command takes no arguments.
QmpResult NoArguments(const nlohmann::json& args, const std::function<QmpResult()>& query) {
  QmpError error;
  if (!Arguments(args).OnlyKnown({}, &error)) return Failed(error);
  return query();
}

nlohmann::json ImageJson(const mount::MountedImage& image, jobs::JobManager& jobs) {
  const overlay::Overlay& ovl = *image.overlay;
  overlay::OverlayHeader header = ovl.header();
  nlohmann::json chain = nlohmann::json::array();
  for (const overlay::BackingImage& backing : header.chain) {
    chain.push_back({{"filename", backing.spec.path},
                     {"format", backing.spec.format},
                     {"virtual-size", backing.identity.size}});
  }
  nlohmann::json job = nullptr;
  bool streaming = false;
  for (const jobs::JobInfo& info : jobs.List()) {
    if (info.image != image.name()) continue;
    job = info.id;
    streaming |= info.type == "stream" && info.state != jobs::JobState::kConcluded;
  }
  // "streaming" only while a stream job is there (paused or stopped on an
  // error too): an overlay that merely reads from its chain "has-backing".
  const char* state = header.standalone ? "standalone" : streaming ? "streaming" : "has-backing";
  return {{"name", image.name()},
          {"filename", ovl.path()},
          {"virtual-size", ovl.size()},
          {"cluster-size", ovl.cluster_size()},
          {"allocated-bytes", ovl.allocated_bytes()},
          {"allocated-clusters", ovl.allocated_clusters()},
          {"clusters", ovl.cluster_count()},
          {"backing-chain", chain},
          {"state", state},
          {"read-only", ovl.read_only()},
          {"exporting", image.export_gate.closed()},
          {"write-threshold", ovl.write_threshold()},
          {"dirty-bitmaps", DirtyBitmapsJson(image)},
          {"job", job}};
}

// QEMU's BlockDeviceIoStatus.
const char* IoStatusName(jobs::IoStatus status) {
  switch (status) {
    case jobs::IoStatus::kOk: return "ok";
    case jobs::IoStatus::kFailed: return "failed";
    case jobs::IoStatus::kNoSpace: return "nospace";
  }
  return "failed";
}

// QMP names a job's id "device". "error" is there while the job is stopped
// on an error (io-status not ok). "offset" and "len" are QEMU's (the range
// walked, holes included); corfs adds what of it was copied, recorded as
// holes or held already, and the estimate of what is still to copy
// ("remaining", absent while unknown), which "rate" (bytes copied per
// second) and "eta-seconds" are about; and "resumed" when the mount started
// the job again from the wish an earlier one left in the overlay; "profile"
// when it replays a boot profile first, with "profile-offset" (the
// profile's bytes it is past) of "profile-len"; "dirty-bytes" for a job that
// tracks guest writes (a mirror): what its dirty bitmap still marks.
nlohmann::json JobJson(const jobs::JobInfo& info) {
  nlohmann::json job = {{"type", info.type},
                        {"device", info.id},
                        {"image", info.image},
                        {"len", info.len},
                        {"offset", info.offset},
                        {"copied", info.copied},
                        {"holes", info.holes},
                        {"local", info.local},
                        {"elapsed-seconds", info.elapsed_seconds},
                        {"speed", info.speed},
                        {"rate", info.rate},
                        {"eta-seconds", info.eta_seconds},
                        {"status", jobs::ToString(info.state)},
                        {"paused", info.state == jobs::JobState::kPaused},
                        {"busy", info.state == jobs::JobState::kRunning},
                        {"ready", info.state == jobs::JobState::kReady},
                        {"io-status", IoStatusName(info.io_status)},
                        {"resumed", info.resumed},
                        {"profile", info.profile}};
  if (info.profile) {
    job["profile-offset"] = info.profile_offset;
    job["profile-len"] = info.profile_len;
  }
  if (info.remaining) job["remaining"] = *info.remaining;
  if (info.dirty_bytes) job["dirty-bytes"] = *info.dirty_bytes;
  if (!info.error.empty()) job["error"] = info.error;
  return job;
}

// QEMU's JobInfo (query-jobs): progress in bytes of the job's range.
nlohmann::json GenericJobJson(const jobs::JobInfo& info) {
  nlohmann::json job = {{"id", info.id},
                        {"type", info.type},
                        {"status", jobs::ToString(info.state)},
                        {"current-progress", info.offset},
                        {"total-progress", info.len}};
  if (!info.error.empty()) job["error"] = info.error;
  return job;
}

QmpResult PauseJob(jobs::Job& job) {
  if (!job.Pause()) return QmpResult::Generic("Job is already paused");
  return QmpResult::Ok();
}

QmpResult ResumeJob(jobs::Job& job) {
  if (!job.Resume()) return QmpResult::Generic("Can't resume a job that was not paused");
  return QmpResult::Ok();
}

// Tells a READY job (a mirror, an active commit) to finish; QEMU refuses
// any other state the same way.
QmpResult CompleteJob(jobs::Job& job) {
  Status status = job.Complete();
  if (!status.ok()) return QmpResult::Generic(status.message());
  return QmpResult::Ok();
}

QmpResult BlockStream(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device", "job-id", "base", "speed", "force", "on-error", "offset", "length"}, &error)) {
    return Failed(error);
  }
  // Here "device" is the image to stream.
  std::string image_name;
  if (!a.String("device", &image_name, &error)) return Failed(error);
  std::shared_ptr<const mount::MountedImage> image = context.images->Find(image_name);
  if (image == nullptr) return NoSuchImage(image_name);
  jobs::StreamOptions options = image->config.stream.JobDefaults();
  options.base.reset();
  std::string text;
  uint64_t number = 0;
  if (auto refused = ParseJobId(a, &options.job_id)) return *refused;
  if (a.Has("base")) {
    if (!a.String("base", &text, &error)) return Failed(error);
    options.base = text;
  }
  if (auto refused = ParseSpeed(a, &options.speed)) return *refused;
  if (a.Has("on-error")) {
    if (!a.String("on-error", &text, &error)) return Failed(error);
    if (!jobs::ParseOnError(text, &options.on_error)) {
      return QmpResult::Generic("Parameter 'on-error' does not accept value '" + text +
                                "' (expected report, ignore or stop)");
    }
  }
  if (a.Has("offset")) {
    if (!a.Unsigned("offset", &number, &error)) return Failed(error);
    options.range_offset = number;
  }
  if (a.Has("length")) {
    if (!a.Unsigned("length", &number, &error)) return Failed(error);
    options.range_length = number;
  }
  jobs::StartedStream started;
  Status status = context.jobs->StartStream(*image->overlay, image_name, options, &started);
  if (!status.ok()) return QmpResult::Generic(status.message());
  nlohmann::json result = {{"job-id", started.job_id}};
  if (started.next_offset) result["next-offset"] = *started.next_offset;
  return QmpResult::Ok(result);
}

// The job named by the "device" argument: QMP spells a job id "device".
QmpResult WithJob(ControlContext& context, const nlohmann::json& args, std::initializer_list<const char*> known,
                  const std::function<QmpResult(jobs::Job&)>& act) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown(known, &error)) return Failed(error);
  std::string job_id;
  if (!a.String("device", &job_id, &error)) return Failed(error);
  std::shared_ptr<jobs::Job> job = context.jobs->Find(job_id);
  if (job == nullptr) return NoSuchJob(job_id);
  return act(*job);
}

// The job named by the "id" argument, for QEMU's generic job-* commands.
QmpResult WithGenericJob(ControlContext& context, const nlohmann::json& args,
                         const std::function<QmpResult(jobs::Job&)>& act) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"id"}, &error)) return Failed(error);
  std::string job_id;
  if (!a.String("id", &job_id, &error)) return Failed(error);
  std::shared_ptr<jobs::Job> job = context.jobs->Find(job_id);
  if (job == nullptr) return JobNotFound();
  return act(*job);
}

// QEMU refuses to dismiss a job that has not concluded; a concluded one is
// dismissed already (see JobNotFound), unless it concluded just now.
QmpResult DismissJob(jobs::Job& job) {
  if (job.concluded()) return QmpResult::Ok();
  const jobs::JobInfo info = job.Info();
  return QmpResult::Generic("Job '" + info.id + "' in state '" + jobs::ToString(info.state) +
                            "' cannot accept command verb 'dismiss'");
}

QmpResult Quit(ControlContext& context, const nlohmann::json& args) {
  QmpError error;
  if (!Arguments(args).OnlyKnown({}, &error)) return Failed(error);
  if (!context.quit) return QmpResult::Generic("quit is not available here");
  Status status = context.quit();
  if (!status.ok()) return QmpResult::Generic(status.message());
  return QmpResult::Ok();
}

void AddGenericJobCommands(CommandTable& table, ControlContext* ctx) {
  table.Add("query-jobs", [ctx](const nlohmann::json& args) {
    return NoArguments(args, [ctx] {
      nlohmann::json list = nlohmann::json::array();
      for (const jobs::JobInfo& info : ctx->jobs->List()) list.push_back(GenericJobJson(info));
      return QmpResult::Ok(list);
    });
  });
  table.Add("job-pause", [ctx](const nlohmann::json& args) { return WithGenericJob(*ctx, args, PauseJob); });
  table.Add("job-resume", [ctx](const nlohmann::json& args) { return WithGenericJob(*ctx, args, ResumeJob); });
  table.Add("job-cancel", [ctx](const nlohmann::json& args) {
    return WithGenericJob(*ctx, args, [](jobs::Job& job) {
      job.Cancel(/*force=*/true);  // QEMU's job-cancel always forces
      return QmpResult::Ok();
    });
  });
  table.Add("job-complete", [ctx](const nlohmann::json& args) { return WithGenericJob(*ctx, args, CompleteJob); });
  table.Add("job-dismiss", [ctx](const nlohmann::json& args) { return WithGenericJob(*ctx, args, DismissJob); });
  table.Add("quit", [ctx](const nlohmann::json& args) { return Quit(*ctx, args); });
}

QmpResult SetWriteThreshold(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"node-name", "device", "write-threshold", "percent-thousandths"}, &error)) return Failed(error);
  std::string name;
  if (a.Has("node-name") ? !a.String("node-name", &name, &error) : !a.String("device", &name, &error)) {
    return Failed(error);
  }
  std::shared_ptr<const mount::MountedImage> image = context.images->Find(name);
  if (image == nullptr) return NoSuchImage(name);
  uint64_t bytes = 0;
  if (a.Has("write-threshold") == a.Has("percent-thousandths")) {
    return QmpResult::Generic("give exactly one of 'write-threshold' (bytes) and 'percent-thousandths'");
  }
  if (a.Has("write-threshold")) {
    if (!a.Unsigned("write-threshold", &bytes, &error)) return Failed(error);
  } else {
    uint64_t thousandths = 0;
    if (!a.Unsigned("percent-thousandths", &thousandths, &error)) return Failed(error);
    if (thousandths > 100000) return QmpResult::Generic("'percent-thousandths' is at most 100000 (100%)");
    // Thousandths of a percent, as libvirt's virDomainSetBlockThreshold takes.
    bytes = static_cast<uint64_t>(static_cast<long double>(image->overlay->size()) * thousandths / 100000);
  }
  if (bytes > image->overlay->size()) {
    return QmpResult::Generic("write threshold " + std::to_string(bytes) + " is larger than the disk");
  }
  ArmWriteThreshold(*image, bytes, *context.events);
  return QmpResult::Ok({{"write-threshold", bytes}});
}

const char* JobEventName(jobs::JobEvent::Kind kind) {
  switch (kind) {
    case jobs::JobEvent::Kind::kCompleted: return "BLOCK_JOB_COMPLETED";
    case jobs::JobEvent::Kind::kCancelled: return "BLOCK_JOB_CANCELLED";
    case jobs::JobEvent::Kind::kReady: return "BLOCK_JOB_READY";
    case jobs::JobEvent::Kind::kError: return "BLOCK_JOB_ERROR";
  }
  return "BLOCK_JOB_UNKNOWN";
}

Event JobEventQmp(const jobs::JobEvent& event) {
  const jobs::JobInfo& job = event.job;
  // QMP names a job's id "device".
  nlohmann::json data = {{"type", job.type}, {"device", job.id},     {"image", job.image},
                         {"len", job.len},   {"offset", job.offset}, {"speed", job.speed}};
  if (event.kind == jobs::JobEvent::Kind::kError) {
    data["operation"] = event.operation == jobs::IoOperation::kWrite ? "write" : "read";
    data["action"] = jobs::ToString(event.action);
    data["reason"] = event.error.value_or("");
    data["count"] = event.count;
  } else if (event.error) {
    data["error"] = *event.error;
  }
  if (event.kind == jobs::JobEvent::Kind::kCompleted || event.kind == jobs::JobEvent::Kind::kCancelled) {
    // corfs' summary of the job, beside QEMU's fields.
    data["copied"] = job.copied;
    data["holes"] = job.holes;
    data["local"] = job.local;
    if (job.remaining) data["remaining"] = *job.remaining;
    data["elapsed-seconds"] = job.elapsed_seconds;
    data["average-rate"] = job.AverageRate();
    data["resumed"] = job.resumed;
  }
  return {JobEventName(event.kind), std::move(data)};
}

}  // namespace

jobs::JobEventSink PublishJobEvents(EventBus& events) {
  EventBus* bus = &events;
  return [bus](const jobs::JobEvent& event) { bus->Publish(JobEventQmp(event)); };
}

void ArmWriteThreshold(const mount::MountedImage& image, uint64_t bytes, EventBus& events) {
  const std::string name = image.name();
  EventBus* bus = &events;
  image.overlay->SetWriteThreshold(bytes, [bus, name](uint64_t threshold, uint64_t exceeded) {
    bus->Publish({"BLOCK_WRITE_THRESHOLD",
                  {{"node-name", name}, {"write-threshold", threshold}, {"amount-exceeded", exceeded}}});
  });
}

CommandTable MakeBlockCommands(ControlContext& context) {
  CommandTable table;
  ControlContext* ctx = &context;
  table.Add("query-version",
            [](const nlohmann::json& args) { return NoArguments(args, [] { return QmpResult::Ok(VersionJson()); }); });
  table.Add("query-images", [ctx](const nlohmann::json& args) {
    return NoArguments(args, [ctx] {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& image : ctx->images->Snapshot()) list.push_back(ImageJson(*image, *ctx->jobs));
      return QmpResult::Ok(list);
    });
  });
  table.Add("block-stream", [ctx](const nlohmann::json& args) { return BlockStream(*ctx, args); });
  AddMirrorCommand(table, ctx);
  table.Add("query-block-jobs", [ctx](const nlohmann::json& args) {
    return NoArguments(args, [ctx] {
      nlohmann::json list = nlohmann::json::array();
      for (const jobs::JobInfo& info : ctx->jobs->List()) list.push_back(JobJson(info));
      return QmpResult::Ok(list);
    });
  });
  table.Add("block-job-set-speed", [ctx](const nlohmann::json& args) {
    return WithJob(*ctx, args, {"device", "speed", "force"}, [&](jobs::Job& job) {
      QmpError error;
      uint64_t speed = 0;
      Arguments a(args);
      if (!a.Unsigned("speed", &speed, &error)) return Failed(error);
      if (auto refused = ParseSpeed(a, &speed)) return *refused;
      job.SetSpeed(speed);
      return QmpResult::Ok();
    });
  });
  table.Add("block-job-pause", [ctx](const nlohmann::json& args) { return WithJob(*ctx, args, {"device"}, PauseJob); });
  table.Add("block-job-resume",
            [ctx](const nlohmann::json& args) { return WithJob(*ctx, args, {"device"}, ResumeJob); });
  table.Add("block-job-cancel", [ctx](const nlohmann::json& args) {
    return WithJob(*ctx, args, {"device", "force"}, [&](jobs::Job& job) {
      // QEMU's: without force a READY mirror completes (Job::Cancel).
      QmpError error;
      bool force = false;
      Arguments a(args);
      if (a.Has("force") && !a.Bool("force", &force, &error)) return Failed(error);
      job.Cancel(force);
      return QmpResult::Ok();
    });
  });
  table.Add("block-job-complete",
            [ctx](const nlohmann::json& args) { return WithJob(*ctx, args, {"device"}, CompleteJob); });
  table.Add("block-set-write-threshold", [ctx](const nlohmann::json& args) { return SetWriteThreshold(*ctx, args); });
  AddGenericJobCommands(table, ctx);
  AddCommitCommands(table, ctx);
  AddImageCommands(table, ctx);
  AddExportCommands(table, ctx);
  AddResizeCommand(table, context);
  AddBackupCommands(table, ctx);
  AddObservabilityCommands(table, ctx);
  // Listed from the table itself, so the list cannot miss a command.
  const std::vector<std::string> names = table.Names();
  table.Add("query-commands", [names](const nlohmann::json& args) {
    return NoArguments(args, [&names] {
      nlohmann::json list = nlohmann::json::array({{{"name", "qmp_capabilities"}}});
      for (const std::string& name : names) list.push_back({{"name", name}});
      list.push_back({{"name", "query-commands"}});
      return QmpResult::Ok(list);
    });
  });
  return table;
}

}  // namespace corfs::control
