// corfs create [-f corfs] [-b IMG [-b IMG ...]] [-F FMT] [-o cluster_size=SIZE] [-s SIZE] [-c SIZE]
//              [--verify-backing sampled|full] [--force] OVERLAY [SIZE]
//
// The options follow qemu-img create where they do not clash: -f is the
// format of the image made (corfs's own), -F that of the backing images,
// -o takes key=value options, and the size may follow the file name.

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "cli/commands.h"
#include "cli/remote_access.h"
#include "common/size.h"
#include "overlay/overlay.h"

namespace corfs::cli {

namespace {

struct CreateArgs {
  std::string overlay;
  std::vector<std::string> backing;
  std::string format = kOverlayFormat;
  std::string backing_format;
  std::string size;
  std::string size_positional;  // qemu-img's `create FILE SIZE`
  std::string cluster_size;     // empty: overlay::kDefaultClusterSize
  std::vector<std::string> options;
  std::string verify_backing = "sampled";
  bool force = false;
};

// The keys -o takes, with what they mean, for `-o help` and for refusals.
constexpr const char* kCreateOptionKeys = "cluster_size (as --cluster-size)";

// -o KEY=VALUE[,KEY=VALUE...] (repeatable), as qemu-img -o. Only keys corfs
// has a meaning for are taken; an unknown one is a usage error, not ignored,
// since a typo would otherwise make an overlay that is not what was asked.
int ParseCreateOptions(CreateArgs* args) {
  for (const std::string& group : args->options) {
    std::stringstream items(group);
    for (std::string item; std::getline(items, item, ',');) {
      const size_t eq = item.find('=');
      const std::string key = item.substr(0, eq);
      const std::string value = eq == std::string::npos ? std::string() : item.substr(eq + 1);
      if (key == "cluster_size" && eq != std::string::npos) {
        if (!args->cluster_size.empty() && args->cluster_size != value) {
          return UsageError("create",
                            "-o cluster_size=" + value + " and --cluster-size " + args->cluster_size + " disagree");
        }
        args->cluster_size = value;
      } else if (key == "cluster_size") {
        return UsageError("create", "-o cluster_size needs a value, e.g. -o cluster_size=64K");
      } else {
        return UsageError("create", "-o: unknown option '" + key + "'; corfs create takes " + kCreateOptionKeys);
      }
    }
  }
  return kExitOk;
}

// The size from --size or the positional SIZE (one of them, or both alike).
int TakeSize(const CreateArgs& args, overlay::CreateOptions* options) {
  std::string text = args.size.empty() ? args.size_positional : args.size;
  if (!args.size.empty() && !args.size_positional.empty() && args.size != args.size_positional) {
    return UsageError("create", "--size " + args.size + " and SIZE " + args.size_positional + " disagree");
  }
  if (text.empty()) return kExitOk;
  Status parsed = ParseSize(text, &options->size);
  if (!parsed.ok()) return UsageError("create", "--size: " + parsed.message());
  if (options->size == 0) return UsageError("create", "--size: the disk size must be larger than zero");
  return kExitOk;
}

int RunCreate(CreateArgs args) {
  if (std::find(args.options.begin(), args.options.end(), "help") != args.options.end()) {
    std::printf("corfs create -o takes: %s\n", kCreateOptionKeys);
    return kExitOk;
  }
  if (args.overlay.ends_with(".cor")) {
    return UsageError("create", "name the overlay's data file, not its metadata: " +
                                    args.overlay.substr(0, args.overlay.size() - 4) + " (its .cor is made beside it)");
  }
  if (int code = ParseCreateOptions(&args); code != kExitOk) return code;
  overlay::CreateOptions options;
  for (const std::string& path : args.backing) options.backing.push_back({path, args.backing_format});
  if (int code = TakeSize(args, &options); code != kExitOk) return code;
  if (!args.cluster_size.empty()) {
    Status parsed = ParseSize(args.cluster_size, &options.cluster_size);
    if (!parsed.ok()) return UsageError("create", "--cluster-size: " + parsed.message());
  }
  if (!overlay::ParseVerifyBacking(args.verify_backing, &options.verify_backing)) {
    return UsageError("create", "--verify-backing: '" + args.verify_backing + "' is neither 'sampled' nor 'full'");
  }
  options.force = args.force;
  // Credentials in a URI are split off here: the overlay, its messages and
  // its header only ever see the name without them.
  overlay::RemoteOptions remote;
  if (Status env = CommandRemoteOptions(&remote); !env.ok()) return Fail(env.message());
  if (Status taken = TakeCommandLineCredentials(&options.backing, &remote); !taken.ok()) return Fail(taken.message());
  options.opener = overlay::RemoteImageOpener(remote);
  options.protocol = overlay::RemoteProtocolOpener(remote);
  Status created = overlay::Overlay::Create(args.overlay, options);
  if (created.code() == EEXIST) return Fail(created.message() + " (use --force to replace the overlay)");
  if (!created.ok()) return Fail(created.message());
  if (options.backing.empty()) {
    std::printf("created %s (+ %s)\n", args.overlay.c_str(), overlay::MetadataPath(args.overlay).c_str());
  } else {
    std::printf("created %s (+ %s); %s appears when the overlay is complete\n",
                overlay::PartialDataPath(args.overlay).c_str(), overlay::MetadataPath(args.overlay).c_str(),
                args.overlay.c_str());
  }
  return kExitOk;
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
  cmd->add_option("size", args->size_positional, "Virtual size, as --size (qemu-img's `create FILE SIZE`)");
  AddOverlayFormatOption(cmd, &args->format);
  // One value per -b and -o, so `-o cluster_size=64K FILE` leaves FILE to
  // the positionals (CLI11 lets a vector option take several by default).
  cmd->add_option("-b,--backing", args->backing, "Backing image, top first; repeat for a chain")
      ->allow_extra_args(false);
  cmd->add_option("-F,--backing-format", args->backing_format,
                  "Format of the backing images, raw or qcow2, as qemu-img's -F (default: detect)");
  cmd->add_option("-s,--size", args->size, "Virtual size, e.g. 10G (default: the top backing image's size)");
  cmd->add_option("-c,--cluster-size", args->cluster_size, "Cluster size, a power of two from 4K to 2M (default 64K)");
  cmd->add_option("-o,--options", args->options,
                  std::string("KEY=VALUE[,...] as qemu-img's -o; keys: ") + kCreateOptionKeys + "; -o help lists them")
      ->allow_extra_args(false);
  cmd->add_option("--verify-backing", args->verify_backing,
                  "full: also record a hash of each backing image's whole content, verified at every open that "
                  "asks for it and by `check --full` (one read of each image now); sampled: size and a sampled "
                  "fingerprint only")
      ->capture_default_str();
  cmd->add_flag("--force", args->force,
                "Replace an existing overlay (never one a mount has open); -f is the format, as in qemu-img");
  cmd->callback([args, exit_code] { *exit_code = RunCreate(*args); });
}

}  // namespace corfs::cli
