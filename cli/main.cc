// corfs: the command line. One file per subcommand; this one only wires them.

#include <cstdio>

#include "cli/commands.h"
#include "control/version.h"

namespace {

int Run(int argc, char** argv) {
  // Named here, not taken from argv[0], so usage lines and help2man's pages
  // say `corfs` however it was started.
  CLI::App app{"corfs: disk images as copy-on-read overlays", "corfs"};
  app.set_version_flag("-V,--version", corfs::control::VersionJson()["package"].get<std::string>());
  app.require_subcommand(1);
  app.footer(
      "Run `corfs help CMD` (or `corfs CMD --help`) for the options of a command.\n"
      "Exit status: 0 success, 1 failure, 2 usage error (nothing was done).\n");
  int exit_code = 0;
  corfs::cli::AddCreateCommand(app, &exit_code);
  corfs::cli::AddInfoCommand(app, &exit_code);
  corfs::cli::AddCheckCommand(app, &exit_code);
  corfs::cli::AddMountCommand(app, &exit_code);
  corfs::cli::AddJobCommands(app, &exit_code);
  corfs::cli::AddCommitCommand(app, &exit_code);
  corfs::cli::AddMirrorCommand(app, &exit_code);
  corfs::cli::AddBackupCommand(app, &exit_code);
  corfs::cli::AddImageCommands(app, &exit_code);
  corfs::cli::AddResizeCommand(app, &exit_code);
  corfs::cli::AddExportCommands(app, &exit_code);
  corfs::cli::AddHelpCommand(app, &exit_code);
  corfs::cli::AddMapCommand(app, &exit_code);
  corfs::cli::AddStatsCommand(app, &exit_code);
  corfs::cli::AddProfileCommand(app, &exit_code);
  // Last: it names every command added above.
  if (std::optional<int> refused = corfs::cli::RefuseUnknownCommand(app, argc, argv)) return *refused;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return corfs::cli::ReportParseError(app, e);
  }
  return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  // Errors are Status values; what throws is a library (memory, the
  // filesystem library, JSON) failing where no one expected it.
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corfs: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "corfs: internal error\n");
  }
  return corfs::cli::kExitFailure;
}
