#pragma once
// The allocation map of a disk, as `qemu-img map --output=json` reports it
// for a qcow2 chain: the disk in runs, each with the depth of the image
// that decides what the run reads as (0 = the overlay, 1.. = the backing
// images, top first), whether that image holds the run (present), and
// whether it reads as zeros (zero) or from stored bytes (data). Adjacent
// runs that say the same are one run.
//
// Where corfs differs from QEMU, as its block drivers tell allocation:
// a hole of a raw backing image holds nothing (lower images show through
// it, as corfs reads it), where QEMU says a raw image holds all of its
// bytes; an unallocated cluster of a qcow2 image without a backing file is
// zeros that image holds (present), where QEMU says it is not present;
// and inside the clusters the overlay holds, the holes of its data file
// are zero runs of their own (QEMU's granularity is the qcow2 cluster).
//
// Plain functions; a live map (Overlay::Map) may run while guests and jobs
// use the overlay (see there).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/backing_chain.h"
#include "overlay/image_opener.h"

namespace corfs::overlay {

struct MapRun {
  uint64_t start = 0;
  uint64_t length = 0;
  size_t depth = 0;
  bool present = false;
  bool zero = false;
  bool data = false;

  bool SameKind(const MapRun& other) const {
    return depth == other.depth && present == other.present && zero == other.zero && data == other.data;
  }
  bool operator==(const MapRun&) const = default;
};

// What a map is made of.
struct MapSources {
  uint64_t disk_size = 0;
  // The run at `offset` (at most `length` bytes) whose clusters the overlay
  // all holds (*local true) or all lacks, and its length.
  std::function<Status(uint64_t offset, uint64_t length, bool* local, uint64_t* run)> local_run;
  // Inside a run the overlay holds: kData, or kZero for a hole.
  std::function<Status(uint64_t offset, uint64_t length, BlockStatus* out)> local_status;
  BackingChain* chain = nullptr;
};

// The map of the whole disk.
Status MapDisk(const MapSources& sources, std::vector<MapRun>* out);

// The map of the overlay whose data file is `path`, from its files as its
// last commit left them. Takes no lock: a running mount may have the
// overlay open (bitmap bits only go from 0 to 1, and reach the file only
// after their clusters' data, so any bitmap read is a state the overlay
// was in; what the mount allocated since its last commit, about a second,
// shows as the chain's). Each backing image is checked against the
// identity the header records, as opening does (a warning goes to `warn`).
Status MapOverlayFile(const std::string& path, const ImageOpener& opener,
                      const std::function<void(const std::string&)>& warn, std::vector<MapRun>* out);

}  // namespace corfs::overlay
