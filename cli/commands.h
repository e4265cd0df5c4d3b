#pragma once
// The subcommands of `corfs`. Each Add*Command registers one subcommand on
// the app; its callback sets *exit_code (one of the exit codes below).

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace corfs::cli {

// The exit codes of every corfs command, as most Unix tools have them (and
// unlike CLI11's own, 106 and up): scripts test for 0, 1 and 2 only.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed
inline constexpr int kExitUsage = 2;    // the command line is wrong; nothing was done

void AddCreateCommand(CLI::App& app, int* exit_code);
void AddInfoCommand(CLI::App& app, int* exit_code);
void AddCheckCommand(CLI::App& app, int* exit_code);
void AddMountCommand(CLI::App& app, int* exit_code);
void AddJobCommands(CLI::App& app, int* exit_code);
void AddMirrorCommand(CLI::App& app, int* exit_code);
void AddBackupCommand(CLI::App& app, int* exit_code);  // backup, bitmap
void AddImageCommands(CLI::App& app, int* exit_code);
void AddResizeCommand(CLI::App& app, int* exit_code);
void AddExportCommands(CLI::App& app, int* exit_code);
void AddMapCommand(CLI::App& app, int* exit_code);
void AddStatsCommand(CLI::App& app, int* exit_code);
void AddProfileCommand(CLI::App& app, int* exit_code);

void AddCommitCommand(CLI::App& app, int* exit_code);

class QmpClient;
// Follows job `id` on `client`'s mount until it ends (a bar or lines, then
// a summary, as `corfs stream --wait`); 0 when it completed without error.
int FollowJob(QmpClient& client, const std::string& id, bool json);

// `corfs help [CMD]`: the text of `corfs --help` or `corfs CMD --help`.
void AddHelpCommand(CLI::App& app, int* exit_code);

// Prints "corfs: <message>" to stderr and returns kExitFailure.
int Fail(const std::string& message);

// A usage mistake CLI11 cannot see (an option's value is wrong): prints
// "corfs CMD: <message>" and where to find the options, returns kExitUsage.
int UsageError(const std::string& command, const std::string& message);

// What main does with a CLI11 parse error: help and --version print and
// return 0, everything else is a usage error (the command named if CLI11
// got that far).
int ReportParseError(const CLI::App& app, const CLI::ParseError& error);

// `corfs foo`: names the commands there are. nullopt when argv names a
// command (or an option), so parsing goes on.
std::optional<int> RefuseUnknownCommand(CLI::App& app, int argc, char** argv);

// --json and its qemu-img spelling --output=json (--output=human is the
// default): both set *json.
void AddOutputOptions(CLI::App* cmd, bool* json);

// An overlay as the user named it: its data file NAME, or its metadata
// NAME.cor (the file people see `.cor` on and reach for). NAME.cor names
// the overlay NAME when NAME.cor exists and NAME.cor.cor does not.
std::string OverlayArgument(const std::string& path);

// The format of an overlay, for -f: corfs opens and makes only its own
// overlays, so "corfs" is the one value -f takes.
inline constexpr const char* kOverlayFormat = "corfs";
void AddOverlayFormatOption(CLI::App* cmd, std::string* format);

}  // namespace corfs::cli
