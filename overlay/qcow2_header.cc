#include "overlay/qcow2_header.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "common/hex.h"
#include "overlay/image_location.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

namespace {

uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

uint64_t Be64(const unsigned char* p) { return (uint64_t{Be32(p)} << 32) | Be32(p + 4); }

// The bits of `bits` as "bit 5 ('name'), bit 9", with names from the
// feature name table where it has them.
std::string DescribeFeatureBits(const Qcow2Header& header, uint8_t type, uint64_t bits) {
  std::string text;
  for (uint32_t bit = 0; bit < 64; ++bit) {
    if ((bits & (uint64_t{1} << bit)) == 0) continue;
    if (!text.empty()) text += ", ";
    text += "bit " + std::to_string(bit);
    for (const Qcow2Header::FeatureName& feature : header.feature_names) {
      if (feature.type == type && feature.bit == bit && !feature.name.empty()) {
        text += " ('" + feature.name + "')";
        break;
      }
    }
  }
  return text;
}

// A string from the image, for a message: printable ASCII only.
std::string Printable(std::string_view raw) {
  std::string out;
  for (char c : raw) {
    if (c == '\0') break;
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

bool ValidFormatName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

// Parses the header extensions in `area` (the bytes after the header).
Status ParseExtensions(std::span<const unsigned char> area, const std::string& path, Qcow2Header* h) {
  size_t pos = 0;
  bool seen_backing_format = false;
  bool seen_features = false;
  while (area.size() - pos >= 8) {
    const uint32_t type = Be32(area.data() + pos);
    const uint32_t length = Be32(area.data() + pos + 4);
    pos += 8;
    if (type == kQcow2ExtEnd) return Status::Ok();
    if (length > area.size() - pos) {
      return Status::Corrupt(path + ": qcow2 header extension " + Hex(type) + " of " + std::to_string(length) +
                             " bytes runs past the end of the header area");
    }
    std::span<const unsigned char> data = area.subspan(pos, length);
    switch (type) {
      case kQcow2ExtBackingFormat: {
        if (seen_backing_format) return Status::Corrupt(path + ": two backing format header extensions");
        seen_backing_format = true;
        std::string name(reinterpret_cast<const char*>(data.data()), data.size());
        if (!ValidFormatName(name)) {
          return Status::Corrupt(path + ": backing format extension holds '" + Printable(name) +
                                 "', which is not a format name");
        }
        h->backing_format = name;
        break;
      }
      case kQcow2ExtFeatureTable: {
        if (seen_features) return Status::Corrupt(path + ": two feature name table header extensions");
        seen_features = true;
        // 48-byte entries; a partial entry at the end is ignored.
        for (size_t at = 0; at + 48 <= data.size(); at += 48) {
          Qcow2Header::FeatureName feature;
          feature.type = data[at];
          feature.bit = data[at + 1];
          feature.name = Printable(std::string_view(reinterpret_cast<const char*>(data.data() + at + 2), 46));
          if (feature.bit < 64) h->feature_names.push_back(std::move(feature));
        }
        break;
      }
      default: break;  // external data file name, bitmaps, encryption, unknown: nothing to read here
    }
    // Padding to a multiple of 8; the padding of the last extension may be cut by the area's end.
    const size_t padded = (static_cast<size_t>(length) + 7) & ~size_t{7};
    pos += std::min(padded, area.size() - pos);
  }
  return Status::Ok();
}

// The first bytes of the file: the fixed header of either version.
using RawHeader = std::array<unsigned char, 112>;

// The compression type field (v3, byte 104 when the header has it), checked
// against the compression type feature bit.
Status ReadCompressionType(const RawHeader& raw, const std::string& path, Qcow2Header* h) {
  uint8_t compression_type = h->header_length > 104 ? raw[104] : 0;
  if (h->incompatible_features & kQcow2IncompatCompression) {
    if (compression_type == 0) {
      return Status::Corrupt(path +
                             ": the compression type feature bit is set, but the compression_type "
                             "field is missing or zero");
    }
  } else if (compression_type != 0) {
    return Status::Corrupt(path + ": compression_type " + std::to_string(compression_type) +
                           " without the compression type feature bit");
  }
  if (compression_type > 1) {
    return Status::Error(EOPNOTSUPP, path + ": qcow2 compression type " + std::to_string(compression_type) +
                                         " is not supported (only zlib and zstd)");
  }
  h->compression = static_cast<Qcow2Compression>(compression_type);
  return Status::Ok();
}

// The fields only version 3 has: feature bits, refcount order, header
// length and compression type.
Status ReadV3Fields(const RawHeader& raw, const std::string& path, Qcow2Header* h) {
  if (h->file_size < 104) {
    return Status::Corrupt(path + ": qcow2 v3 image truncated: the file has " + std::to_string(h->file_size) +
                           " bytes, less than a v3 header");
  }
  h->incompatible_features = Be64(raw.data() + 72);
  h->compatible_features = Be64(raw.data() + 80);
  h->autoclear_features = Be64(raw.data() + 88);
  h->refcount_order = Be32(raw.data() + 96);
  h->header_length = Be32(raw.data() + 100);
  const uint64_t cluster_size = h->cluster_size();
  if (h->header_length < 104 || h->header_length % 8 != 0 || h->header_length > cluster_size ||
      h->header_length > h->file_size) {
    return Status::Corrupt(path + ": qcow2 header_length " + std::to_string(h->header_length) +
                           " is not a multiple of 8 between 104 and the cluster size (" + std::to_string(cluster_size) +
                           ") inside the file");
  }
  return ReadCompressionType(raw, path, h);
}

// The magic, the version and the fields both versions have, then those of
// version 3. `h->file_size` is known.
Status ReadFixedFields(BlockDriver& file, const std::string& path, Qcow2Header* h) {
  const uint64_t file_size = h->file_size;
  RawHeader raw{};
  if (file_size < 4) return Status::Invalid(path + " is not a qcow2 image (shorter than its magic)");
  CORFS_RETURN_IF_ERROR(file.Read(0, std::span<char>(reinterpret_cast<char*>(raw.data()), raw.size())));
  if (Be32(raw.data()) != kQcow2Magic) return Status::Invalid(path + " is not a qcow2 image (wrong magic)");
  if (file_size < 72) {
    return Status::Corrupt(path + ": qcow2 image truncated: the file has " + std::to_string(file_size) +
                           " bytes, less than a header");
  }
  h->version = Be32(raw.data() + 4);
  if (h->version != 2 && h->version != 3) {
    return Status::Error(EOPNOTSUPP, path + ": qcow2 version " + std::to_string(h->version) +
                                         " is not supported (only versions 2 and 3)");
  }
  h->backing_file_offset = Be64(raw.data() + 8);
  h->backing_file_size = Be32(raw.data() + 16);
  h->cluster_bits = Be32(raw.data() + 20);
  h->size = Be64(raw.data() + 24);
  h->crypt_method = Be32(raw.data() + 32);
  h->l1_size = Be32(raw.data() + 36);
  h->l1_table_offset = Be64(raw.data() + 40);
  h->refcount_table_offset = Be64(raw.data() + 48);
  h->refcount_table_clusters = Be32(raw.data() + 56);
  h->nb_snapshots = Be32(raw.data() + 60);
  h->snapshots_offset = Be64(raw.data() + 64);

  if (h->cluster_bits < kQcow2MinClusterBits || h->cluster_bits > kQcow2MaxClusterBits) {
    return Status::Corrupt(path + ": qcow2 cluster_bits " + std::to_string(h->cluster_bits) + " is outside " +
                           std::to_string(kQcow2MinClusterBits) + ".." + std::to_string(kQcow2MaxClusterBits));
  }
  if (h->version >= 3) return ReadV3Fields(raw, path, h);
  h->header_length = 72;
  return Status::Ok();
}

Status CheckNotEncrypted(const Qcow2Header& h, const std::string& path) {
  if (h.crypt_method == 0) return Status::Ok();
  std::string method = h.crypt_method == 1   ? "AES"
                       : h.crypt_method == 2 ? "LUKS"
                                             : "method " + std::to_string(h.crypt_method);
  return Status::Error(EOPNOTSUPP, path + ": encrypted qcow2 images (" + method + ") are not supported");
}

// The header extensions: after the header, up to the end of the first
// cluster or the backing file name, whichever comes first.
Status ReadExtensions(BlockDriver& file, const std::string& path, Qcow2Header* h) {
  uint64_t area_end = std::min(h->cluster_size(), h->file_size);
  if (h->backing_file_offset > h->header_length && h->backing_file_offset < area_end) {
    area_end = h->backing_file_offset;
  }
  if (area_end <= h->header_length) return Status::Ok();
  std::vector<unsigned char> area(area_end - h->header_length);
  CORFS_RETURN_IF_ERROR(file.Read(h->header_length,
                                  std::span<char>(reinterpret_cast<char*>(area.data()), area.size())));
  return ParseExtensions(area, path, h);
}

// The incompatible features this reader cannot follow. Checked after the
// extensions so that unknown bits are named from the feature name table.
Status CheckFeatures(const Qcow2Header& h, const std::string& path) {
  const uint64_t unknown = h.incompatible_features & ~kQcow2IncompatKnown;
  if (unknown != 0) {
    return Status::Error(EOPNOTSUPP, path + ": unknown incompatible qcow2 feature " +
                                         DescribeFeatureBits(h, 0, unknown) + "; the image cannot be read safely");
  }
  if (h.incompatible_features & kQcow2IncompatDataFile) {
    return Status::Error(EOPNOTSUPP, path + ": qcow2 images with an external data file are not supported");
  }
  if (h.extended_l2() && h.cluster_bits < 14) {
    return Status::Corrupt(path + ": extended L2 entries need clusters of at least 16 KiB, the image has " +
                           std::to_string(h.cluster_size()) + " bytes");
  }
  return Status::Ok();
}

// The virtual size and the bounds of the L1 table: large enough for the
// size, at most 32 MiB, cluster-aligned and inside the file.
Status CheckL1Table(const Qcow2Header& h, const std::string& path) {
  if (h.size >= kQcow2MaxVirtualSize) {
    return Status::Corrupt(path + ": qcow2 virtual size " + std::to_string(h.size) + " is too large");
  }
  if (uint64_t{h.l1_size} * 8 > kQcow2MaxL1Bytes) {
    return Status::Corrupt(path + ": qcow2 L1 table of " + std::to_string(h.l1_size) +
                           " entries is larger than 32 MiB");
  }
  const uint64_t needed = h.l1_entries_needed();
  if (needed > h.l1_size) {
    return Status::Corrupt(path + ": qcow2 L1 table has " + std::to_string(h.l1_size) + " entries, the virtual size " +
                           std::to_string(h.size) + " needs " + std::to_string(needed));
  }
  if (h.l1_size == 0) return Status::Ok();
  if (h.l1_table_offset == 0 || h.l1_table_offset % h.cluster_size() != 0) {
    return Status::Corrupt(path + ": qcow2 L1 table offset " + Hex(h.l1_table_offset) +
                           " is not a cluster boundary after the header");
  }
  if (h.l1_table_offset > h.file_size || uint64_t{h.l1_size} * 8 > h.file_size - h.l1_table_offset) {
    return Status::Corrupt(path + ": qcow2 L1 table (" + std::to_string(h.l1_size) + " entries at " +
                           Hex(h.l1_table_offset) + ") runs past the end of the file (" + std::to_string(h.file_size) +
                           " bytes); the image is truncated or damaged");
  }
  return Status::Ok();
}

// The backing file name, when the header gives one: bounded, inside the
// file, without NUL bytes.
Status ReadBackingName(BlockDriver& file, const std::string& path, Qcow2Header* h) {
  if (h->backing_file_offset == 0 || h->backing_file_size == 0) return Status::Ok();
  if (h->backing_file_size > kQcow2MaxBackingNameLength) {
    return Status::Corrupt(path + ": qcow2 backing file name of " + std::to_string(h->backing_file_size) +
                           " bytes is longer than 1023");
  }
  if (h->backing_file_offset > h->file_size || h->backing_file_size > h->file_size - h->backing_file_offset) {
    return Status::Corrupt(path + ": qcow2 backing file name at " + Hex(h->backing_file_offset) +
                           " runs past the end of the file");
  }
  std::string name(h->backing_file_size, '\0');
  CORFS_RETURN_IF_ERROR(file.Read(h->backing_file_offset, name));
  if (name.find('\0') != std::string::npos) {
    return Status::Corrupt(path + ": qcow2 backing file name '" + Printable(name) + "' holds a NUL byte");
  }
  h->backing_file = std::move(name);
  return Status::Ok();
}

}  // namespace

uint64_t Qcow2Header::l1_entries_needed() const {
  const uint32_t shift = l1_entry_shift();
  return (size >> shift) + ((size & ((uint64_t{1} << shift) - 1)) != 0 ? 1 : 0);
}

Status ReadQcow2Header(BlockDriver& file, Qcow2Header* out) {
  const std::string& path = file.path();
  Qcow2Header h;
  h.file_size = file.size();
  CORFS_RETURN_IF_ERROR(ReadFixedFields(file, path, &h));
  CORFS_RETURN_IF_ERROR(CheckNotEncrypted(h, path));
  CORFS_RETURN_IF_ERROR(ReadExtensions(file, path, &h));
  CORFS_RETURN_IF_ERROR(CheckFeatures(h, path));
  CORFS_RETURN_IF_ERROR(CheckL1Table(h, path));
  CORFS_RETURN_IF_ERROR(ReadBackingName(file, path, &h));
  *out = std::move(h);
  return Status::Ok();
}

Status ReadQcow2HeaderFromPath(const std::string& path, Qcow2Header* out) {
  std::unique_ptr<RawDriver> file;
  CORFS_RETURN_IF_ERROR(RawDriver::Open(path, /*writable=*/false, &file));
  return ReadQcow2Header(*file, out);
}

namespace {

// `relative` resolved against the folder of the URI `base` (see the header).
Status ResolveAgainstUri(const std::string& base, const std::string& relative, std::string* out) {
  const size_t authority = base.find("://") + 3;
  const size_t path_start = std::min(base.find_first_of("/?#", authority), base.size());
  const size_t path_end = std::min(base.find_first_of("?#", path_start), base.size());
  const std::string path = base.substr(path_start, path_end - path_start);
  Protocol protocol = Protocol::kFile;
  CORFS_RETURN_IF_ERROR(ParseProtocol(base, &protocol));
  const std::string query = protocol == Protocol::kNbd ? base.substr(path_end) : "";
  const size_t slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "/" : path.substr(0, slash + 1);
  std::string joined = std::filesystem::path(folder + relative).lexically_normal().generic_string();
  if (joined.empty() || joined[0] != '/') joined.insert(0, "/");
  *out = base.substr(0, path_start) + joined + query;
  return Status::Ok();
}

}  // namespace

Status ResolveQcow2BackingPath(const std::string& image_path, const std::string& stored, std::string* out) {
  std::string name = stored;
  if (IsUri(name)) {
    Protocol protocol = Protocol::kFile;
    Status parsed = ParseProtocol(name, &protocol);
    if (!parsed.ok()) return parsed.WithContext(image_path + ": backing file");
    *out = RedactCredentials(name);
    return Status::Ok();
  }
  // "proto:rest" with no '/' before the ':' names a protocol in QEMU.
  const size_t colon = name.find(':');
  if (colon != std::string::npos && name.find('/') > colon) {
    const std::string protocol = name.substr(0, colon);
    if (protocol != "file") {
      return Status::Error(EOPNOTSUPP, image_path + ": backing file '" + Printable(RedactCredentials(stored)) +
                                           "' uses protocol '" + Printable(protocol) +
                                           "', which is not supported (local files, nbd, http and https URIs)");
    }
    name = name.substr(colon + 1);
  }
  if (name.empty()) return Status::Corrupt(image_path + ": the backing file name is empty");
  std::filesystem::path p(name);
  if (IsUri(image_path)) {
    if (p.is_absolute()) {
      return Status::Error(EPERM, image_path + ": backing file '" + Printable(name) +
                                      "' is an absolute path; an image on a server may name a backing file on the "
                                      "same server (a relative name) or a URI, never a file of this host");
    }
    return ResolveAgainstUri(image_path, name, out);
  }
  if (p.is_absolute()) {
    *out = p.lexically_normal().string();
  } else {
    *out = (std::filesystem::path(image_path).parent_path() / p).lexically_normal().string();
  }
  return Status::Ok();
}

}  // namespace corfs::overlay
