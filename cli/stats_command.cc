// corfs stats [IMAGE] [--json]: the I/O counters of a running mount's images
// (query-blockstats): what guests read, wrote, flushed and discarded, what
// failed, and what copy-on-read fetched from the backing chains.

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "common/size.h"

namespace corfs::cli {

namespace {

struct StatsArgs {
  std::string image;
  std::string mountpoint;
  std::string socket;
  bool json = false;
};

uint64_t Field(const nlohmann::json& stats, const char* name) { return stats.value(name, uint64_t{0}); }

void PrintTable(const nlohmann::json& list) {
  std::printf("%-20s %10s %10s %10s %10s %8s %10s %10s %7s\n", "IMAGE", "READ", "WRITTEN", "READS", "WRITES", "FLUSHES",
              "COR-FAULTS", "COR-READ", "ERRORS");
  for (const nlohmann::json& entry : list) {
    const nlohmann::json& s = entry["stats"];
    const uint64_t errors = Field(s, "failed_rd_operations") + Field(s, "failed_wr_operations") +
                            Field(s, "failed_flush_operations") + Field(s, "failed_unmap_operations");
    std::printf("%-20s %10s %10s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %10" PRIu64 " %10s %7" PRIu64 "\n",
                entry.value("device", std::string()).c_str(), FormatSize(Field(s, "rd_bytes")).c_str(),
                FormatSize(Field(s, "wr_bytes")).c_str(), Field(s, "rd_operations"), Field(s, "wr_operations"),
                Field(s, "flush_operations"), Field(s, "corfs_cor_faults"),
                FormatSize(Field(s, "corfs_cor_bytes")).c_str(), errors);
  }
}

int RunStats(const StatsArgs& args) {
  QmpClient client;
  Status status = ConnectToMount(args.socket, args.mountpoint, &client);
  nlohmann::json all;
  if (status.ok()) status = client.Execute("query-blockstats", nlohmann::json::object(), &all);
  if (!status.ok()) return Fail(status.message());
  nlohmann::json list = nlohmann::json::array();
  for (const nlohmann::json& entry : all) {
    if (args.image.empty() || entry.value("device", std::string()) == args.image) list.push_back(entry);
  }
  if (!args.image.empty() && list.empty()) return Fail("no image '" + args.image + "' in this mount");
  if (args.json) {
    std::printf("%s\n", (args.image.empty() ? list : list[0]).dump().c_str());
  } else {
    PrintTable(list);
  }
  return 0;
}

}  // namespace

void AddStatsCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StatsArgs>();
  CLI::App* cmd = app.add_subcommand("stats", "I/O counters of a running mount's images (query-blockstats)");
  cmd->add_option("image", args->image, "Only this image");
  cmd->add_option("-m,--mountpoint", args->mountpoint, "The mount (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", args->socket, "The mount's control socket");
  cmd->add_flag("--json", args->json, "Print JSON: the query-blockstats entries (one object with IMAGE)");
  cmd->callback([args, exit_code] { *exit_code = RunStats(*args); });
}

}  // namespace corfs::cli
