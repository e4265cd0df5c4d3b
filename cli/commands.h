#pragma once
// The subcommands of `corfs`. Each Add*Command registers one subcommand on
// the app; its callback sets *exit_code (0 when all went well).

#include <CLI/CLI.hpp>

namespace corfs::cli {

void AddCreateCommand(CLI::App& app, int* exit_code);
void AddInfoCommand(CLI::App& app, int* exit_code);
void AddCheckCommand(CLI::App& app, int* exit_code);
void AddMountCommand(CLI::App& app, int* exit_code);
void AddJobCommands(CLI::App& app, int* exit_code);
void AddMapCommand(CLI::App& app, int* exit_code);
void AddStatsCommand(CLI::App& app, int* exit_code);

// Prints "corfs: <message>" to stderr and returns the exit code for errors.
int Fail(const std::string& message);

}  // namespace corfs::cli
