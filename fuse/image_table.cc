#include "fuse/image_table.h"

namespace corfs::fuse {

Status ImageTable::FlushAll() {
  Status first;
  for (auto& image : images_) {
    Status status = image->overlay->Close();
    if (first.ok() && !status.ok()) first = status;
  }
  return first;
}

}  // namespace corfs::fuse
