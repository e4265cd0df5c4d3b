// What every corfs command shares: exit codes and usage errors, `corfs help`,
// the output format options, -f. One place, so the commands cannot drift
// apart in how they are called or how they fail.

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "overlay/overlay_files.h"

namespace corfs::cli {

namespace {

// "create, info, check, ...": the commands, in the order `corfs --help` lists them.
std::string CommandNames(CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
  }
  return names;
}

CLI::App* FindCommand(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

int UnknownCommand(CLI::App& app, const std::string& name) {
  std::fprintf(stderr, "corfs: unknown command '%s'; the commands are: %s\nrun 'corfs help' for more\n", name.c_str(),
               CommandNames(app).c_str());
  return kExitUsage;
}

}  // namespace

int Fail(const std::string& message) {
  std::fprintf(stderr, "corfs: %s\n", message.c_str());
  return kExitFailure;
}

int UsageError(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "corfs %s: %s\nrun 'corfs help %s' for its options\n", command.c_str(), message.c_str(),
               command.c_str());
  return kExitUsage;
}

int ReportParseError(const CLI::App& app, const CLI::ParseError& error) {
  // Help and --version are "errors" to CLI11 only; they print and exit 0.
  if (dynamic_cast<const CLI::Success*>(&error) != nullptr) return const_cast<CLI::App&>(app).exit(error);
  const std::vector<CLI::App*> parsed = app.get_subcommands();
  if (parsed.empty()) {
    std::fprintf(stderr, "corfs: %s\nrun 'corfs help' for the commands\n", error.what());
    return kExitUsage;
  }
  return UsageError(parsed.back()->get_name(), error.what());
}

std::optional<int> RefuseUnknownCommand(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-' || FindCommand(app, argv[1]) != nullptr) return std::nullopt;
  return UnknownCommand(app, argv[1]);
}

void AddHelpCommand(CLI::App& app, int* exit_code) {
  auto topic = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("help", "Show the help of corfs, or of one command (as `corfs CMD --help`)");
  cmd->add_option("command", *topic, "The command to explain");
  cmd->callback([&app, topic, exit_code] {
    if (topic->empty()) {
      // app.help() would explain the selected subcommand, `help` itself.
      std::printf("%s", app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal).c_str());
      *exit_code = kExitOk;
      return;
    }
    CLI::App* sub = FindCommand(app, *topic);
    if (sub == nullptr) {
      *exit_code = UnknownCommand(app, *topic);
      return;
    }
    std::printf("%s", sub->help(app.get_name()).c_str());
    *exit_code = kExitOk;
  });
}

void AddOutputOptions(CLI::App* cmd, bool* json) {
  cmd->add_flag("--json", *json, "Print JSON (as --output=json)");
  cmd->add_option_function<std::string>(
         "--output", [json](const std::string& format) { *json = format == "json"; },
         "Output format, as qemu-img: human (the default) or json")
      ->check(CLI::IsMember({"human", "json"}));
}

std::string OverlayArgument(const std::string& path) {
  constexpr std::string_view kSuffix = ".cor";
  if (path.size() <= kSuffix.size() || !path.ends_with(kSuffix)) return path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) || std::filesystem::exists(overlay::MetadataPath(path), ec)) return path;
  return path.substr(0, path.size() - kSuffix.size());
}

void AddOverlayFormatOption(CLI::App* cmd, std::string* format) {
  cmd->add_option("-f,--format", *format,
                  "The overlay's format, as qemu-img's -f; corfs overlays are their own format, so only "
                  "'corfs' is accepted (other formats are backing images: see `corfs create -F`)")
      ->check(CLI::Validator(
          [](std::string& value) {
            return value == kOverlayFormat ? std::string()
                                           : "'" + value + "' is not a corfs overlay format; -f takes only 'corfs'";
          },
          "corfs", "overlay format"));
}

}  // namespace corfs::cli
