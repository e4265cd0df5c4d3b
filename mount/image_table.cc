#include "mount/image_table.h"

namespace corfs::mount {

Status ImageTable::CloseAll() {
  Status first;
  for (auto& image : images_) {
    Status status = image->overlay->Close();
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

}  // namespace corfs::mount
