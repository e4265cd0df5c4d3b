// corfs map IMAGE [--json | --output=json]: the allocation map of a disk, as
// `qemu-img map` gives it (overlay/block_map.h). IMAGE is an overlay's data
// file, read from its files (it may be in use by a mount: the map then
// shows its last commit), or with -m/-S the name of an image of a running
// mount, mapped live over the control socket (query-block-map).

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "cli/remote_access.h"
#include "common/size.h"
#include "overlay/block_map.h"
#include "overlay/overlay.h"
#include "overlay/overlay_files.h"
#include "overlay/overlay_inspect.h"

namespace corfs::cli {

namespace {

struct MapArgs {
  std::string image;
  std::string mountpoint;
  std::string socket;
  std::string output = "human";
  bool json = false;
};

nlohmann::json RunJson(const overlay::MapRun& run) {
  return {{"start", run.start},     {"length", run.length}, {"depth", run.depth},
          {"present", run.present}, {"zero", run.zero},     {"data", run.data}};
}

// The runs as qemu-img prints them: a JSON array, one run a line.
void PrintJson(const nlohmann::json& runs) {
  std::printf("[");
  for (size_t i = 0; i < runs.size(); ++i) std::printf("%s%s", i == 0 ? "" : ",\n", runs[i].dump().c_str());
  std::printf("]\n");
}

// A table; `layers` names depth 0 (the overlay), 1, ... (the chain).
void PrintTable(const nlohmann::json& runs, const std::vector<std::string>& layers) {
  std::printf("%-16s %-16s %-9s %5s  %s\n", "START", "LENGTH", "", "DEPTH", "CONTENT");
  for (const nlohmann::json& run : runs) {
    const uint64_t start = run["start"].get<uint64_t>();
    const uint64_t length = run["length"].get<uint64_t>();
    const size_t depth = run["depth"].get<size_t>();
    const std::string content = !run["present"].get<bool>() ? "unallocated (reads zeros)"
                                : run["data"].get<bool>()   ? "data"
                                                            : "zeros";
    const std::string layer = depth < layers.size() ? layers[depth] : "depth " + std::to_string(depth);
    std::printf("%-16" PRIu64 " %-16" PRIu64 " %-9s %5zu  %s in %s\n", start, length,
                ("(" + FormatSize(length) + ")").c_str(), depth, content.c_str(), layer.c_str());
  }
}

int Print(const MapArgs& args, const nlohmann::json& runs, const std::vector<std::string>& layers) {
  if (args.json || args.output == "json") {
    PrintJson(runs);
  } else {
    PrintTable(runs, layers);
  }
  return 0;
}

int RunOffline(const MapArgs& args) {
  std::vector<overlay::MapRun> runs;
  overlay::RemoteOptions remote;
  Status mapped = CommandRemoteOptions(&remote);
  if (mapped.ok())
    mapped = overlay::MapOverlayFile(args.image, overlay::RemoteImageOpener(remote), overlay::WarnOnStderr, &runs);
  if (!mapped.ok()) return Fail(mapped.message());
  overlay::OverlayInfo info;
  std::vector<std::string> layers = {"overlay"};
  if (overlay::InspectOverlay(args.image, &info).ok()) {
    for (const overlay::BackingImage& image : info.header.chain) layers.push_back(image.spec.path);
  }
  nlohmann::json list = nlohmann::json::array();
  for (const overlay::MapRun& run : runs) list.push_back(RunJson(run));
  return Print(args, list, layers);
}

int RunLive(const MapArgs& args) {
  QmpClient client;
  Status status = ConnectToMount(args.socket, args.mountpoint, &client);
  nlohmann::json runs;
  nlohmann::json images;
  if (status.ok()) status = client.Execute("query-block-map", {{"device", args.image}}, &runs);
  if (status.ok()) status = client.Execute("query-images", nlohmann::json::object(), &images);
  if (!status.ok()) return Fail(status.message());
  std::vector<std::string> layers = {"overlay"};
  for (const nlohmann::json& image : images) {
    if (image.value("name", std::string()) != args.image) continue;
    for (const nlohmann::json& backing : image["backing-chain"]) layers.push_back(backing.value("filename", ""));
  }
  return Print(args, runs, layers);
}

}  // namespace

void AddMapCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MapArgs>();
  CLI::App* cmd =
      app.add_subcommand("map", "The allocation map of a disk, as qemu-img map: which layer holds each run");
  cmd->add_option("image", args->image,
                  "An overlay (its data file); with -m or -S, the name of an image of that running mount")
      ->required();
  cmd->add_option("-m,--mountpoint", args->mountpoint, "Map an image of this running mount (live)");
  cmd->add_option("-S,--socket", args->socket, "Map an image of the mount with this control socket (live)");
  cmd->add_flag("--json", args->json, "Print JSON, as qemu-img map --output=json");
  cmd->add_option("--output", args->output, "human or json (as qemu-img)")->check(CLI::IsMember({"human", "json"}));
  cmd->callback([args, exit_code] {
    const bool live = !args->mountpoint.empty() || !args->socket.empty();
    *exit_code = live ? RunLive(*args) : RunOffline(*args);
  });
}

}  // namespace corfs::cli
