#include "control/job_target.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

#include "common/file_id.h"
#include "overlay/backing_chain.h"
#include "overlay/image_location.h"
#include "overlay/overlay_files.h"
#include "overlay/persistent_bitmaps.h"

namespace corfs::control {

namespace {

// A file of the mount, and what it is to which image, for the message.
struct MountFile {
  FileId id;
  std::string role;
};

std::vector<MountFile> FilesOfTheMount(const ControlContext& context) {
  std::vector<MountFile> files;
  auto add = [&](const std::string& path, const std::string& role) {
    FileId id;
    if (!overlay::IsUri(path) && IdentifyFile(path, &id).ok()) files.push_back({id, role});
  };
  for (const std::shared_ptr<mount::MountedImage>& image : context.images->Snapshot()) {
    const overlay::Overlay& overlay = *image->overlay;
    const std::string of_image = " of image '" + image->name() + "'";
    add(overlay.data_path(), "the data file" + of_image);
    add(overlay::MetadataPath(overlay.path()), "the metadata file" + of_image);
    add(overlay::BitmapsPath(overlay.path()), "the bitmaps file" + of_image);
    if (const std::shared_ptr<overlay::BackingChain> chain = overlay.backing_chain()) {
      for (size_t i = 0; i < chain->depth(); ++i) add(chain->layer(i).path(), "a backing image" + of_image);
    }
  }
  return files;
}

// Whether `path` names something inside the folder `mountpoint`, with
// symbolic links and ".." resolved. Compared by name, not by device: until
// the mount is up, the folder is on the file system around it.
bool InsideMount(const std::string& path, const std::string& mountpoint) {
  if (mountpoint.empty()) return false;
  std::error_code error;
  const std::filesystem::path folder = std::filesystem::weakly_canonical(mountpoint, error);
  if (error) return false;
  const std::filesystem::path file = std::filesystem::weakly_canonical(path, error);
  if (error) return false;
  const auto [folder_end, file_at] = std::mismatch(folder.begin(), folder.end(), file.begin(), file.end());
  return folder_end == folder.end() && file_at != file.end();
}

}  // namespace

Status CheckJobTarget(const ControlContext& context, const std::string& target) {
  if (overlay::IsUri(target)) return Status::Ok();
  if (InsideMount(target, context.mountpoint)) {
    return Status::Invalid("target " + target + " is inside the mount " + context.mountpoint +
                           ": a job's target must be outside it");
  }
  const std::vector<MountFile> files = FilesOfTheMount(context);
  for (const std::string& path : {target, overlay::MetadataPath(target), overlay::PartialDataPath(target)}) {
    FileId id;
    if (!IdentifyFile(path, &id).ok()) continue;
    for (const MountFile& file : files) {
      if (file.id == id) {
        return Status::Invalid("target " + target + " is " + file.role +
                               ": a job's target must be a file the mount does not use");
      }
    }
  }
  return Status::Ok();
}

}  // namespace corfs::control
