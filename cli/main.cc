// corfs: the command line. One file per subcommand; this one only wires them.

#include <cstdio>

#include "cli/commands.h"

namespace corfs::cli {

int Fail(const std::string& message) {
  std::fprintf(stderr, "corfs: %s\n", message.c_str());
  return 1;
}

}  // namespace corfs::cli

namespace {

int Run(int argc, char** argv) {
  CLI::App app{"corfs: disk images as copy-on-read overlays"};
  app.require_subcommand(1);
  int exit_code = 0;
  corfs::cli::AddCreateCommand(app, &exit_code);
  corfs::cli::AddInfoCommand(app, &exit_code);
  corfs::cli::AddCheckCommand(app, &exit_code);
  corfs::cli::AddMountCommand(app, &exit_code);
  corfs::cli::AddJobCommands(app, &exit_code);
  corfs::cli::AddMapCommand(app, &exit_code);
  corfs::cli::AddStatsCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
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
  return 1;
}
