#include "overlay/commit_intent.h"

#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/file_io.h"
#include "common/json_text.h"

namespace corfs::overlay {

namespace {

constexpr const char* kFormat = "corfs-commit-intent";
constexpr int kVersion = 1;

// The identity fields that a commit changes and an open compares (size and
// sampled fingerprint decide; the stamp only warns).
nlohmann::json IdentityJson(const ImageIdentity& identity) {
  return {{"size", identity.size}, {"fingerprint", identity.fingerprint}};
}

nlohmann::json Identities(const std::vector<ImageIdentity>& identities) {
  nlohmann::json list = nlohmann::json::array();
  for (const ImageIdentity& identity : identities) list.push_back(IdentityJson(identity));
  return list;
}

ImageIdentity IdentityFromJson(const nlohmann::json& j) {
  ImageIdentity identity;
  identity.size = j.at("size").get<uint64_t>();
  identity.fingerprint = j.at("fingerprint").get<uint64_t>();
  return identity;
}

std::string Checksum(const std::string& body) { return std::to_string(XXH3_64bits(body.data(), body.size())); }

}  // namespace

bool CommitIntent::Covers(const std::string& overlay_path, const ImageIdentity& recorded) const {
  const bool known = recorded.SameSamples(old_identity) ||
                     std::any_of(earlier_identities.begin(), earlier_identities.end(),
                                 [&](const ImageIdentity& earlier) { return recorded.SameSamples(earlier); });
  return known && std::find(overlays.begin(), overlays.end(), overlay_path) != overlays.end();
}

void CommitIntent::MergeUnfinished(const CommitIntent& unfinished) {
  for (const ImageIdentity& identity : unfinished.earlier_identities) earlier_identities.push_back(identity);
  earlier_identities.push_back(unfinished.old_identity);
}

std::string CommitIntentPath(const std::string& base_path) { return base_path + ".corfs-commit"; }

Status WriteCommitIntent(const std::string& base_path, const CommitIntent& intent) {
  const std::string body = nlohmann::json({{"format", kFormat},
                                           {"version", kVersion},
                                           {"old", IdentityJson(intent.old_identity)},
                                           {"earlier", Identities(intent.earlier_identities)},
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
  nlohmann::json outer;
  if (ParseJsonText(text.str(), &outer) != JsonText::kOk) return std::nullopt;
  if (!outer.is_object() || !outer.contains("body") || !outer["body"].is_string()) return std::nullopt;
  const std::string body = outer["body"].get<std::string>();
  if (outer.value("checksum", std::string()) != Checksum(body)) return std::nullopt;
  nlohmann::json j;
  if (ParseJsonText(body, &j) != JsonText::kOk) return std::nullopt;
  if (!j.is_object() || j.value("format", std::string()) != kFormat || j.value("version", 0) != kVersion) {
    return std::nullopt;
  }
  CommitIntent intent;
  try {
    intent.old_identity = IdentityFromJson(j.at("old"));
    for (const nlohmann::json& earlier : j.at("earlier"))
      intent.earlier_identities.push_back(IdentityFromJson(earlier));
    intent.overlays = j.at("overlays").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return intent;
}

bool CoveredByUnfinishedCommit(const std::string& base_path, const std::string& overlay_path,
                               const ImageIdentity& recorded, std::string* why) {
  const std::optional<CommitIntent> intent = ReadCommitIntent(base_path);
  if (!intent || !intent->Covers(std::filesystem::absolute(overlay_path).lexically_normal().string(), recorded)) {
    return false;
  }
  *why = "backing image " + base_path + " was changed by a commit that did not finish (" + CommitIntentPath(base_path) +
         "); this overlay holds every cluster it changed";
  return true;
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
