#pragma once
// The two files of an overlay (overlay.h) as files: where they are, where
// the backing images their header names are, and reading the metadata file.
// Opening an overlay and looking at one (overlay_inspect.h) read it through
// these same functions.
//
// Plain functions of their arguments; any thread.

#include <string>

#include "common/status.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/overlay_header.h"

namespace corfs::overlay {

// The metadata file of the overlay whose data file is `path`.
std::string MetadataPath(const std::string& path);

// Where a backing path stored in the header of the overlay at `overlay_path`
// points to: relative paths are relative to the overlay's folder, as for
// qcow2 backing files.
std::string ResolveBackingPath(const std::string& overlay_path, const std::string& stored);

// The path to store for a backing image a user named relative to the
// current folder: relative to the overlay's folder, so both can move together.
std::string StoredBackingPath(const std::string& overlay_path, const std::string& user_path);

// Reads the active header of the metadata file open as `fd` (named
// `meta_path` in messages) and checks that the file is long enough for the
// bitmap that header needs.
Status ReadMetadataHeader(int fd, const std::string& meta_path, OverlayHeader* out);

// Checks that the metadata file is long enough for the bitmap `header` needs.
Status CheckBitmapLength(int fd, const std::string& meta_path, const OverlayHeader& header);

// Loads the on-disk bitmap of `header` into `bitmap` (of header.cluster_count()
// clusters, not shared yet).
Status LoadBitmap(int fd, const std::string& meta_path, const OverlayHeader& header, AllocationBitmap* bitmap);

}  // namespace corfs::overlay
