// corfs create OVERLAY --backing IMG [--backing IMG ...] [--size SIZE] [--cluster-size SIZE]
//              [--verify-backing sampled|full] [--force]

#include <cstdio>

#include "cli/commands.h"
#include "common/size.h"
#include "overlay/overlay.h"

namespace corfs::cli {

namespace {

struct CreateArgs {
  std::string overlay;
  std::vector<std::string> backing;
  std::string format;
  std::string size;
  std::string cluster_size;  // empty: overlay::kDefaultClusterSize
  std::string verify_backing = "sampled";
  bool force = false;
};

int RunCreate(const CreateArgs& args) {
  overlay::CreateOptions options;
  for (const std::string& path : args.backing) options.backing.push_back({path, args.format});
  if (!args.size.empty()) {
    Status parsed = ParseSize(args.size, &options.size);
    if (!parsed.ok()) return Fail("--size: " + parsed.message());
    if (options.size == 0) return Fail("--size: the disk size must be larger than zero");
  }
  if (!args.cluster_size.empty()) {
    Status parsed = ParseSize(args.cluster_size, &options.cluster_size);
    if (!parsed.ok()) return Fail("--cluster-size: " + parsed.message());
  }
  if (!overlay::ParseVerifyBacking(args.verify_backing, &options.verify_backing)) {
    return Fail("--verify-backing: '" + args.verify_backing + "' is neither 'sampled' nor 'full'");
  }
  options.force = args.force;
  Status created = overlay::Overlay::Create(args.overlay, options);
  if (!created.ok()) return Fail(created.message());
  if (options.backing.empty()) {
    std::printf("created %s (+ %s)\n", args.overlay.c_str(), overlay::MetadataPath(args.overlay).c_str());
  } else {
    std::printf("created %s (+ %s); %s appears when the overlay is complete\n",
                overlay::PartialDataPath(args.overlay).c_str(), overlay::MetadataPath(args.overlay).c_str(),
                args.overlay.c_str());
  }
  return 0;
}

}  // namespace

void AddCreateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CreateArgs>();
  CLI::App* cmd =
      app.add_subcommand("create",
                         "Create an overlay (NAME.part, NAME once complete, and NAME.cor) over a backing chain");
  cmd->add_option("overlay", args->overlay,
                  "Path of the disk (NAME; NAME.part until it is complete, NAME.cor beside it)")
      ->required();
  cmd->add_option("-b,--backing", args->backing, "Backing image, top first; repeat for a chain");
  cmd->add_option("-F,--format", args->format, "Format of the backing images (default: detect)");
  cmd->add_option("-s,--size", args->size, "Virtual size, e.g. 10G (default: the top backing image's size)");
  cmd->add_option("-c,--cluster-size", args->cluster_size, "Cluster size, a power of two from 4K to 2M")
      ->capture_default_str();
  cmd->add_option("--verify-backing", args->verify_backing,
                  "full: also record a hash of each backing image's whole content, verified at every open that "
                  "asks for it and by `check --full` (one read of each image now); sampled: size and a sampled "
                  "fingerprint only")
      ->capture_default_str();
  cmd->add_flag("-f,--force", args->force, "Replace an existing overlay");
  cmd->callback([args, exit_code] { *exit_code = RunCreate(*args); });
}

}  // namespace corfs::cli
