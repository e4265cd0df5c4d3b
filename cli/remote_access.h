#pragma once
// How the commands run by hand (create, check, map) reach the servers of
// backing images: RemoteOptions' defaults, the credentials file
// CORFS_CREDENTIALS names, and the credentials written in a URI on the
// command line, split off before the name is used anywhere visible.

#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/image_spec.h"
#include "overlay/remote/remote_options.h"

namespace corfs::cli {

// Default RemoteOptions with CORFS_CREDENTIALS applied (checked: mode 0600
// or stricter).
Status CommandRemoteOptions(overlay::RemoteOptions* out);

// Replaces each URI of `images` by its redacted form, keeping its
// credentials in `remote`.
Status TakeCommandLineCredentials(std::vector<overlay::ImageSpec>* images, overlay::RemoteOptions* remote);

}  // namespace corfs::cli
