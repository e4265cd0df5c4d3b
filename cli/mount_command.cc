// corfs mount CONFIG.yaml [MOUNTPOINT]: serves every image of the YAML file
// as a file, in the foreground, until unmounted or interrupted (SIGINT,
// SIGTERM); then commits and unmounts.

#include "cli/commands.h"
#include "cli/mount_session.h"
#include "cli/signal_mask.h"
#include "common/log.h"
#include "config/config_loader.h"
#include "overlay/overlay_inspect.h"

namespace corfs::cli {

namespace {

struct MountArgs {
  std::string config;
  std::string log_level = "info";
  SessionOptions session;
};

int RunMount(MountArgs args) {
  spdlog::level::level_enum level = spdlog::level::info;
  Status parsed = ParseLogLevel(args.log_level, &level);
  if (!parsed.ok()) return Fail("--log-level: " + parsed.message());
  args.session.log = MakeDaemonLogger(level);
  spdlog::logger& log = *args.session.log;
  config::MountConfig cfg;
  config::LoadOptions load_options;
  // A standalone overlay needs no template: its template may be deleted.
  load_options.overlay_is_standalone = [](const std::string& overlay_path) {
    overlay::OverlayInfo info;
    return overlay::InspectOverlay(overlay_path, &info).ok() && info.header.standalone;
  };
  Status loaded = config::LoadMountConfig(args.config, &cfg, load_options);
  if (!loaded.ok()) return Fail(loaded.message());
  // Before any thread exists (overlays, jobs and the control socket start some).
  TerminationSignals blocked;
  std::unique_ptr<MountSession> session;
  SessionOptions session_options = args.session;
  session_options.load_options = load_options;
  Status started = MountSession::Start(cfg, session_options, &session);
  if (!started.ok()) return Fail(started.message());
  log.info("serving {} image(s) at {}, control socket {} (Ctrl-C or `fusermount3 -u {}` to stop)",
           session->image_count(), session->mountpoint(), session->socket_path(), session->mountpoint());
  Status served;
  {
    TerminationSignals::Accepted accepted;
    served = session->Run();
  }
  if (!served.ok()) return Fail(served.message());
  log.info("unmounted {}", session->mountpoint());
  return 0;
}

}  // namespace

void AddMountCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* cmd = app.add_subcommand("mount", "Mount the images of a YAML file as files (runs in the foreground)");
  cmd->add_option("config", args->config, "The YAML file describing images and chains")->required();
  cmd->add_option("mountpoint", args->session.mountpoint,
                  "Folder to mount on (default: `mountpoint:` of the YAML file)");
  cmd->add_flag("--allow-other", args->session.allow_other, "Let other users reach the mount (FUSE allow_other)");
  cmd->add_flag("-d,--debug", args->session.debug, "Print every FUSE request");
  cmd->add_option("--log-level", args->log_level,
                  "Log what is at this level or above: trace, debug, info (default), warn, error or off");
  cmd->callback([args, exit_code] { *exit_code = RunMount(*args); });
}

}  // namespace corfs::cli
