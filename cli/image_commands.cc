// corfs image-add NAME KEY=VALUE... and corfs image-remove NAME: images
// joining and leaving a running mount, over its control socket (QMP
// image-add and image-remove).
//
// KEY is a key of an image as the YAML file spells it, with a dot into
// `stream:` (stream.speed=50M); a key given twice makes a list
// (backing=top.qcow2 backing=base.raw); a VALUE that starts with [ or { is
// YAML flow (backing=[top.qcow2, base.raw]). Paths are read as in the YAML
// file: relative to its folder.

#include <cstdio>

#include <yaml-cpp/yaml.h>

#include "cli/commands.h"
#include "cli/qmp_client.h"

namespace corfs::cli {

namespace {

struct ImageTarget {
  std::string socket;
  std::string mountpoint;
};

void AddImageTargetOptions(CLI::App* cmd, ImageTarget* target) {
  cmd->add_option("-m,--mountpoint", target->mountpoint, "The mount to change (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", target->socket, "The mount's control socket");
}

int Execute(const ImageTarget& target, const std::string& command, const nlohmann::json& args,
            const std::string& done) {
  QmpClient client;
  Status status = ConnectToMount(target.socket, target.mountpoint, &client);
  nlohmann::json result;
  if (status.ok()) status = client.Execute(command, args, &result);
  if (!status.ok()) return Fail(status.message());
  std::printf("%s\n", done.c_str());
  return 0;
}

// A YAML node as JSON; scalars stay text (the YAML reader reads text).
nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return node.Scalar();
    case YAML::NodeType::Sequence: {
      nlohmann::json list = nlohmann::json::array();
      for (const YAML::Node& element : node) list.push_back(ToJson(element));
      return list;
    }
    case YAML::NodeType::Map: {
      nlohmann::json map = nlohmann::json::object();
      for (const auto& entry : node) map[entry.first.as<std::string>()] = ToJson(entry.second);
      return map;
    }
    default: return nullptr;
  }
}

Status ParseValue(const std::string& text, nlohmann::json* out) {
  if (text.empty() || (text.front() != '[' && text.front() != '{')) {
    *out = text;
    return Status::Ok();
  }
  try {
    *out = ToJson(YAML::Load(text));
    return Status::Ok();
  } catch (const YAML::Exception& e) {
    return Status::Invalid("'" + text + "' is not a YAML [list] or {map}: " + e.msg);
  }
}

// KEY=VALUE arguments -> the image's keys.
Status ParseSettings(const std::vector<std::string>& settings, nlohmann::json* out) {
  nlohmann::json keys = nlohmann::json::object();
  for (const std::string& setting : settings) {
    const size_t equals = setting.find('=');
    if (equals == std::string::npos || equals == 0) {
      return Status::Invalid("'" + setting + "' is not KEY=VALUE (e.g. overlay=overlays/vm3.img)");
    }
    nlohmann::json value;
    CORFS_RETURN_IF_ERROR(ParseValue(setting.substr(equals + 1), &value).WithContext(setting.substr(0, equals)));
    nlohmann::json* map = &keys;
    std::string key = setting.substr(0, equals);
    for (size_t dot; (dot = key.find('.')) != std::string::npos; key = key.substr(dot + 1)) {
      nlohmann::json& inner = (*map)[key.substr(0, dot)];
      if (inner.is_null()) inner = nlohmann::json::object();
      if (!inner.is_object()) return Status::Invalid(setting + ": " + key.substr(0, dot) + " is not a map");
      map = &inner;
    }
    nlohmann::json& slot = (*map)[key];
    if (slot.is_null()) {
      slot = std::move(value);
    } else {
      if (!slot.is_array()) slot = nlohmann::json::array({slot});
      slot.push_back(std::move(value));
    }
  }
  *out = std::move(keys);
  return Status::Ok();
}

}  // namespace

void AddImageCommands(CLI::App& app, int* exit_code) {
  {
    auto target = std::make_shared<ImageTarget>();
    auto name = std::make_shared<std::string>();
    auto settings = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand("image-add", "Add an image to a running mount (QMP image-add)");
    cmd->add_option("name", *name, "The image's file name in the mount")->required();
    cmd->add_option("settings", *settings,
                    "KEY=VALUE: the image's keys as in the YAML file (overlay=..., backing=..., stream.speed=...)");
    AddImageTargetOptions(cmd, target.get());
    cmd->callback([=] {
      nlohmann::json args;
      Status parsed = ParseSettings(*settings, &args);
      if (!parsed.ok()) {
        *exit_code = Fail(parsed.message());
        return;
      }
      args["name"] = *name;
      *exit_code = Execute(*target, "image-add", args, "added " + *name);
    });
  }
  {
    auto target = std::make_shared<ImageTarget>();
    auto name = std::make_shared<std::string>();
    CLI::App* cmd =
        app.add_subcommand("image-remove",
                           "Remove an idle image from a running mount (QMP image-remove); its overlay stays on disk");
    cmd->add_option("name", *name, "The image's file name in the mount")->required();
    AddImageTargetOptions(cmd, target.get());
    cmd->callback([=] { *exit_code = Execute(*target, "image-remove", {{"name", *name}}, "removed " + *name); });
  }
}

}  // namespace corfs::cli
