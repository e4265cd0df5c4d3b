// corfs export-prep IMAGE -m MOUNTPOINT and corfs export-end IMAGE -m
// MOUNTPOINT: make an image of a running mount read-only for an export, and
// writable again (QMP image-export-prep and image-export-end). Once
// export-prep returns, the guest can no longer change the disk and what it
// wrote is durable, so a server exporting the image through the mount
// (`qemu-nbd -r -f raw MOUNTPOINT/IMAGE`) serves a disk that stays as it
// is: the source of a post-copy migration (docs/migration.md).

#include <cstdio>

#include "cli/commands.h"
#include "cli/qmp_client.h"

namespace corfs::cli {

namespace {

struct ExportArgs {
  std::string image;
  std::string mountpoint;
  std::string socket;
  bool json = false;
};

int Run(const ExportArgs& args, const char* command, const char* done) {
  QmpClient client;
  Status status = ConnectToMount(args.socket, args.mountpoint, &client);
  nlohmann::json result;
  if (status.ok()) status = client.Execute(command, {{"device", args.image}}, &result);
  if (!status.ok()) {
    // With --json the QMP error object too, on stdout where the JSON goes.
    if (args.json && !client.last_error().is_null()) {
      std::printf("%s\n", nlohmann::json({{"error", client.last_error()}}).dump().c_str());
    }
    return Fail(status.message());
  }
  if (args.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf("image '%s': %s\n", args.image.c_str(), done);
  }
  return kExitOk;
}

void AddVerb(CLI::App& app, int* exit_code, const char* name, const char* help, const char* command, const char* done) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand(name, help);
  cmd->add_option("image", args->image, "The image (its file name in the mount)")->required();
  cmd->add_option("-m,--mountpoint", args->mountpoint, "The mount (its socket is MOUNTPOINT.sock)");
  cmd->add_option("-S,--socket", args->socket, "The mount's control socket");
  AddOutputOptions(cmd, &args->json);
  cmd->callback([=] { *exit_code = Run(*args, command, done); });
}

}  // namespace

void AddExportCommands(CLI::App& app, int* exit_code) {
  AddVerb(app, exit_code, "export-prep",
          "Make an image read-only for an export: guest changes fail with EROFS, what was written is flushed "
          "(QMP image-export-prep)",
          "image-export-prep", "read-only for export, flushed");
  AddVerb(app, exit_code, "export-end", "Let the guest change an exported image again (QMP image-export-end)",
          "image-export-end", "writable again");
}

}  // namespace corfs::cli
