// corfs info [-f corfs] [--json | --output=json] OVERLAY

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/hex.h"
#include "common/size.h"
#include "overlay/overlay_files.h"
#include "overlay/overlay_inspect.h"

namespace corfs::cli {

namespace {

// Offline, corfs cannot know whether a mount streams the overlay right now,
// only whether it still reads from a backing chain (`status` and
// query-images say "streaming" when a job runs on the image).
std::string State(const overlay::OverlayHeader& header) { return header.standalone ? "standalone" : "has-backing"; }
std::string StateText(const overlay::OverlayHeader& header) { return header.standalone ? "standalone" : "has backing"; }

// The data file as `info` shows it: its path, and what is odd about it.
std::string DataFileText(const overlay::OverlayInfo& info) {
  if (!info.data_file_problem.empty()) return info.data_file + " (" + info.data_file_problem + ")";
  if (info.rename_pending) return info.data_file + " (complete; the next mount renames it to " + info.path + ")";
  return info.data_file;
}

double Percent(const overlay::OverlayInfo& info) {
  return info.header.virtual_size == 0
             ? 0.0
             : 100.0 * static_cast<double>(info.allocated_bytes) / static_cast<double>(info.header.virtual_size);
}

void PrintJson(const overlay::OverlayInfo& info) {
  nlohmann::json chain = nlohmann::json::array();
  for (const overlay::BackingImage& image : info.header.chain) {
    nlohmann::json entry = {{"path", image.spec.path},
                            {"resolved-path", overlay::ResolveBackingPath(info.path, image.spec.path)},
                            {"format", image.spec.format},
                            {"size", image.identity.size},
                            {"fingerprint", Hex16(image.identity.fingerprint)}};
    if (const auto& stamp = image.identity.stamp) {
      entry["mtime-ns"] = stamp->mtime_ns;
      entry["device"] = stamp->device;
      entry["inode"] = stamp->inode;
    }
    if (image.identity.content) entry["content-hash"] = image.identity.content->ToString();
    chain.push_back(std::move(entry));
  }
  nlohmann::json out = {{"path", info.path},
                        {"data-file", info.data_file},
                        {"data-file-rename-pending", info.rename_pending},
                        {"virtual-size", info.header.virtual_size},
                        {"cluster-size", info.header.cluster_size()},
                        {"clusters", info.header.cluster_count()},
                        {"allocated-clusters", info.allocated_clusters},
                        {"allocated-bytes", info.allocated_bytes},
                        {"allocated-percent", Percent(info)},
                        {"disk-usage", info.data_file_bytes},
                        {"state", State(info.header)},
                        {"header-version", info.header.version},
                        {"header-sequence", info.header.sequence},
                        {"backing-chain", chain}};
  std::printf("%s\n", out.dump(2).c_str());
}

void PrintText(const overlay::OverlayInfo& info) {
  const overlay::OverlayHeader& h = info.header;
  std::printf("image:          %s\n", info.path.c_str());
  std::printf("data file:      %s\n", DataFileText(info).c_str());
  std::printf("virtual size:   %s (%" PRIu64 " bytes)\n", FormatSize(h.virtual_size).c_str(), h.virtual_size);
  std::printf("cluster size:   %s\n", FormatSize(h.cluster_size()).c_str());
  std::printf("allocated:      %s (%.1f%%, %" PRIu64 " of %" PRIu64 " clusters)\n",
              FormatSize(info.allocated_bytes).c_str(), Percent(info), info.allocated_clusters, h.cluster_count());
  std::printf("disk usage:     %s\n", FormatSize(info.data_file_bytes).c_str());
  std::printf("state:          %s\n", StateText(h).c_str());
  std::printf("format:         version %u\n", h.version);
  if (h.chain.empty()) {
    std::printf("backing chain:  none\n");
    return;
  }
  std::printf("backing chain:\n");
  for (size_t i = 0; i < h.chain.size(); ++i) {
    const overlay::BackingImage& image = h.chain[i];
    const std::string content =
        image.identity.content ? ", content hash " + image.identity.content->ToString() : std::string();
    std::printf("  %zu. %s (%s, %s, fingerprint %s%s)\n", i + 1, image.spec.path.c_str(), image.spec.format.c_str(),
                FormatSize(image.identity.size).c_str(), Hex16(image.identity.fingerprint).c_str(), content.c_str());
  }
}

}  // namespace

void AddInfoCommand(CLI::App& app, int* exit_code) {
  auto overlay_path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto format = std::make_shared<std::string>(kOverlayFormat);
  CLI::App* cmd = app.add_subcommand("info", "Show an overlay's size, allocation, state and backing chain");
  cmd->add_option("overlay", *overlay_path, "Path of the overlay: its data file NAME or its metadata NAME.cor")
      ->required();
  AddOverlayFormatOption(cmd, format.get());
  AddOutputOptions(cmd, json.get());
  cmd->callback([=] {
    overlay::OverlayInfo info;
    Status status = overlay::InspectOverlay(OverlayArgument(*overlay_path), &info);
    if (!status.ok()) {
      *exit_code = Fail(status.message());
      return;
    }
    *json ? PrintJson(info) : PrintText(info);
    *exit_code = 0;
  });
}

}  // namespace corfs::cli
