#pragma once
// Loading a mount description from YAML (schema: docs/config.md).
//
// Everything is checked before anything is touched: the only I/O besides
// reading the YAML file is stat() of the paths it names (backing files must
// exist; overlays may not). A failure leaves *out unchanged and returns a
// Status whose message lists every problem found, one a line, in file order,
// each as "FILE:LINE:COLUMN: key.path: what is wrong".

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "config/mount_config.h"

namespace corfs::config {

struct LoadOptions {
  // Answers whether the overlay at a path is standalone (its streaming is
  // done). Such an image no longer needs its backing files, so they may be
  // gone. Unset: every backing file must exist.
  std::function<bool(const std::string& overlay_path)> overlay_is_standalone;
};

// Reads and validates the YAML file at `yaml_path`. Relative paths in it are
// relative to the folder of the file.
Status LoadMountConfig(const std::string& yaml_path, MountConfig* out, const LoadOptions& options = {});

// The same on text: `source_name` names it in messages and becomes
// out->source_file; relative paths are resolved against `base_dir` (itself
// made absolute against the current folder).
Status ParseMountConfig(std::string_view yaml_text, const std::string& source_name, const std::string& base_dir,
                        MountConfig* out, const LoadOptions& options = {});

// Reads one image called `name` whose keys are `image_text` (a map of the
// keys of an image under `images:`, as YAML or JSON text: JSON is YAML)
// exactly as LoadMountConfig reads an image of the YAML file at
// `yaml_path`: the file's `defaults:` and `templates:` apply, relative
// paths are relative to its folder, and every check on one image is made
// (the file's own `images:` are not read). Messages begin with
// `source_name`; those about the keys have no line (they are no lines of a
// file), those about the file's `defaults:` or `templates:` the line in it.
Status LoadImageConfig(const std::string& yaml_path, const std::string& name, std::string_view image_text,
                       const std::string& source_name, const LoadOptions& options, ImageConfig* out);

// The checks across images for `image` joining a running mount that serves
// `live` at `mountpoint` (empty: not checked): a name of its own, an
// overlay of its own, no live overlay in its chain nor its overlay in a
// live chain, and no file inside the mountpoint.
Status CheckJoiningImage(const ImageConfig& image, const std::vector<ImageConfig>& live, const std::string& mountpoint);

}  // namespace corfs::config
