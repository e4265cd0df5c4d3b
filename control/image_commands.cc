#include "control/image_commands.h"

namespace corfs::control {

namespace {

QmpResult ImageAdd(ControlContext& context, const nlohmann::json& args) {
  if (!context.add_image) return QmpResult::Generic("image-add is not available here");
  QmpError error;
  std::string name;
  nlohmann::json keys = args;
  keys.erase("name");
  // Without a name the keys are still read, so that a mistyped one is
  // named too; the YAML file's reader checks them.
  if (!Arguments(args).String("name", &name, &error)) {
    Status keys_ok = context.add_image("", keys, /*check_only=*/true);
    return QmpResult::Generic(keys_ok.ok() ? error.desc : error.desc + "; " + keys_ok.message());
  }
  Status added = context.add_image(name, keys, /*check_only=*/false);
  if (!added.ok()) return QmpResult::Generic(added.message());
  return QmpResult::Ok();
}

QmpResult ImageRemove(ControlContext& context, const nlohmann::json& args) {
  if (!context.remove_image) return QmpResult::Generic("image-remove is not available here");
  Arguments a(args);
  QmpError error;
  std::string name;
  if (!a.OnlyKnown({"name"}, &error) || !a.String("name", &name, &error)) {
    return QmpResult::Error(error.error_class, error.desc);
  }
  if (context.images->Find(name) == nullptr)
    return QmpResult::Error("DeviceNotFound", "Image '" + name + "' not found");
  Status removed = context.remove_image(name);
  if (!removed.ok()) return QmpResult::Generic(removed.message());
  return QmpResult::Ok();
}

nlohmann::json NamedReasons(const std::vector<std::pair<std::string, std::string>>& entries) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [name, reason] : entries) list.push_back({{"name", name}, {"reason", reason}});
  return list;
}

}  // namespace

void AddImageCommands(CommandTable& table, ControlContext* context) {
  table.Add("image-add", [context](const nlohmann::json& args) { return ImageAdd(*context, args); });
  table.Add("image-remove", [context](const nlohmann::json& args) { return ImageRemove(*context, args); });
}

void PublishImageAdded(EventBus& events, const std::string& name) {
  events.Publish({"CORFS_IMAGE_ADDED", {{"name", name}}});
}

void PublishImageRemoved(EventBus& events, const std::string& name) {
  events.Publish({"CORFS_IMAGE_REMOVED", {{"name", name}}});
}

void PublishReloaded(EventBus& events, const ReloadReport& report) {
  if (!report.error.empty()) {
    events.Publish({"CORFS_CONFIG_RELOADED", {{"error", report.error}}});
    return;
  }
  events.Publish({"CORFS_CONFIG_RELOADED",
                  {{"added", report.added},
                   {"removed", report.removed},
                   {"kept", NamedReasons(report.kept)},
                   {"refused", NamedReasons(report.refused)}}});
}

}  // namespace corfs::control
