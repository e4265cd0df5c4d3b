#include "overlay/boot_profile.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "common/file_io.h"
#include "common/json_text.h"
#include "common/unique_fd.h"

namespace corfs::overlay {

namespace {

constexpr std::string_view kFormat = "corfs-boot-profile";
// A profile longer than this is not a profile but a damaged file.
constexpr uint64_t kMaxFileBytes = 256ull << 20;

std::string Hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

bool ParseHex64(const std::string& text, uint64_t* out) {
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos) return false;
  *out = std::stoull(text, nullptr, 16);
  return true;
}

// Everything but the checksum, in a fixed order (nlohmann sorts keys).
nlohmann::json Body(const BootProfile& profile) {
  nlohmann::json layers = nlohmann::json::array();
  for (const ProfileLayer& layer : profile.layers) {
    layers.push_back({{"path", layer.path}, {"size", layer.size}, {"fingerprint", Hex64(layer.fingerprint)}});
  }
  nlohmann::json ranges = nlohmann::json::array();
  for (const ProfileRange& range : profile.ranges) {
    ranges.push_back({range.offset, range.length, range.first_read_ns});
  }
  return {{"format", std::string(kFormat)},
          {"version", BootProfile::kVersion},
          {"cluster-size", profile.cluster_size},
          {"template", std::move(layers)},
          {"ranges", std::move(ranges)}};
}

std::string Checksum(const nlohmann::json& body) {
  const std::string text = body.dump();
  return Hex64(XXH3_64bits(text.data(), text.size()));
}

Status Damaged(const std::string& path, const std::string& what) {
  return Status::Invalid("boot profile " + path + " is damaged or not a boot profile: " + what);
}

Status ReadBody(const nlohmann::json& body, const std::string& path, BootProfile* out) {
  BootProfile profile;
  profile.cluster_size = body.at("cluster-size").get<uint64_t>();
  if (profile.cluster_size == 0 || (profile.cluster_size & (profile.cluster_size - 1)) != 0) {
    return Damaged(path, "cluster size " + std::to_string(profile.cluster_size) + " is not a power of two");
  }
  for (const nlohmann::json& layer : body.at("template")) {
    ProfileLayer parsed{layer.at("path").get<std::string>(), layer.at("size").get<uint64_t>(), 0};
    if (!ParseHex64(layer.at("fingerprint").get<std::string>(), &parsed.fingerprint)) {
      return Damaged(path, "a fingerprint is not 16 hex digits");
    }
    profile.layers.push_back(std::move(parsed));
  }
  for (const nlohmann::json& range : body.at("ranges")) {
    if (!range.is_array() || range.size() != 3) return Damaged(path, "a range is not [offset, length, ns]");
    ProfileRange parsed{range[0].get<uint64_t>(), range[1].get<uint64_t>(), range[2].get<uint64_t>()};
    if (parsed.length == 0 || parsed.offset + parsed.length < parsed.offset) {
      return Damaged(path, "range at " + std::to_string(parsed.offset) + " is empty or wraps");
    }
    profile.ranges.push_back(parsed);
  }
  *out = std::move(profile);
  return Status::Ok();
}

}  // namespace

uint64_t BootProfile::bytes() const {
  uint64_t total = 0;
  for (const ProfileRange& range : ranges) total += range.length;
  return total;
}

uint64_t BootProfile::span_ns() const {
  if (ranges.empty()) return 0;
  auto [low, high] = std::minmax_element(ranges.begin(), ranges.end(), [](const auto& a, const auto& b) {
    return a.first_read_ns < b.first_read_ns;
  });
  return high->first_read_ns - low->first_read_ns;
}

std::vector<ProfileLayer> TemplateOf(const OverlayHeader& header) {
  std::vector<ProfileLayer> layers;
  for (const BackingImage& image : header.chain) {
    layers.push_back({image.spec.path, image.identity.size, image.identity.fingerprint});
  }
  return layers;
}

Status CheckTemplate(const BootProfile& profile, const std::vector<ProfileLayer>& layers, const std::string& path) {
  if (profile.layers.size() != layers.size()) {
    return Status::Invalid("boot profile " + path + " was recorded over a chain of " +
                           std::to_string(profile.layers.size()) + " images, this disk has " +
                           std::to_string(layers.size()) + ": it was made for another template");
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    const ProfileLayer& recorded = profile.layers[i];
    const ProfileLayer& now = layers[i];
    if (recorded.size == now.size && recorded.fingerprint == now.fingerprint) continue;
    return Status::Invalid("boot profile " + path + " was recorded over another template: layer " + std::to_string(i) +
                           " was '" + recorded.path + "' (size " + std::to_string(recorded.size) + ", fingerprint " +
                           Hex64(recorded.fingerprint) + "), this disk's is '" + now.path + "' (size " +
                           std::to_string(now.size) + ", fingerprint " + Hex64(now.fingerprint) +
                           "); delete the profile to record a new one");
  }
  return Status::Ok();
}

std::string FormatBootProfile(const BootProfile& profile) {
  nlohmann::json file = Body(profile);
  file["checksum"] = Checksum(file);
  return file.dump() + "\n";
}

Status ParseBootProfile(const std::string& text, const std::string& path, BootProfile* out) {
  nlohmann::json file;
  if (ParseJsonText(text, &file) != JsonText::kOk || !file.is_object()) return Damaged(path, "not JSON");
  try {
    if (file.value("format", "") != kFormat) return Damaged(path, "no \"format\": \"corfs-boot-profile\"");
    const uint32_t version = file.at("version").get<uint32_t>();
    if (version != BootProfile::kVersion) {
      return Status::Invalid("boot profile " + path + " has version " + std::to_string(version) +
                             "; this corfs reads version " + std::to_string(BootProfile::kVersion));
    }
    const std::string checksum = file.at("checksum").get<std::string>();
    file.erase("checksum");
    if (Checksum(file) != checksum) return Damaged(path, "checksum mismatch");
    return ReadBody(file, path, out);
  } catch (const nlohmann::json::exception& e) {
    return Damaged(path, e.what());
  }
}

Status LoadBootProfile(const std::string& path, BootProfile* out) {
  UniqueFd fd;
  if (Status opened = OpenDiskFile(path, O_RDONLY, &fd); !opened.ok()) return opened.WithContext("boot profile");
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("read boot profile " + path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) return Damaged(path, "larger than " + std::to_string(kMaxFileBytes) + " bytes");
  }
  return ParseBootProfile(text, path, out);
}

Status SaveBootProfile(const std::string& path, const BootProfile& profile) {
  return ReplaceFileAtomically(path, FormatBootProfile(profile));
}

Status MergeBootProfiles(const std::vector<BootProfile>& profiles, const std::vector<std::string>& paths,
                         BootProfile* out) {
  if (profiles.empty()) return Status::Invalid("no boot profile to merge");
  uint64_t unit = profiles[0].cluster_size;
  for (size_t i = 1; i < profiles.size(); ++i) {
    CORFS_RETURN_IF_ERROR(
        CheckTemplate(profiles[i], profiles[0].layers, paths[i]).WithContext("merging with " + paths[0]));
    unit = std::min(unit, profiles[i].cluster_size);
  }
  // Each unit's first-read time in every profile that read it.
  std::map<uint64_t, std::vector<uint64_t>> times;
  for (const BootProfile& profile : profiles) {
    std::map<uint64_t, uint64_t> first;  // a profile counts once per unit: its earliest read
    for (const ProfileRange& range : profile.ranges) {
      for (uint64_t u = range.offset / unit; u * unit < range.offset + range.length; ++u) {
        first.try_emplace(u, range.first_read_ns);
      }
    }
    for (const auto& [u, ns] : first) times[u].push_back(ns);
  }
  std::vector<std::pair<uint64_t, uint64_t>> order;  // (median ns, unit)
  for (auto& [u, ns] : times) {
    std::sort(ns.begin(), ns.end());
    const size_t n = ns.size();
    const uint64_t median = n % 2 ? ns[n / 2] : ns[n / 2 - 1] + (ns[n / 2] - ns[n / 2 - 1]) / 2;
    order.emplace_back(median, u);
  }
  std::sort(order.begin(), order.end());
  BootProfile merged;
  merged.cluster_size = unit;
  merged.layers = profiles[0].layers;
  for (const auto& [ns, u] : order) {
    ProfileRange* last = merged.ranges.empty() ? nullptr : &merged.ranges.back();
    if (last != nullptr && last->offset + last->length == u * unit) {
      last->length += unit;
    } else {
      merged.ranges.push_back({u * unit, unit, ns});
    }
  }
  *out = std::move(merged);
  return Status::Ok();
}

}  // namespace corfs::overlay
