#pragma once
// Looking at an overlay without opening its chain: what `corfs info` shows
// and what `corfs check` verifies. Both only read the overlay's files (no
// lock on them), so they may run while a corfs process has the overlay open,
// and from any thread.

#include <string>
#include <vector>

#include "overlay/image_identity.h"
#include "overlay/image_opener.h"
#include "overlay/overlay_header.h"

namespace corfs::overlay {

struct OverlayInfo {
  std::string path;
  OverlayHeader header;  // its chain's paths as stored: see ResolveBackingPath (overlay_files.h)
  uint64_t allocated_clusters = 0;
  uint64_t allocated_bytes = 0;  // clusters held, capped at the disk size
  uint64_t data_file_bytes = 0;  // space the data file takes on disk
  // The data file (overlay_files.h: NAME, or NAME.part while unfinished),
  // and whether its rename to NAME is pending; when the folder does not
  // show where it is (both names, or neither), the name the header gives
  // and why it cannot be used.
  std::string data_file;
  bool rename_pending = false;
  std::string data_file_problem;
};

// Reads the header and counts the bitmap; fails only if the overlay cannot
// be read at all.
Status InspectOverlay(const std::string& path, OverlayInfo* out);

struct CheckReport {
  std::vector<std::string> problems;  // each makes the overlay unsound
  std::vector<std::string> notes;     // worth knowing, not harmful
  bool sound() const { return problems.empty(); }
};

// Verifies header checksums, the bitmap's length and padding, the data
// file's size, and the identity of every image of the chain as opening does
// (VerifyIdentity): what would refuse the open is a problem, what would
// warn is a note. kFull hashes every backing image that has a recorded
// content hash (and notes those that have none).
void CheckOverlay(const std::string& path, const ImageOpener& opener, CheckReport* report,
                  VerifyBacking verify = VerifyBacking::kSampled);

}  // namespace corfs::overlay
