#pragma once
// The header of a native overlay's metadata file, NAME.cor.
//
// Layout of NAME.cor:
//
//   [0, 64 KiB)       header slot 0
//   [64 KiB, 128 KiB) header slot 1
//   [128 KiB, ...)    allocation bitmap: bit i (LSB first) = cluster i is in
//                     the overlay; its length is rounded up to 4 KiB
//
// A header update writes the slot the current header is *not* in, with the
// next sequence number, then syncs. Each slot carries a checksum, so a torn
// update leaves one valid slot (the old header) and opening takes the valid
// slot with the highest sequence: the chain is either the old or the new one,
// never a mix. Header sequence N lives in slot N % 2.
//
// The functions below are plain functions of their arguments, callable from
// any thread; the overlay serializes its own header writes.
//
// Slot encoding, little-endian:
//   magic "CORFSHDR" | u32 version | u32 payload length | u64 checksum
//   (XXH3-64 of version, length and payload) | payload
// Payload:
//   u64 sequence | u64 virtual size | u32 cluster bits | u32 flags
//   | u32 chain length | per backing image: u16 path length, path,
//   u16 format length, format, u64 size, u64 fingerprint
//   [version 2 on: | u32 image flags (bit 0: file stamp, bit 1: content
//   hash) | u64 device | u64 inode | i64 mtime ns | u64 content hash low
//   | u64 content hash high; the fields of an absent part are zero]
//   [version 4 on: | u16 length, version tag (the server's ETag or
//   Last-Modified as BlockDriver::version_tag gives it; empty for none)]
//   [version 3 on, after the chain: u32 file flags (bit 0: owner, bit 1:
//   mode, bit 2: stream wish, bit 3: partial data file) | u32 uid | u32 gid
//   | u32 mode | u64 stream wish speed | u16 length, stream wish on-error
//   policy; the fields of an absent part are zero or empty]
//
// Versions: 1 the format above without the version 2 part; 2 adds each
// backing image's file stamp and optional content hash (image_identity.h);
// 3 adds the file's owner and mode as set through a mount, the wish for a
// whole-image stream to resume, and the partial data file name; 4 adds each
// backing image's version tag (the identity of an image on a server).
// Every version ever written is read. A header keeps the version it was
// read with: an overlay made by an older corfs stays readable by it after a
// newer one has used it, and only `corfs create` writes the latest version,
// except that recording a part an older version has no room for (an owner,
// a mode, a stream wish) moves the header to version 3.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "overlay/image_identity.h"
#include "overlay/image_spec.h"

namespace corfs::overlay {

inline constexpr uint64_t kHeaderSlotSize = 64 * 1024;
inline constexpr uint64_t kBitmapOffset = 2 * kHeaderSlotSize;
inline constexpr uint64_t kBitmapPageSize = 4096;
inline constexpr uint64_t kMaxVirtualSize = uint64_t{1} << 60;  // 1 EiB
inline constexpr uint32_t kMinClusterBits = 12;                 // 4 KiB
inline constexpr uint32_t kMaxClusterBits = 21;                 // 2 MiB
inline constexpr uint32_t kDefaultClusterBits = 16;             // 64 KiB
inline constexpr uint64_t kDefaultClusterSize = uint64_t{1} << kDefaultClusterBits;
inline constexpr uint32_t kOldestHeaderVersion = 1;
inline constexpr uint32_t kLatestHeaderVersion = 4;
// The first version with the file's owner and mode, the stream wish and
// the partial data file.
inline constexpr uint32_t kFileAttributesVersion = 3;
// The first version with each backing image's version tag.
inline constexpr uint32_t kVersionTagVersion = 4;

// One image of the backing chain as the header records it: the image as
// named, and the identity it had when the overlay was made over it (an
// image found there later must still have it).
struct BackingImage {
  // A relative path is relative to the overlay's folder (ResolveBackingPath
  // in overlay_files.h); the format is the detected one, never "".
  ImageSpec spec;
  ImageIdentity identity;

  bool operator==(const BackingImage&) const = default;
};

// Who owns the disk file a mount shows (chown through the mount).
struct FileOwner {
  uint32_t uid = 0;
  uint32_t gid = 0;

  bool operator==(const FileOwner&) const = default;
};

// A whole-image stream that was started and has neither completed nor been
// cancelled: the next mount starts it again, the same way.
struct StreamWish {
  uint64_t speed = 0;               // bytes per second, 0 unlimited
  std::string on_error = "report";  // the job's on-error policy, as QMP spells it

  bool operator==(const StreamWish&) const = default;
};

struct OverlayHeader {
  uint32_t version = kLatestHeaderVersion;  // the slot format it is written in
  uint64_t sequence = 0;
  uint64_t virtual_size = 0;
  uint32_t cluster_bits = kDefaultClusterBits;
  bool standalone = false;          // streaming finished: no backing chain any more
  std::vector<BackingImage> chain;  // top first
  // Version 3 on; absent in older headers.
  std::optional<FileOwner> owner;  // unset: the YAML's (or the mount's) default
  std::optional<uint32_t> mode;    // permission bits; unset: the YAML's default
  std::optional<StreamWish> stream_wish;
  // The data file is NAME.part, not NAME, until the overlay is standalone,
  // so an unfinished disk never passes for a whole one (docs/design.md).
  bool partial_data_file = false;

  bool operator==(const OverlayHeader&) const = default;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  uint64_t cluster_count() const { return (virtual_size + cluster_size() - 1) >> cluster_bits; }
  // Bytes of bitmap on disk: one bit per cluster, rounded up to whole pages.
  uint64_t bitmap_bytes() const {
    uint64_t bytes = (cluster_count() + 7) / 8;
    return (bytes + kBitmapPageSize - 1) / kBitmapPageSize * kBitmapPageSize;
  }
  uint64_t metadata_file_size() const { return kBitmapOffset + bitmap_bytes(); }

  // Checks field ranges; a decoded header passed this.
  Status Validate() const;
};

// Encodes `header` into a slot of kHeaderSlotSize bytes.
Status EncodeHeaderSlot(const OverlayHeader& header, std::string* slot);

// Decodes one slot; fails with a message saying what is wrong (bad magic,
// bad checksum, unsupported version, fields out of range).
Status DecodeHeaderSlot(std::string_view slot, OverlayHeader* out);

// What a metadata file's two slots hold; used by open and by `corfs check`.
struct HeaderSlots {
  Status slot_status[2];
  OverlayHeader slot_header[2];
  int active = -1;  // the valid slot with the highest sequence, or -1
};

// Reads both slots of the metadata file open as `fd` (named `path` in messages).
Status ReadHeaderSlots(int fd, const std::string& path, HeaderSlots* out);

// Reads the active header: fails if neither slot is valid.
Status ReadHeader(int fd, const std::string& path, OverlayHeader* out);

// Writes `header` into slot header.sequence % 2 and syncs.
Status WriteHeaderSlot(int fd, const std::string& path, const OverlayHeader& header);

}  // namespace corfs::overlay
