#pragma once
// SharedImageCache: makes images that share a template open it once.
//
// Its opener hands out thin wrappers around one driver per file (same
// device and inode, same format) or image on a server (same URI): ten VMs over one template share one file
// descriptor and one set of caches. The cache only remembers drivers that
// are still in use, so a template nobody needs any more is closed.

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/file_id.h"
#include "overlay/image_opener.h"

namespace corfs::overlay {

class SharedImageCache {
 public:
  explicit SharedImageCache(ImageOpener opener = OpenImage);

  // An opener that shares drivers through this cache. It stays valid after
  // the cache object is gone (it holds the cache's state).
  ImageOpener opener() const;

  // How many distinct images are open through the cache right now.
  size_t open_images() const;

 private:
  struct State {
    ImageOpener inner;
    std::mutex mutex;
    // (device and inode of a file, or the name of an image on a server,
    // format) -> driver, while anyone holds it.
    std::map<std::tuple<FileId, std::string, std::string>, std::weak_ptr<BlockDriver>> drivers;
  };
  std::shared_ptr<State> state_;
};

}  // namespace corfs::overlay
