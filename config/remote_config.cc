#include "config/remote_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "overlay/image_location.h"

namespace corfs::config {

namespace {

constexpr std::string_view kRemoteKeys[] = {"connect_timeout", "request_timeout", "retries",
                                            "connections",     "credentials",     "ca_file"};
constexpr uint64_t kMaxRetries = 100;
constexpr uint64_t kMaxConnections = 64;

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

}  // namespace

Status CheckCredentialsFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("credentials file " + path);
  if (!S_ISREG(st.st_mode)) return Status::Invalid("credentials file " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return Status::Invalid("credentials file " + path + " has mode " + OctalMode(st.st_mode) +
                           ": others may read it; make it 0600 or stricter (chmod 600 " + path + ")");
  }
  return Status::Ok();
}

Status ApplyCredentialsEnvironment(overlay::RemoteOptions* out) {
  if (!out->credentials_file.empty()) return Status::Ok();
  const char* named = std::getenv(kCredentialsEnvironment);
  if (named == nullptr || *named == '\0') return Status::Ok();
  std::error_code ec;
  std::string path = std::filesystem::absolute(named, ec).lexically_normal().string();
  if (ec) path = named;
  Status checked = CheckCredentialsFile(path);
  if (!checked.ok()) return checked.WithContext(std::string(kCredentialsEnvironment));
  out->credentials_file = std::move(path);
  return Status::Ok();
}

Status TakeUriCredentials(const std::string& name, overlay::RemoteOptions* out, std::string* redacted) {
  *redacted = overlay::RedactCredentials(name);
  const overlay::UriUserInfo info = overlay::UserInfoOf(name);
  if (!info.has) return Status::Ok();
  overlay::RemoteOptions::Credentials credentials{info.user, info.password};
  auto [it, added] = out->uri_credentials.emplace(*redacted, credentials);
  if (!added && (it->second.user != credentials.user || it->second.password != credentials.password)) {
    return Status::Invalid(*redacted + " is given two different sets of credentials");
  }
  return Status::Ok();
}

bool ReadRemote(const Field& field, const std::string& base_dir, Diagnostics& diag, overlay::RemoteOptions* out) {
  std::vector<MapEntry> keys;
  if (!ReadMap(field, kRemoteKeys, diag, &keys)) return false;
  bool ok = true;
  for (const MapEntry& entry : keys) {
    const Field& value = entry.value;
    uint64_t number = 0;
    if (entry.key == "connect_timeout") {
      ok = ReadDuration(value, std::chrono::milliseconds(100), std::chrono::minutes(10), diag, &out->connect_timeout) &&
           ok;
    } else if (entry.key == "request_timeout") {
      ok =
          ReadDuration(value, std::chrono::milliseconds(100), std::chrono::hours(1), diag, &out->request_timeout) && ok;
    } else if (entry.key == "retries") {
      if (ReadUnsigned(value, kMaxRetries, diag, &number)) {
        out->retries = static_cast<unsigned>(number);
      } else {
        ok = false;
      }
    } else if (entry.key == "connections") {
      if (!ReadUnsigned(value, kMaxConnections, diag, &number)) {
        ok = false;
      } else if (number == 0) {
        diag.Error(value.mark,
                   value.what + ": at least 1 connection is needed (1 .. " + std::to_string(kMaxConnections) + ")");
        ok = false;
      } else {
        out->connections = static_cast<unsigned>(number);
      }
    } else if (entry.key == "credentials" || entry.key == "ca_file") {
      std::string path;
      if (!ReadPath(value, base_dir, diag, &path)) {
        ok = false;
        continue;
      }
      Status checked = entry.key == "credentials" ? CheckCredentialsFile(path) : Status::Ok();
      if (entry.key == "ca_file") {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
          checked = Status::FromErrno("CA file " + path);
        } else if (!S_ISREG(st.st_mode)) {
          checked = Status::Invalid("CA file " + path + " is not a regular file");
        }
      }
      if (!checked.ok()) {
        diag.Error(value.mark, value.what + ": " + checked.message());
        ok = false;
        continue;
      }
      (entry.key == "credentials" ? out->credentials_file : out->ca_file) = path;
    }
  }
  return ok;
}

}  // namespace corfs::config
