#include "control/observability_commands.h"

#include <algorithm>
#include <string>
#include <vector>

#include "overlay/block_map.h"

namespace corfs::control {

namespace {

// QEMU's BlockDeviceStats for what corfs serves (no zone appends, merges or
// invalid requests: the FUSE server sees none), with corfs' copy-on-read.
nlohmann::json StatsJson(const mount::MountedImage& image) {
  using mount::IoKind;
  const mount::IoCounts rd = image.io_stats.Get(IoKind::kRead);
  const mount::IoCounts wr = image.io_stats.Get(IoKind::kWrite);
  const mount::IoCounts flush = image.io_stats.Get(IoKind::kFlush);
  const mount::IoCounts unmap = image.io_stats.Get(IoKind::kDiscard);
  const overlay::Overlay::CopyOnReadCounts cor = image.overlay->copy_on_read_counts();
  return {{"rd_bytes", rd.bytes},
          {"wr_bytes", wr.bytes},
          {"unmap_bytes", unmap.bytes},
          {"rd_operations", rd.operations},
          {"wr_operations", wr.operations},
          {"flush_operations", flush.operations},
          {"unmap_operations", unmap.operations},
          {"rd_total_time_ns", rd.total_time_ns},
          {"wr_total_time_ns", wr.total_time_ns},
          {"flush_total_time_ns", flush.total_time_ns},
          {"unmap_total_time_ns", unmap.total_time_ns},
          {"failed_rd_operations", rd.failed},
          {"failed_wr_operations", wr.failed},
          {"failed_flush_operations", flush.failed},
          {"failed_unmap_operations", unmap.failed},
          {"account_invalid", false},
          {"account_failed", true},
          {"corfs_cor_faults", cor.faults},
          {"corfs_cor_bytes", cor.bytes}};
}

QmpResult QueryBlockstats(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  // QEMU's query-nodes asks for every node of each device's graph; an
  // image of corfs is one node, so both answers are the same.
  if (!a.OnlyKnown({"query-nodes"}, &error)) return Failed(error);
  bool nodes = false;
  if (a.Has("query-nodes") && !a.Bool("query-nodes", &nodes, &error)) return Failed(error);
  nlohmann::json list = nlohmann::json::array();
  for (const std::shared_ptr<mount::MountedImage>& mounted : context.images->Snapshot()) {
    const mount::MountedImage& image = *mounted;
    list.push_back({{"device", image.name()}, {"node-name", image.name()}, {"stats", StatsJson(image)}});
  }
  return QmpResult::Ok(list);
}

QmpResult QueryBlockMap(ControlContext& context, const nlohmann::json& args) {
  Arguments a(args);
  QmpError error;
  if (!a.OnlyKnown({"device"}, &error)) return Failed(error);
  std::string name;
  if (!a.String("device", &name, &error)) return Failed(error);
  const std::shared_ptr<mount::MountedImage> image = context.images->Find(name);
  if (image == nullptr) return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
  std::vector<overlay::MapRun> runs;
  Status mapped = image->overlay->Map(&runs);
  if (!mapped.ok()) return QmpResult::Generic(mapped.message());
  nlohmann::json list = nlohmann::json::array();
  for (const overlay::MapRun& run : runs) {
    list.push_back({{"start", run.start},
                    {"length", run.length},
                    {"depth", run.depth},
                    {"present", run.present},
                    {"zero", run.zero},
                    {"data", run.data}});
  }
  return QmpResult::Ok(list);
}

// The names a command's arguments give to what it acts on, for its log line:
// as given, or as a JSON string (escaped) when one holds a control
// character, so that no name a client sends can end the line and forge the
// next.
std::string NamedTargets(const nlohmann::json& args) {
  std::string out;
  if (!args.is_object()) return out;
  for (const char* key : {"device", "node-name", "id", "job-id"}) {
    auto it = args.find(key);
    if (it == args.end() || !it->is_string()) continue;
    const std::string& name = it->get_ref<const std::string&>();
    const bool plain = std::none_of(name.begin(), name.end(),
                                    [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    out += std::string(" ") + key + "=" +
           (plain ? name : it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  return out;
}

}  // namespace

void AddObservabilityCommands(CommandTable& table, ControlContext* context) {
  table.Add("query-blockstats", [context](const nlohmann::json& args) { return QueryBlockstats(*context, args); });
  table.Add("query-block-map", [context](const nlohmann::json& args) { return QueryBlockMap(*context, args); });
}

void LogCommands(CommandTable& table, const std::shared_ptr<spdlog::logger>& log) {
  for (const std::string& name : table.Names()) {
    QmpHandler handler = *table.Find(name);
    const spdlog::level::level_enum level = name.rfind("query-", 0) == 0 ? spdlog::level::debug : spdlog::level::info;
    table.Add(name, [name, handler, level, log](const nlohmann::json& args) {
      QmpResult result = handler(args);
      log->log(level, "control: {}{}: {}", name, NamedTargets(args),
               result.error ? "error " + result.error->error_class : std::string("ok"));
      return result;
    });
  }
}

}  // namespace corfs::control
