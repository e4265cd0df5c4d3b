#include "config/config_loader.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/size.h"
#include "common/trim.h"
#include "config/chain_resolver.h"
#include "config/remote_config.h"
#include "config/yaml_reader.h"
#include "overlay/image_location.h"
#include "overlay/overlay_header.h"

namespace corfs::config {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTopKeys[] = {"mountpoint", "control_socket", "allow_other", "defaults",
                                         "templates",  "images",         "metrics",     "remote"};
constexpr std::string_view kImageKeys[] = {"overlay",      "backing",        "size",         "cluster_size",
                                           "copy_on_read", "read_only",      "mode",         "uid",
                                           "gid",          "create",         "create_dirs",  "write_threshold",
                                           "stream",       "verify_backing", "boot_profile", "boot_profile_idle"};
constexpr std::string_view kMetricsKeys[] = {"textfile", "interval"};
constexpr std::string_view kStreamKeys[] = {"auto", "speed", "workers", "chunk_size", "base", "on_error"};

constexpr uint64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged" to the kernel
constexpr uint64_t kMaxWorkers = 4096;

// A path with its symbolic links resolved as far as it exists, to compare
// paths that need not exist yet (overlays).
std::string CanonicalKey(const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  return ec ? path : canonical.lexically_normal().string();
}

// Whether `path` is `folder` or inside it (both canonical keys).
bool IsInside(const std::string& path, const std::string& folder) {
  if (path == folder) return true;
  std::string prefix = folder.back() == '/' ? folder : folder + "/";
  return path.compare(0, prefix.size(), prefix) == 0;
}

// "80%", "12.5%" (at most three decimals) or a size ("10G"); 0 or 0% is off.
bool ReadWriteThreshold(const Field& field, Diagnostics& diag, WriteThreshold* out) {
  if (!field.node.IsScalar()) {
    diag.Error(field.mark,
               field.what + ": expected a size (10G) or a percentage of the disk (80%), got " + Describe(field.node));
    return false;
  }
  const std::string text(TrimSpace(field.node.Scalar()));
  if (text.empty() || text.back() != '%') {
    WriteThreshold threshold;
    if (!ReadSize(field, diag, &threshold.bytes)) return false;
    threshold.kind = threshold.bytes == 0 ? WriteThreshold::Kind::kNone : WriteThreshold::Kind::kBytes;
    *out = threshold;
    return true;
  }
  const std::string number(TrimSpace(std::string_view(text).substr(0, text.size() - 1)));
  size_t dot = number.find('.');
  std::string whole = number.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "" : number.substr(dot + 1);
  auto all_digits = [](const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !all_digits(whole) || !all_digits(fraction) || (dot != std::string::npos && fraction.empty())) {
    diag.Error(field.mark, field.what + ": '" + text + "' is not a percentage such as 80% or 12.5%");
    return false;
  }
  if (fraction.size() > 3) {
    diag.Error(field.mark, field.what + ": '" + text + "' has more than three decimals");
    return false;
  }
  const uint64_t milli = whole.size() > 4 ? uint64_t{UINT32_MAX}
                                          : std::stoull(whole) * 1000 + std::stoull((fraction + "000").substr(0, 3));
  if (milli > WriteThreshold::kFullDisk) {
    diag.Error(field.mark, field.what + ": " + text + " is over 100% of the disk");
    return false;
  }
  out->kind = milli == 0 ? WriteThreshold::Kind::kNone : WriteThreshold::Kind::kPercent;
  out->bytes = 0;
  out->percent_thousandths = static_cast<uint32_t>(milli);
  return true;
}

// `metrics: {textfile: PATH, interval: 5s}`: `textfile` is required and
// must end in ".prom", the only files the textfile collector reads.
void ReadMetrics(const Field& field, const std::string& base_dir, Diagnostics& diag,
                 std::optional<MetricsConfig>* out) {
  std::vector<MapEntry> keys;
  if (!ReadMap(field, kMetricsKeys, diag, &keys)) return;
  MetricsConfig metrics;
  bool ok = true;
  bool has_textfile = false;
  for (const MapEntry& entry : keys) {
    if (entry.key == "textfile") {
      has_textfile = true;
      if (!ReadPath(entry.value, base_dir, diag, &metrics.textfile)) {
        ok = false;
      } else if (fs::path(metrics.textfile).extension() != ".prom") {
        diag.Error(entry.value.mark, entry.value.what + ": '" + metrics.textfile +
                                         "' does not end in .prom (node_exporter's textfile collector reads only "
                                         "*.prom files)");
        ok = false;
      }
    } else if (entry.key == "interval") {
      ok = ReadDuration(entry.value, std::chrono::milliseconds(100), std::chrono::hours(1), diag, &metrics.interval) &&
           ok;
    }
  }
  if (!has_textfile) {
    diag.Error(field.mark, field.what + ": missing `textfile:` (the path of the .prom file to write)");
    return;
  }
  if (ok) *out = metrics;
}

// An image while its keys are applied (first `defaults:`, then its own): the
// values, and where those checked at the end were written.
struct ImageDraft {
  ImageConfig config;
  YAML::Mark name_mark;
  std::string what;              // "images.NAME"
  std::optional<Field> overlay;  // the `overlay:` value, when valid
  bool overlay_given = false;    // the key was written, valid or not: a bad
  bool size_given = false;       // value is reported once, not also as missing
  std::optional<Field> backing;  // the `backing:` value
  std::optional<YAML::Mark> size_mark;
  std::optional<YAML::Mark> chunk_mark;
  YAML::Mark threshold_mark;
  std::optional<Field> stream_base;
  std::vector<ResolvedImage> chain;
  bool chain_ok = true;
};

class Loader {
 public:
  Loader(const std::string& source_name, std::string base_dir, const LoadOptions& options)
      : diag_(source_name), base_dir_(std::move(base_dir)), resolver_(base_dir_, diag_, &remote_), options_(options) {}

  Status Load(std::string_view text, MountConfig* out);
  // The same on a parsed document (a map, or null for an empty file).
  Status LoadRoot(const YAML::Node& root, MountConfig* out);

 private:
  void ReadTop(const YAML::Node& root, MountConfig* cfg);
  void ReadDefaults(const Field& field, ImageDraft* defaults);
  void ReadImages(const Field& field, const ImageDraft& defaults, std::vector<ImageDraft>* drafts);
  bool CheckImageName(const MapEntry& entry);
  void ApplyImageKey(const MapEntry& entry, ImageDraft* draft);
  void ApplyStreamKey(const MapEntry& entry, ImageDraft* draft);
  void FinishImage(ImageDraft* draft);
  void CheckAcrossImages(const MountConfig& cfg, const std::vector<ImageDraft>& drafts);

  Diagnostics diag_;
  std::string base_dir_;
  // The `remote:` settings, and the credentials the resolver splits off
  // the URIs of chains.
  overlay::RemoteOptions remote_;
  ChainResolver resolver_;
  const LoadOptions& options_;
  YAML::Mark mountpoint_mark_;
  YAML::Mark socket_mark_;
};

Status Loader::Load(std::string_view text, MountConfig* out) {
  YAML::Node root;
  if (!LoadSingleDocument(std::string(text), diag_, &root)) return diag_.ToStatus();
  return LoadRoot(root, out);
}

Status Loader::LoadRoot(const YAML::Node& root, MountConfig* out) {
  if (root.IsNull()) {
    YAML::Mark start;
    start.line = start.column = 0;
    diag_.Error(start, "the file is empty; expected a map with `images:` (see docs/config.md)");
    return diag_.ToStatus();
  }
  MountConfig cfg;
  try {
    ReadTop(root, &cfg);
  } catch (const YAML::Exception& e) {
    diag_.Error(e.mark, "unexpected YAML structure: " + e.msg);
  }
  if (diag_.has_errors()) return diag_.ToStatus();
  *out = std::move(cfg);
  return Status::Ok();
}

void Loader::ReadTop(const YAML::Node& root, MountConfig* cfg) {
  std::vector<MapEntry> top;
  if (!ReadMap(Field{root, root.Mark(), ""}, kTopKeys, diag_, &top)) return;

  ImageDraft defaults;
  defaults.config.uid = static_cast<uint32_t>(::getuid());
  defaults.config.gid = static_cast<uint32_t>(::getgid());
  const Field* images = nullptr;
  std::vector<MapEntry> templates;
  for (const MapEntry& entry : top) {
    const Field& value = entry.value;
    if (entry.key == "mountpoint") {
      std::string path;
      if (ReadPath(value, base_dir_, diag_, &path)) {
        fs::path p(path);
        if (!p.has_filename() && p != p.root_path()) p = p.parent_path();  // "mnt/" -> "mnt"
        if (p == p.root_path()) {
          diag_.Error(value.mark, value.what + ": cannot mount on " + p.string());
        } else {
          cfg->mountpoint = p.string();
          mountpoint_mark_ = value.mark;
        }
      }
    } else if (entry.key == "control_socket") {
      std::string path;
      if (ReadPath(value, base_dir_, diag_, &path)) {
        if (!fs::path(path).has_filename()) {
          diag_.Error(value.mark, value.what + ": '" + path + "' names a folder; give the socket's file name");
        } else {
          cfg->control_socket = path;
          socket_mark_ = value.mark;
        }
      }
    } else if (entry.key == "allow_other") {
      ReadBool(value, diag_, &cfg->allow_other);
    } else if (entry.key == "metrics") {
      ReadMetrics(value, base_dir_, diag_, &cfg->metrics);
    } else if (entry.key == "remote") {
      ReadRemote(value, base_dir_, diag_, &remote_);
    } else if (entry.key == "defaults") {
      ReadDefaults(value, &defaults);
    } else if (entry.key == "templates") {
      ReadMap(value, {}, diag_, &templates);
    } else if (entry.key == "images") {
      images = &value;
    }
  }
  // Templates before images, whatever their order in the file.
  resolver_.AddTemplates(templates);

  std::vector<ImageDraft> drafts;
  if (images != nullptr) ReadImages(*images, defaults, &drafts);
  resolver_.ReportMissingInUnusedTemplates();
  CheckAcrossImages(*cfg, drafts);
  for (ImageDraft& draft : drafts) cfg->images.push_back(std::move(draft.config));
  if (Status env = ApplyCredentialsEnvironment(&remote_); !env.ok()) diag_.Error(root.Mark(), env.message());
  cfg->remote = remote_;
}

void Loader::ReadDefaults(const Field& field, ImageDraft* defaults) {
  std::vector<MapEntry> keys;
  if (!ReadMap(field, kImageKeys, diag_, &keys)) return;
  for (const MapEntry& entry : keys) {
    if (entry.key == "overlay" || entry.key == "backing") {
      diag_.Error(entry.key_mark,
                  field.what + ": `" + entry.key + "` cannot have a default; set it on each image under `images:`");
      continue;
    }
    ApplyImageKey(entry, defaults);
  }
}

void Loader::ReadImages(const Field& field, const ImageDraft& defaults, std::vector<ImageDraft>* drafts) {
  std::vector<MapEntry> entries;
  if (!field.node.IsMap() && !field.node.IsNull()) {
    diag_.Error(field.mark,
                field.what + ": expected a map of image names to their settings, got " + Describe(field.node));
    return;
  }
  // Duplicate names are reported here: yaml-cpp keeps both, ReadMap walks every key.
  if (!ReadMap(field, {}, diag_, &entries)) return;
  for (const MapEntry& entry : entries) {
    if (!CheckImageName(entry)) continue;
    ImageDraft draft = defaults;
    draft.config.name = entry.key;
    draft.name_mark = entry.key_mark;
    draft.what = entry.value.what;
    std::vector<MapEntry> keys;
    if (!ReadMap(entry.value, kImageKeys, diag_, &keys)) continue;
    for (const MapEntry& key : keys) ApplyImageKey(key, &draft);
    FinishImage(&draft);
    drafts->push_back(std::move(draft));
  }
}

bool Loader::CheckImageName(const MapEntry& entry) {
  const std::string& name = entry.key;
  std::string problem;
  if (name.empty()) {
    problem = "an image name must not be empty";
  } else if (name.find('\0') != std::string::npos) {
    problem = "an image name must not contain a NUL character";
  } else if (name.find('/') != std::string::npos) {
    problem = "image name '" + name + "' must not contain '/': it is a file name in the mount";
  } else if (name == "." || name == "..") {
    problem = "'" + name + "' cannot be an image name: it is a file name in the mount";
  } else if (name.size() > NAME_MAX) {
    problem = "image name '" + name.substr(0, 40) + "...' is longer than " + std::to_string(NAME_MAX) + " bytes";
  }
  if (problem.empty()) return true;
  diag_.Error(entry.key_mark, "images: " + problem);
  return false;
}

void Loader::ApplyImageKey(const MapEntry& entry, ImageDraft* draft) {
  const Field& value = entry.value;
  ImageConfig& image = draft->config;
  const std::string& key = entry.key;
  if (key == "overlay") {
    draft->overlay_given = true;
    std::string path;
    if (!ReadPath(value, base_dir_, diag_, &path)) return;
    if (!fs::path(path).has_filename()) {
      diag_.Error(value.mark, value.what + ": '" + path + "' names a folder; give the overlay's data file");
      return;
    }
    image.overlay_path = path;
    draft->overlay = value;
  } else if (key == "backing") {
    draft->backing = value;
  } else if (key == "size") {
    draft->size_given = true;
    uint64_t size = 0;
    if (!ReadSize(value, diag_, &size)) return;
    if (size == 0) {
      diag_.Error(value.mark, value.what + ": size 0; leave `size:` out to take the size of the top backing image");
      return;
    }
    if (size > overlay::kMaxVirtualSize) {
      diag_.Error(value.mark, value.what + ": " + FormatSize(size) + " is larger than a disk may be (1 EiB)");
      return;
    }
    image.size = size;
    draft->size_mark = value.mark;
  } else if (key == "cluster_size") {
    uint64_t size = 0;
    if (!ReadSize(value, diag_, &size)) return;
    Status valid = overlay::ValidateClusterSize(size);
    if (!valid.ok()) {
      diag_.Error(value.mark, value.what + ": " + valid.message());
      return;
    }
    image.cluster_size = size;
  } else if (key == "copy_on_read") {
    ReadBool(value, diag_, &image.copy_on_read);
  } else if (key == "read_only") {
    ReadBool(value, diag_, &image.read_only);
  } else if (key == "create") {
    ReadBool(value, diag_, &image.create);
  } else if (key == "create_dirs") {
    ReadBool(value, diag_, &image.create_dirs);
  } else if (key == "mode") {
    uint32_t mode = 0;
    if (ReadMode(value, diag_, &mode)) image.mode = mode;
  } else if (key == "uid" || key == "gid") {
    uint64_t id = 0;
    if (!ReadUnsigned(value, kMaxId, diag_, &id)) return;
    (key == "uid" ? image.uid : image.gid) = static_cast<uint32_t>(id);
  } else if (key == "write_threshold") {
    if (ReadWriteThreshold(value, diag_, &image.write_threshold)) draft->threshold_mark = value.mark;
  } else if (key == "verify_backing") {
    std::string word;
    if (!ReadString(value, diag_, &word)) return;
    if (!overlay::ParseVerifyBacking(word, &image.verify_backing)) {
      diag_.Error(value.mark,
                  value.what + ": expected " + ListWords(overlay::kVerifyBackingNames) + ", got '" + word + "'");
    }
  } else if (key == "boot_profile") {
    std::string path;
    if (!ReadPath(value, base_dir_, diag_, &path)) return;
    if (!fs::path(path).has_filename()) {
      diag_.Error(value.mark, value.what + ": '" + path + "' names a folder; give the profile's file");
      return;
    }
    image.boot_profile = path;
  } else if (key == "boot_profile_idle") {
    ReadDuration(value, std::chrono::milliseconds(100), std::chrono::hours(24), diag_, &image.boot_profile_idle);
  } else if (key == "stream") {
    std::vector<MapEntry> keys;
    if (!ReadMap(value, kStreamKeys, diag_, &keys)) return;
    for (const MapEntry& stream_key : keys) ApplyStreamKey(stream_key, draft);
  }
}

void Loader::ApplyStreamKey(const MapEntry& entry, ImageDraft* draft) {
  const Field& value = entry.value;
  StreamPolicy& stream = draft->config.stream;
  const std::string& key = entry.key;
  if (key == "auto") {
    ReadBool(value, diag_, &stream.auto_start);
  } else if (key == "speed") {
    uint64_t speed = 0;
    if (!ReadSize(value, diag_, &speed)) return;
    // A slower stream is almost always a missing unit ("50" for "50M"); the
    // file has no force, the control socket does (set-speed --force).
    if (speed != 0 && speed < jobs::kMinSpeed) {
      diag_.Error(value.mark, value.what + ": " + std::to_string(speed) + " bytes/s is below the minimum of " +
                                  FormatSize(jobs::kMinSpeed) +
                                  "/s (a missing unit, like 50M?); 0 is unlimited, "
                                  "and `corfs set-speed JOB SPEED --force` sets a slower speed at run time");
      return;
    }
    stream.speed = speed;
  } else if (key == "workers") {
    uint64_t workers = 0;
    if (ReadUnsigned(value, kMaxWorkers, diag_, &workers)) stream.workers = static_cast<unsigned>(workers);
  } else if (key == "chunk_size") {
    uint64_t size = 0;
    if (!ReadSize(value, diag_, &size)) return;
    if (size == 0) {
      diag_.Error(value.mark, value.what + ": must be more than 0");
      return;
    }
    stream.chunk_size = size;
    draft->chunk_mark = value.mark;
  } else if (key == "base") {
    std::string path;
    if (!ReadPath(value, base_dir_, diag_, &path)) return;
    stream.base = path;
    draft->stream_base = value;
  } else if (key == "on_error") {
    std::string word;
    if (!ReadString(value, diag_, &word)) return;
    if (!jobs::ParseOnError(word, &stream.on_error)) {
      diag_.Error(value.mark, value.what + ": expected " + ListWords(jobs::kOnErrorNames) + ", got '" + word + "'");
    }
  }
}

void Loader::FinishImage(ImageDraft* draft) {
  ImageConfig& image = draft->config;
  const std::string quoted = "image '" + image.name + "'";
  if (!draft->overlay_given) {
    diag_.Error(draft->name_mark, draft->what + ": missing `overlay:` (the path of the image's data file)");
  }
  if (draft->backing) draft->chain_ok = resolver_.Resolve(*draft->backing, &draft->chain);
  const bool chain_needed =
      !(draft->overlay_given && options_.overlay_is_standalone && options_.overlay_is_standalone(image.overlay_path));
  for (const ResolvedImage& link : draft->chain) {
    if (link.missing.empty() || !chain_needed) continue;
    diag_.Error(link.mark, link.missing, ENOENT);
    draft->chain_ok = false;
  }
  for (const ResolvedImage& link : draft->chain) image.backing.push_back(link.spec);

  if (draft->chain_ok && draft->chain.empty() && !draft->size_given) {
    diag_.Error(draft->name_mark, draft->what + ": " + quoted +
                                      " has no backing image, so it needs `size:` (an empty disk of that size)");
  }
  const WriteThreshold& threshold = image.write_threshold;
  if (threshold.kind == WriteThreshold::Kind::kBytes && draft->size_mark && threshold.bytes > image.size) {
    diag_.Error(draft->threshold_mark, draft->what + ".write_threshold: " + FormatSize(threshold.bytes) +
                                           " is more than the disk (" + FormatSize(image.size) +
                                           "); it would never fire");
  }
  if (!draft->chunk_mark) {
    image.stream.chunk_size = std::max(jobs::kDefaultChunkSize, image.cluster_size);
  } else if (image.stream.chunk_size < image.cluster_size) {
    diag_.Error(*draft->chunk_mark, draft->what + ".stream.chunk_size: " + FormatSize(image.stream.chunk_size) +
                                        " is smaller than the cluster size (" + FormatSize(image.cluster_size) + ")");
  }
  if (draft->stream_base && draft->chain_ok) {
    const Field& field = *draft->stream_base;
    const std::string what = draft->what + ".stream.base";
    if (draft->chain.empty()) {
      diag_.Error(field.mark, what + ": " + quoted + " has no backing chain to stream from");
    } else {
      ResolvedImage base;
      base.spec.path = *image.stream.base;
      Field located{field.node, field.mark, what};
      if (overlay::IsUri(base.spec.path) || resolver_.Identify(base.spec.path, located, &base.file)) {
        auto link = std::find_if(draft->chain.begin(), draft->chain.end(),
                                 [&](const ResolvedImage& l) { return l.SameImage(base); });
        if (link != draft->chain.end()) {
          image.stream.base = link->spec.path;  // as the overlay records it
        } else {
          std::string chain;
          for (const ResolvedImage& l : draft->chain) chain += (chain.empty() ? "" : ", ") + l.spec.path;
          diag_.Error(field.mark, what + ": " + overlay::RedactCredentials(*image.stream.base) +
                                      " is not in the chain of " + quoted + " (" + chain + ")");
        }
      }
    }
  }
  if (draft->overlay && draft->chain_ok) {
    const std::string data = CanonicalKey(image.overlay_path);
    const std::string part = CanonicalKey(overlay::PartialDataPath(image.overlay_path));
    const std::string meta = CanonicalKey(overlay::MetadataPath(image.overlay_path));
    for (const ResolvedImage& link : draft->chain) {
      const std::string backing = CanonicalKey(link.spec.path);
      if (backing == data || backing == part || backing == meta) {
        diag_.Error(draft->overlay->mark, draft->overlay->what + ": " + image.overlay_path +
                                              " is also in the backing chain of " + quoted +
                                              "; an overlay cannot back itself");
      }
    }
  }
}

void Loader::CheckAcrossImages(const MountConfig& cfg, const std::vector<ImageDraft>& drafts) {
  // Files used as an overlay's data (NAME, NAME.part) or metadata file, by
  // canonical path.
  struct Claim {
    std::string image;
    YAML::Mark mark;
  };
  std::map<std::string, Claim> overlays;
  for (const ImageDraft& draft : drafts) {
    if (!draft.overlay) continue;
    const std::string& path = draft.config.overlay_path;
    for (const std::string& file : {path, overlay::PartialDataPath(path), overlay::MetadataPath(path)}) {
      auto [it, inserted] = overlays.emplace(CanonicalKey(file), Claim{draft.config.name, draft.overlay->mark});
      if (!inserted) {
        diag_.Error(draft.overlay->mark, draft.overlay->what + ": " + file +
                                             " is already used by the overlay of image '" + it->second.image + "' (" +
                                             diag_.Where(it->second.mark) + "); each image needs its own");
        break;
      }
    }
  }
  for (const ImageDraft& draft : drafts) {
    for (const ResolvedImage& link : draft.chain) {
      auto it = overlays.find(CanonicalKey(link.spec.path));
      if (it != overlays.end() && it->second.image != draft.config.name) {
        diag_.Error(draft.backing->mark, draft.backing->what + ": " + link.spec.path + " is the overlay of image '" +
                                             it->second.image + "' (" + diag_.Where(it->second.mark) +
                                             "), which changes while mounted; it cannot back another image");
      }
    }
  }

  if (!cfg.mountpoint) return;
  const std::string mountpoint = CanonicalKey(*cfg.mountpoint);
  const std::string inside = " is inside the mountpoint " + *cfg.mountpoint + " (" + diag_.Where(mountpoint_mark_) +
                             "), which the mount hides";
  if (cfg.control_socket && IsInside(CanonicalKey(*cfg.control_socket), mountpoint)) {
    diag_.Error(socket_mark_, "control_socket: " + *cfg.control_socket + inside);
  }
  for (const ImageDraft& draft : drafts) {
    if (draft.overlay && IsInside(CanonicalKey(draft.config.overlay_path), mountpoint)) {
      diag_.Error(draft.overlay->mark, draft.overlay->what + ": " + draft.config.overlay_path + inside);
    }
    for (const ResolvedImage& link : draft.chain) {
      if (IsInside(CanonicalKey(link.spec.path), mountpoint)) {
        diag_.Error(link.mark, draft.what + ".backing: " + link.spec.path + inside);
      }
    }
  }
}

}  // namespace

Status ParseMountConfig(std::string_view yaml_text, const std::string& source_name, const std::string& base_dir,
                        MountConfig* out, const LoadOptions& options) {
  std::error_code ec;
  fs::path base = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir), ec);
  if (ec) return Status::Error(ec.value(), "cannot resolve folder '" + base_dir + "': " + ec.message());
  std::string folder = base.lexically_normal().string();
  if (folder.size() > 1 && folder.back() == '/') folder.pop_back();
  MountConfig cfg;
  Loader loader(source_name, folder, options);
  CORFS_RETURN_IF_ERROR(loader.Load(yaml_text, &cfg));
  cfg.source_file = source_name;
  *out = std::move(cfg);
  return Status::Ok();
}

namespace {

// The text of the YAML file at `yaml_path` and its absolute, normal path.
Status ReadConfigFile(const std::string& yaml_path, std::string* text, fs::path* absolute) {
  struct stat st {};
  if (::stat(yaml_path.c_str(), &st) != 0) return Status::FromErrno("config file " + yaml_path);
  if (S_ISDIR(st.st_mode)) return Status::Error(EISDIR, "config file " + yaml_path + " is a folder");
  std::ifstream in(yaml_path, std::ios::binary);
  if (!in) return Status::FromErrno("cannot open config file " + yaml_path);
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return Status::FromErrno("cannot read config file " + yaml_path);
  std::error_code ec;
  *absolute = fs::absolute(yaml_path, ec).lexically_normal();
  if (ec) return Status::Error(ec.value(), "cannot resolve " + yaml_path + ": " + ec.message());
  *text = content.str();
  return Status::Ok();
}

// A copy of `node` without positions: keys given over the control socket
// are not lines of a file, so messages about them name no line.
YAML::Node WithoutMarks(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: return YAML::Node(node.Scalar());
    case YAML::NodeType::Sequence: {
      YAML::Node list(YAML::NodeType::Sequence);
      for (const YAML::Node& element : node) list.push_back(WithoutMarks(element));
      return list;
    }
    case YAML::NodeType::Map: {
      YAML::Node map(YAML::NodeType::Map);
      for (const auto& entry : node) map[WithoutMarks(entry.first)] = WithoutMarks(entry.second);
      return map;
    }
    default: return YAML::Node(YAML::NodeType::Null);
  }
}

// Whether `path` (canonical) is one of the files of `image`'s overlay.
bool IsOverlayOf(const std::string& path, const ImageConfig& image) {
  return path == CanonicalKey(image.overlay_path) || path == CanonicalKey(overlay::MetadataPath(image.overlay_path));
}

}  // namespace

Status LoadMountConfig(const std::string& yaml_path, MountConfig* out, const LoadOptions& options) {
  std::string text;
  fs::path absolute;
  CORFS_RETURN_IF_ERROR(ReadConfigFile(yaml_path, &text, &absolute));
  MountConfig cfg;
  CORFS_RETURN_IF_ERROR(ParseMountConfig(text, yaml_path, absolute.parent_path().string(), &cfg, options));
  cfg.source_file = absolute.string();
  *out = std::move(cfg);
  return Status::Ok();
}

Status LoadImageConfig(const std::string& yaml_path, const std::string& name, std::string_view image_text,
                       const std::string& source_name, const LoadOptions& options, ImageConfig* out) {
  std::string text;
  fs::path absolute;
  CORFS_RETURN_IF_ERROR(ReadConfigFile(yaml_path, &text, &absolute));
  Diagnostics file_diag(yaml_path);
  YAML::Node root;
  if (!LoadSingleDocument(text, file_diag, &root)) return file_diag.ToStatus();
  Diagnostics keys_diag(source_name);
  YAML::Node keys;
  if (!LoadSingleDocument(std::string(image_text), keys_diag, &keys)) return keys_diag.ToStatus();
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) return Status::Invalid(yaml_path + ": expected a map with `images:` (see docs/config.md)");
  // The file as if `images:` listed only this image: its defaults and
  // templates apply, and the same code reads and checks the keys.
  YAML::Node images(YAML::NodeType::Map);
  images[name] = WithoutMarks(keys);
  root.remove("images");
  root["images"] = images;
  MountConfig cfg;
  Loader loader(source_name, absolute.parent_path().string(), options);
  CORFS_RETURN_IF_ERROR(loader.LoadRoot(root, &cfg));
  if (cfg.images.size() != 1) return Status::Invalid(source_name + ": no image was read");
  *out = std::move(cfg.images.front());
  return Status::Ok();
}

Status CheckJoiningImage(const ImageConfig& image, const std::vector<ImageConfig>& live,
                         const std::string& mountpoint) {
  const std::string quoted = "image '" + image.name + "'";
  const std::string data = CanonicalKey(image.overlay_path);
  const std::string meta = CanonicalKey(overlay::MetadataPath(image.overlay_path));
  for (const ImageConfig& other : live) {
    if (other.name == image.name) return Status::Error(EEXIST, quoted + " is in the mount already");
    if (IsOverlayOf(data, other) || IsOverlayOf(meta, other)) {
      return Status::Error(EBUSY, quoted + ": overlay " + image.overlay_path + " is the overlay of image '" +
                                      other.name + "' of this mount; each image needs its own");
    }
    for (const overlay::ImageSpec& backing : image.backing) {
      if (IsOverlayOf(CanonicalKey(backing.path), other)) {
        return Status::Invalid(quoted + ": backing image " + backing.path + " is the overlay of image '" + other.name +
                               "', which changes while mounted; it cannot back another image");
      }
    }
    for (const overlay::ImageSpec& backing : other.backing) {
      if (IsOverlayOf(CanonicalKey(backing.path), image)) {
        return Status::Invalid(quoted + ": overlay " + image.overlay_path + " is a backing image of image '" +
                               other.name + "'; an overlay changes while mounted and cannot back another image");
      }
    }
  }
  if (mountpoint.empty()) return Status::Ok();
  const std::string folder = CanonicalKey(mountpoint);
  if (IsInside(data, folder)) {
    return Status::Invalid(quoted + ": overlay " + image.overlay_path + " is inside the mountpoint " + mountpoint);
  }
  for (const overlay::ImageSpec& backing : image.backing) {
    if (IsInside(CanonicalKey(backing.path), folder)) {
      return Status::Invalid(quoted + ": backing image " + backing.path + " is inside the mountpoint " + mountpoint);
    }
  }
  return Status::Ok();
}

}  // namespace corfs::config
