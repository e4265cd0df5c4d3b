// corfs check [-f corfs] [--full] OVERLAY: exit 0 when the overlay is sound, 1 with one
// line per problem otherwise.

#include <cstdio>

#include "cli/commands.h"
#include "cli/remote_access.h"
#include "overlay/overlay_inspect.h"

namespace corfs::cli {

void AddCheckCommand(CLI::App& app, int* exit_code) {
  auto overlay_path = std::make_shared<std::string>();
  auto full = std::make_shared<bool>(false);
  auto format = std::make_shared<std::string>(kOverlayFormat);
  CLI::App* cmd = app.add_subcommand("check", "Verify an overlay's header, bitmap, data file and backing chain");
  cmd->add_option("overlay", *overlay_path, "Path of the overlay: its data file NAME or its metadata NAME.cor")
      ->required();
  AddOverlayFormatOption(cmd, format.get());
  cmd->add_flag("--full", *full,
                "Also hash each backing image's whole content and compare it with the hash the overlay records "
                "(overlays made with `create --verify-backing full`)");
  cmd->callback([=] {
    overlay::RemoteOptions remote;
    if (Status env = CommandRemoteOptions(&remote); !env.ok()) {
      *exit_code = Fail(env.message());
      return;
    }
    overlay::CheckReport report;
    overlay::CheckOverlay(OverlayArgument(*overlay_path), overlay::RemoteImageOpener(remote), &report,
                          *full ? overlay::VerifyBacking::kFull : overlay::VerifyBacking::kSampled);
    for (const std::string& note : report.notes) std::printf("note: %s\n", note.c_str());
    for (const std::string& problem : report.problems) std::fprintf(stderr, "problem: %s\n", problem.c_str());
    if (report.sound()) {
      std::printf("%s: no problems found\n", overlay_path->c_str());
      *exit_code = 0;
    } else {
      std::fprintf(stderr, "%s: %zu problem(s) found\n", overlay_path->c_str(), report.problems.size());
      *exit_code = 1;
    }
  });
}

}  // namespace corfs::cli
