// corfs resize IMAGE SIZE -m MOUNTPOINT: grows an image of a running mount
// over its control socket (QMP block_resize). SIZE is absolute (10G) or,
// with a leading +, added to the current size (+5G). A disk only grows.

#include <cstdio>

#include "cli/commands.h"
#include "cli/qmp_client.h"
#include "common/size.h"

namespace corfs::cli {

namespace {

struct ResizeArgs {
  std::string image;
  std::string size;
  std::string mountpoint;
  std::string socket;
  bool json = false;
};

// The image's size as the mount reports it (query-images).
Status CurrentSize(QmpClient& client, const std::string& image, uint64_t* out) {
  nlohmann::json images;
  CORFS_RETURN_IF_ERROR(client.Execute("query-images", nlohmann::json::object(), &images));
  for (const nlohmann::json& entry : images) {
    if (entry.value("name", std::string()) == image) {
      *out = entry.value("virtual-size", uint64_t{0});
      return Status::Ok();
    }
  }
  return Status::NotFound("image '" + image + "' not found");
}

int RunResize(const ResizeArgs& args) {
  const bool relative = !args.size.empty() && args.size.front() == '+';
  uint64_t size = 0;
  Status parsed = ParseSize(relative ? args.size.substr(1) : args.size, &size);
  if (!parsed.ok()) return Fail("SIZE: " + parsed.message());
  QmpClient client;
  Status status = ConnectToMount(args.socket, args.mountpoint, &client);
  uint64_t current = 0;
  if (status.ok()) status = CurrentSize(client, args.image, &current);
  if (!status.ok()) return Fail(status.message());
  if (relative) {
    if (size > UINT64_MAX - current) return Fail("SIZE: " + args.size + " is too large");
    size += current;
  }
  nlohmann::json result;
  status = client.Execute("block_resize", {{"device", args.image}, {"size", size}}, &result);
  if (!status.ok()) return Fail(status.message());
  if (args.json) {
    std::printf("%s\n", nlohmann::json({{"image", args.image}, {"old-size", current}, {"size", size}}).dump().c_str());
  } else {
    std::printf("image '%s': %s -> %s\n", args.image.c_str(), FormatSize(current).c_str(), FormatSize(size).c_str());
  }
  return 0;
}

}  // namespace

void AddResizeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ResizeArgs>();
  CLI::App* cmd = app.add_subcommand("resize", "Grow an image of a running mount (QMP block_resize)");
  cmd->add_option("image", args->image, "The image (its file name in the mount)")->required();
  cmd->add_option("size", args->size, "The new size (10G), or +SIZE to add to it (+5G); a disk only grows")->required();
  cmd->add_option("-m,--mountpoint", args->mountpoint, "The mount (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", args->socket, "The mount's control socket");
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback([args, exit_code] { *exit_code = RunResize(*args); });
}

}  // namespace corfs::cli
