#pragma once
// The qcow2 image header (QEMU's docs/interop/qcow2.txt): parsing and
// validation, for the read-only qcow2 driver and for following backing
// chains.
//
// Everything a reader needs is checked here, against the file size and sane
// limits, before any table is read: versions 2 and 3, cluster_bits 9..21, the
// header length, the L1 table (cluster-aligned, inside the file, at most
// 32 MiB, large enough for the virtual size), the backing file name, and the
// header extensions (backing format, feature name table; unknown ones are
// skipped). Images this reader cannot present faithfully are refused with a
// message that says why: encryption, an external data file, unknown
// incompatible features (named from the feature table when it has them), or
// an unknown compression type.

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/block_driver.h"

namespace corfs::overlay {

inline constexpr uint32_t kQcow2Magic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kQcow2MinClusterBits = 9;
inline constexpr uint32_t kQcow2MaxClusterBits = 21;
inline constexpr uint64_t kQcow2MaxL1Bytes = uint64_t{32} << 20;
inline constexpr uint32_t kQcow2MaxBackingNameLength = 1023;
// Virtual sizes at or above this are refused (QEMU's own limit is lower).
inline constexpr uint64_t kQcow2MaxVirtualSize = uint64_t{1} << 62;

// Incompatible feature bits.
inline constexpr uint64_t kQcow2IncompatDirty = uint64_t{1} << 0;
inline constexpr uint64_t kQcow2IncompatCorrupt = uint64_t{1} << 1;
inline constexpr uint64_t kQcow2IncompatDataFile = uint64_t{1} << 2;
inline constexpr uint64_t kQcow2IncompatCompression = uint64_t{1} << 3;
inline constexpr uint64_t kQcow2IncompatExtendedL2 = uint64_t{1} << 4;
inline constexpr uint64_t kQcow2IncompatKnown = (uint64_t{1} << 5) - 1;

// Header extension types.
inline constexpr uint32_t kQcow2ExtEnd = 0;
inline constexpr uint32_t kQcow2ExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kQcow2ExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kQcow2ExtDataFile = 0x44415441;

enum class Qcow2Compression : uint8_t { kZlib = 0, kZstd = 1 };

struct Qcow2Header {
  // Fields as stored (big-endian on disk, host order here).
  uint32_t version = 0;
  uint64_t backing_file_offset = 0;
  uint32_t backing_file_size = 0;
  uint32_t cluster_bits = 0;
  uint64_t size = 0;
  uint32_t crypt_method = 0;
  uint32_t l1_size = 0;
  uint64_t l1_table_offset = 0;
  uint64_t refcount_table_offset = 0;
  uint32_t refcount_table_clusters = 0;
  uint32_t nb_snapshots = 0;
  uint64_t snapshots_offset = 0;
  uint64_t incompatible_features = 0;
  uint64_t compatible_features = 0;
  uint64_t autoclear_features = 0;
  uint32_t refcount_order = 4;
  uint32_t header_length = 72;
  Qcow2Compression compression = Qcow2Compression::kZlib;

  // From the rest of the first cluster.
  std::string backing_file;    // as stored; empty: no backing file
  std::string backing_format;  // backing format extension; empty: detect
  struct FeatureName {
    uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
    uint8_t bit = 0;
    std::string name;
  };
  std::vector<FeatureName> feature_names;

  // The size of the file the header was read from.
  uint64_t file_size = 0;

  uint64_t cluster_size() const { return uint64_t{1} << cluster_bits; }
  bool extended_l2() const { return (incompatible_features & kQcow2IncompatExtendedL2) != 0; }
  // Bytes of one L2 entry: 8, or 16 with extended L2 entries.
  uint32_t l2_entry_bits() const { return extended_l2() ? 4 : 3; }
  // log2 of the number of entries of an L2 table.
  uint32_t l2_bits() const { return cluster_bits - l2_entry_bits(); }
  // log2 of the guest bytes one L1 entry (one L2 table) maps.
  uint32_t l1_entry_shift() const { return cluster_bits + l2_bits(); }
  // L1 entries the virtual size needs (at most l1_size once validated).
  uint64_t l1_entries_needed() const;
};

// Reads and validates the header of the qcow2 image whose bytes `file` (its
// protocol driver: a local file, an NBD export, an HTTP resource) presents;
// file.path() names it in messages and file.size() is the file's size. Fails with EUCLEAN for a damaged image,
// EOPNOTSUPP for features this reader does not support, EINVAL when the file is not a qcow2 image at all.
Status ReadQcow2Header(BlockDriver& file, Qcow2Header* out);

// Opens the local file `path` and reads its header.
Status ReadQcow2HeaderFromPath(const std::string& path, Qcow2Header* out);

// Where the backing file named in the header of the image at `image_path`
// is: names are relative to the image's folder; "file:" prefixes are
// dropped; a URI of a supported protocol (image_location.h) is the name as
// it is (without any user information); other protocols (json:, ...) are
// refused.
//
// When `image_path` is itself a URI (a qcow2 on a server), a relative name
// resolves against the URI's folder (RFC 3986 style: its path up to the
// last '/', with "." and ".." segments removed; NBD URIs keep their query,
// which says how to reach the server, HTTP URIs drop theirs, which belongs
// to the one resource). An absolute path is refused: a server's image has
// no say over the files of the host that mounts it.
Status ResolveQcow2BackingPath(const std::string& image_path, const std::string& stored, std::string* out);

}  // namespace corfs::overlay
