#include "overlay/shared_image_cache.h"

#include "overlay/forwarding_driver.h"
#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

// A handle on a shared driver; the driver closes with its last handle. It
// changes nothing about the bytes, so a raw image's file is handed on and
// streams still copy it inside the kernel.
class SharedDriver final : public ForwardingDriver {
 public:
  using ForwardingDriver::ForwardingDriver;
  int data_fd() const override { return inner().data_fd(); }
};

}  // namespace

SharedImageCache::SharedImageCache(ImageOpener opener) : state_(std::make_shared<State>()) {
  state_->inner = std::move(opener);
}

ImageOpener SharedImageCache::opener() const {
  std::shared_ptr<State> state = state_;
  return [state](const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out) -> Status {
    // A file by device and inode (links and other spellings are one file);
    // an image on a server by its name.
    FileId file;
    std::string name;
    if (IsUri(path)) {
      name = path;
    } else if (Status found = IdentifyFile(path, &file); !found.ok()) {
      return Status::Error(found.code(), "open " + found.message());
    }
    const auto key = std::make_tuple(file, name, format);
    std::lock_guard lock(state->mutex);
    std::shared_ptr<BlockDriver> driver = state->drivers[key].lock();
    if (!driver) {
      std::unique_ptr<BlockDriver> opened;
      CORFS_RETURN_IF_ERROR(state->inner(path, format, &opened));
      driver = std::move(opened);
      state->drivers[key] = driver;
    }
    *out = std::make_unique<SharedDriver>(std::move(driver));
    return Status::Ok();
  };
}

size_t SharedImageCache::open_images() const {
  std::lock_guard lock(state_->mutex);
  size_t open = 0;
  for (const auto& [key, driver] : state_->drivers) open += driver.expired() ? 0 : 1;
  return open;
}

}  // namespace corfs::overlay
