#pragma once
// BootProfile: the order in which a guest first read the clusters of a disk
// (a boot, typically), recorded on one mount (boot_profile_recorder.h) and
// replayed by the streams of later ones (jobs/stream_driver.h), which copy
// its ranges first. It is a file of its own beside the overlays, not part of
// any overlay: one profile serves every overlay of the same template.
//
// The file is JSON, small and versioned:
//   {"format": "corfs-boot-profile", "version": 1, "cluster-size": N,
//    "template": [{"path", "size", "fingerprint"}, ...],   top first
//    "ranges": [[offset, length, ns since the first read], ...],
//    "checksum": "XXH3-64 of the rest, as hex"}
// The template is the overlay's backing chain as its header records it:
// each layer's size and sampled fingerprint (image_identity.h) decide; the
// path is only shown. A profile is refused over another template
// (CheckTemplate), since its offsets would mean other files' blocks.
//
// Writes are atomic (temporary file, fsync, rename, fsync of the folder):
// a reader finds the old profile, the new one or none, never half of one.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/overlay_header.h"

namespace corfs::overlay {

struct ProfileRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t first_read_ns = 0;  // since the guest's first read of the disk

  bool operator==(const ProfileRange&) const = default;
};

// One layer of the template a profile was made on.
struct ProfileLayer {
  std::string path;  // as the overlay's header names it; shown, never compared
  uint64_t size = 0;
  uint64_t fingerprint = 0;

  bool operator==(const ProfileLayer&) const = default;
};

struct BootProfile {
  static constexpr uint32_t kVersion = 1;

  uint64_t cluster_size = 0;
  std::vector<ProfileLayer> layers;  // the template, top first
  std::vector<ProfileRange> ranges;  // in the order the guest first read them

  uint64_t bytes() const;
  // From the first range's first read to the last's.
  uint64_t span_ns() const;
};

// The template of an overlay with this header (its backing chain).
std::vector<ProfileLayer> TemplateOf(const OverlayHeader& header);

// Ok when `profile` was made on `layers`; else an error saying which layer
// differs, naming `path` (the profile's file).
Status CheckTemplate(const BootProfile& profile, const std::vector<ProfileLayer>& layers, const std::string& path);

std::string FormatBootProfile(const BootProfile& profile);  // the file's text
Status ParseBootProfile(const std::string& text, const std::string& path, BootProfile* out);

// ENOENT when there is no file at `path` (the caller records one then).
Status LoadBootProfile(const std::string& path, BootProfile* out);
Status SaveBootProfile(const std::string& path, const BootProfile& profile);

// Several profiles of one template as one: each cluster (of the smallest
// cluster size among them) ordered by the median of its first-read times in
// the profiles that read it (ties by offset), adjacent clusters in a row
// joined into one range. Refused unless all were made on the same template.
Status MergeBootProfiles(const std::vector<BootProfile>& profiles, const std::vector<std::string>& paths,
                         BootProfile* out);

}  // namespace corfs::overlay
