#pragma once
// The two files of an overlay (overlay.h) as files: where they are, where
// the backing images their header names are, and reading the metadata file.
//
// The overlay at NAME is NAME.cor (metadata) and its data file: NAME.part
// while an overlay whose header has the partial data file flag is not
// standalone, NAME otherwise. The flagged overlay's last step to standalone
// renames NAME.part to NAME after the standalone header is durable, so a
// disk at NAME is always complete (docs/design.md, "The overlay").
// Opening an overlay and looking at one (overlay_inspect.h) read it through
// these same functions.
//
// Plain functions of their arguments; any thread.

#include <string>

#include "common/status.h"
#include "overlay/allocation_bitmap.h"
#include "overlay/file_system.h"
#include "overlay/overlay_header.h"

namespace corfs::overlay {

// The metadata file of the overlay whose data file is `path`.
std::string MetadataPath(const std::string& path);

// The data file of the unfinished overlay at `path`: NAME.part.
std::string PartialDataPath(const std::string& path);

// The data file the header of the overlay at `path` names: NAME.part when
// the header has the partial data file flag and is not standalone, else NAME.
std::string DataFilePath(const std::string& path, const OverlayHeader& header);

// Where the data file of an overlay is, as its header and its folder say.
struct DataFileLocation {
  std::string path;  // the file that holds the data
  // The header is standalone and flagged, but only NAME.part exists: a
  // crash (or a failed rename) came between the standalone header and the
  // rename. A writable open finishes it (FinishDataFileRename).
  bool rename_pending = false;
};

// Finds the data file of the overlay at `path` whose header is `header`,
// looking only (nothing is renamed). Refuses, naming both, when NAME and
// NAME.part both exist for a flagged header: which one is the disk cannot
// be told. An overlay without the flag (versions 1 and 2, and one made
// standalone) uses NAME and nothing else.
Status LocateDataFile(const std::string& path, const OverlayHeader& header, DataFileLocation* out);

// The last step to standalone of a flagged overlay: renames NAME.part to
// NAME and makes the rename durable (fsync of the folder). Fails with EIO,
// saying what failed; the data file stays readable under either name.
Status FinishDataFileRename(const std::string& path, FileSystem& file_system);

// Where a backing path stored in the header of the overlay at `overlay_path`
// points to: relative paths are relative to the overlay's folder, as for
// qcow2 backing files. A URI is a name, not a path: it stays as it is.
std::string ResolveBackingPath(const std::string& overlay_path, const std::string& stored);

// The path to store for a backing image a user named relative to the
// current folder: relative to the overlay's folder, so both can move together.
// A URI is stored without its credentials (image_location.h).
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
