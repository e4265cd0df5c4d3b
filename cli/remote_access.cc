#include "cli/remote_access.h"

#include "config/remote_config.h"

namespace corfs::cli {

Status CommandRemoteOptions(overlay::RemoteOptions* out) {
  overlay::RemoteOptions remote;
  CORFS_RETURN_IF_ERROR(config::ApplyCredentialsEnvironment(&remote));
  *out = std::move(remote);
  return Status::Ok();
}

Status TakeCommandLineCredentials(std::vector<overlay::ImageSpec>* images, overlay::RemoteOptions* remote) {
  for (overlay::ImageSpec& image : *images) {
    std::string redacted;
    CORFS_RETURN_IF_ERROR(config::TakeUriCredentials(image.path, remote, &redacted));
    image.path = std::move(redacted);
  }
  return Status::Ok();
}

}  // namespace corfs::cli
