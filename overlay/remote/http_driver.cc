#include "overlay/remote/http_driver.h"

#include <cerrno>

#include "overlay/image_location.h"

namespace corfs::overlay {

Status OpenHttpImage(const std::string& uri, const RemoteOptions& /*options*/, std::unique_ptr<BlockDriver>* /*out*/) {
  return Status::Error(ENOTSUP, RedactCredentials(uri) + ": the http protocol driver is not built yet");
}

}  // namespace corfs::overlay
