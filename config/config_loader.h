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

}  // namespace corfs::config
