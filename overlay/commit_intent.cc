#include "overlay/commit_intent.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file_io.h"

namespace corfs::overlay {

namespace {

constexpr const char* kFormat = "corfs-commit-intent";
constexpr int kVersion = 1;

// The identity fields that a commit changes and an open compares (size and
// sampled fingerprint decide; the stamp only warns).
nlohmann::json IdentityJson(const ImageIdentity& identity) {
  return {{"size", identity.size}, {"fingerprint", identity.fingerprint}};
}

std::string Checksum(const std::string& body) { return std::to_string(XXH3_64bits(body.data(), body.size())); }

}  // namespace

bool CommitIntent::Covers(const std::string& overlay_path, const ImageIdentity& recorded) const {
  return recorded.SameSamples(old_identity) &&
         std::find(overlays.begin(), overlays.end(), overlay_path) != overlays.end();
}

std::string CommitIntentPath(const std::string& base_path) { return base_path + ".corfs-commit"; }

Status WriteCommitIntent(const std::string& base_path, const CommitIntent& intent) {
  const std::string body = nlohmann::json({{"format", kFormat},
                                           {"version", kVersion},
                                           {"old", IdentityJson(intent.old_identity)},
                                           {"overlays", intent.overlays}})
                               .dump();
  const std::string text = nlohmann::json({{"body", body}, {"checksum", Checksum(body)}}).dump() + "\n";
  Status status = ReplaceFileAtomically(CommitIntentPath(base_path), text);
  if (!status.ok()) return status.WithContext("commit intent beside " + base_path);
  return Status::Ok();
}

std::optional<CommitIntent> ReadCommitIntent(const std::string& base_path) {
  std::ifstream in(CommitIntentPath(base_path));
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json outer = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!outer.is_object() || !outer.contains("body") || !outer["body"].is_string()) return std::nullopt;
  const std::string body = outer["body"].get<std::string>();
  if (outer.value("checksum", std::string()) != Checksum(body)) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", std::string()) != kFormat || j.value("version", 0) != kVersion) {
    return std::nullopt;
  }
  CommitIntent intent;
  try {
    intent.old_identity.size = j.at("old").at("size").get<uint64_t>();
    intent.old_identity.fingerprint = j.at("old").at("fingerprint").get<uint64_t>();
    intent.overlays = j.at("overlays").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return intent;
}

Status RemoveCommitIntent(const std::string& base_path) {
  const std::string path = CommitIntentPath(base_path);
  if (::unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status::Error(errno, "cannot remove " + path);
  }
  return SyncParentDirectory(path);
}

}  // namespace corfs::overlay
