// corfs profile show PATH [--json]: a boot profile (overlay/boot_profile.h):
// its template, its ranges in the order the guest first read them, their
// bytes and the time they span.
// corfs profile merge A B... -o C: several profiles of one template as one,
// each cluster ordered by the median of its first-read times.

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "common/size.h"
#include "overlay/boot_profile.h"

namespace corfs::cli {

namespace {

struct ShowArgs {
  std::string path;
  bool json = false;
};

struct MergeArgs {
  std::vector<std::string> inputs;
  std::string output;
};

double Seconds(uint64_t ns) { return static_cast<double>(ns) / 1e9; }

nlohmann::json ProfileJson(const overlay::BootProfile& profile) {
  nlohmann::json layers = nlohmann::json::array();
  for (const overlay::ProfileLayer& layer : profile.layers) {
    layers.push_back({{"path", layer.path}, {"size", layer.size}});
  }
  nlohmann::json ranges = nlohmann::json::array();
  for (const overlay::ProfileRange& range : profile.ranges) {
    ranges.push_back({{"offset", range.offset}, {"length", range.length}, {"first-read-ns", range.first_read_ns}});
  }
  return {{"cluster-size", profile.cluster_size},
          {"template", layers},
          {"bytes", profile.bytes()},
          {"span-ns", profile.span_ns()},
          {"ranges", ranges}};
}

void PrintProfile(const std::string& path, const overlay::BootProfile& profile) {
  std::printf("boot profile %s\n", path.c_str());
  for (size_t i = 0; i < profile.layers.size(); ++i) {
    std::printf("template layer %zu: %s (%s)\n", i, profile.layers[i].path.c_str(),
                FormatSize(profile.layers[i].size).c_str());
  }
  std::printf("cluster size: %s\n", FormatSize(profile.cluster_size).c_str());
  std::printf("ranges: %zu, bytes: %" PRIu64 " (%s), time span: %.3f s\n", profile.ranges.size(), profile.bytes(),
              FormatSize(profile.bytes()).c_str(), Seconds(profile.span_ns()));
  std::printf("%-6s %-16s %-12s %s\n", "#", "OFFSET", "LENGTH", "FIRST READ");
  for (size_t i = 0; i < profile.ranges.size(); ++i) {
    const overlay::ProfileRange& range = profile.ranges[i];
    std::printf("%-6zu %-16" PRIu64 " %-12" PRIu64 " +%.3f s\n", i, range.offset, range.length,
                Seconds(range.first_read_ns));
  }
}

int RunShow(const ShowArgs& args) {
  overlay::BootProfile profile;
  Status loaded = overlay::LoadBootProfile(args.path, &profile);
  if (!loaded.ok()) return Fail(loaded.message());
  if (args.json) {
    std::printf("%s\n", ProfileJson(profile).dump(2).c_str());
  } else {
    PrintProfile(args.path, profile);
  }
  return kExitOk;
}

int RunMerge(const MergeArgs& args) {
  std::vector<overlay::BootProfile> profiles(args.inputs.size());
  for (size_t i = 0; i < args.inputs.size(); ++i) {
    Status loaded = overlay::LoadBootProfile(args.inputs[i], &profiles[i]);
    if (!loaded.ok()) return Fail(loaded.message());
  }
  overlay::BootProfile merged;
  Status status = overlay::MergeBootProfiles(profiles, args.inputs, &merged);
  if (status.ok()) status = overlay::SaveBootProfile(args.output, merged);
  if (!status.ok()) return Fail(status.message());
  std::printf("%s: %zu ranges, %s, from %zu profiles\n", args.output.c_str(), merged.ranges.size(),
              FormatSize(merged.bytes()).c_str(), profiles.size());
  return kExitOk;
}

}  // namespace

void AddProfileCommand(CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand("profile", "Show or merge boot profiles (the YAML key boot_profile)");
  cmd->require_subcommand(1);

  auto show = std::make_shared<ShowArgs>();
  CLI::App* show_cmd = cmd->add_subcommand("show", "Print a boot profile: its ranges, bytes and time span");
  show_cmd->add_option("path", show->path, "The profile")->required();
  show_cmd->add_flag("--json", show->json, "Print JSON");
  show_cmd->callback([show, exit_code] { *exit_code = RunShow(*show); });

  auto merge = std::make_shared<MergeArgs>();
  CLI::App* merge_cmd =
      cmd->add_subcommand("merge", "Merge boot profiles of one template: ranges by their median first-read time");
  merge_cmd->add_option("profiles", merge->inputs, "The profiles to merge (two or more)")->required()->expected(2, -1);
  merge_cmd->add_option("-o,--output", merge->output, "The merged profile to write")->required();
  merge_cmd->callback([merge, exit_code] { *exit_code = RunMerge(*merge); });
}

}  // namespace corfs::cli
