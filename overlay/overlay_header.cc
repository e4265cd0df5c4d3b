#include "overlay/overlay_header.h"

#include <xxhash.h>

#include <cstring>

#include "common/file_io.h"
#include "overlay/image_location.h"

namespace corfs::overlay {

namespace {

constexpr char kMagic[8] = {'C', 'O', 'R', 'F', 'S', 'H', 'D', 'R'};
constexpr size_t kPrefixSize = 8 + 4 + 4 + 8;  // magic, version, length, checksum
constexpr size_t kMaxPathLength = 4096;
constexpr uint32_t kImageHasStamp = 1u << 0;
constexpr uint32_t kImageHasContentHash = 1u << 1;
constexpr uint32_t kFileHasOwner = 1u << 0;
constexpr uint32_t kFileHasMode = 1u << 1;
constexpr uint32_t kFileHasStreamWish = 1u << 2;
constexpr uint32_t kFilePartialData = 1u << 3;
constexpr uint32_t kFileFlags = kFileHasOwner | kFileHasMode | kFileHasStreamWish | kFilePartialData;
constexpr size_t kMaxPolicyLength = 16;
constexpr size_t kMaxVersionTagLength = 1024;
constexpr uint32_t kModeBits = 07777;

class Writer {
 public:
  template <typename T>
  void Int(T value) {
    for (size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
  }
  void String(const std::string& s) {
    Int<uint16_t>(static_cast<uint16_t>(s.size()));
    out_.append(s);
  }
  std::string& bytes() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  template <typename T>
  bool Int(T* value) {
    if (in_.size() < sizeof(T)) return false;
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<unsigned char>(in_[i])) << (8 * i);
    in_.remove_prefix(sizeof(T));
    *value = v;
    return true;
  }
  bool String(std::string* s) {
    uint16_t length = 0;
    if (!Int(&length) || in_.size() < length) return false;
    s->assign(in_.substr(0, length));
    in_.remove_prefix(length);
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

uint64_t Checksum(std::string_view version_and_payload) {
  return XXH3_64bits(version_and_payload.data(), version_and_payload.size());
}

void EncodeVersion2Fields(const ImageIdentity& identity, Writer* out) {
  const FileStamp stamp = identity.stamp.value_or(FileStamp{});
  const ContentHash content = identity.content.value_or(ContentHash{});
  out->Int<uint32_t>((identity.stamp ? kImageHasStamp : 0) | (identity.content ? kImageHasContentHash : 0));
  out->Int<uint64_t>(stamp.device);
  out->Int<uint64_t>(stamp.inode);
  out->Int<uint64_t>(static_cast<uint64_t>(stamp.mtime_ns));
  out->Int<uint64_t>(content.low);
  out->Int<uint64_t>(content.high);
}

Status DecodeVersion2Fields(Reader& in, ImageIdentity* identity) {
  uint32_t flags = 0;
  FileStamp stamp;
  uint64_t mtime = 0;
  ContentHash content;
  if (!(in.Int(&flags) && in.Int(&stamp.device) && in.Int(&stamp.inode) && in.Int(&mtime) && in.Int(&content.low) &&
        in.Int(&content.high))) {
    return Status::Corrupt("header fields do not match their length");
  }
  if ((flags & ~(kImageHasStamp | kImageHasContentHash)) != 0) {
    return Status::Corrupt("unknown backing image flags " + std::to_string(flags));
  }
  stamp.mtime_ns = static_cast<int64_t>(mtime);
  if ((flags & kImageHasStamp) != 0) {
    identity->stamp = stamp;
  } else if (stamp != FileStamp{}) {
    return Status::Corrupt("a file stamp is stored without its flag");
  }
  if ((flags & kImageHasContentHash) != 0) {
    identity->content = content;
  } else if (content != ContentHash{}) {
    return Status::Corrupt("a content hash is stored without its flag");
  }
  return Status::Ok();
}

void EncodeVersion3Fields(const OverlayHeader& header, Writer* out) {
  const FileOwner owner = header.owner.value_or(FileOwner{});
  const StreamWish wish = header.stream_wish.value_or(StreamWish{0, ""});
  out->Int<uint32_t>((header.owner ? kFileHasOwner : 0) | (header.mode ? kFileHasMode : 0) |
                     (header.stream_wish ? kFileHasStreamWish : 0) | (header.partial_data_file ? kFilePartialData : 0));
  out->Int<uint32_t>(owner.uid);
  out->Int<uint32_t>(owner.gid);
  out->Int<uint32_t>(header.mode.value_or(0));
  out->Int<uint64_t>(wish.speed);
  out->String(wish.on_error);
}

Status DecodeVersion3Fields(Reader& in, OverlayHeader* header) {
  uint32_t flags = 0, mode = 0;
  FileOwner owner;
  StreamWish wish;
  if (!(in.Int(&flags) && in.Int(&owner.uid) && in.Int(&owner.gid) && in.Int(&mode) && in.Int(&wish.speed) &&
        in.String(&wish.on_error))) {
    return Status::Corrupt("header fields do not match their length");
  }
  if ((flags & ~kFileFlags) != 0) return Status::Corrupt("unknown file flags " + std::to_string(flags));
  if ((flags & kFileHasOwner) != 0) {
    header->owner = owner;
  } else if (owner != FileOwner{}) {
    return Status::Corrupt("an owner is stored without its flag");
  }
  if ((flags & kFileHasMode) != 0) {
    header->mode = mode;
  } else if (mode != 0) {
    return Status::Corrupt("a mode is stored without its flag");
  }
  if ((flags & kFileHasStreamWish) != 0) {
    header->stream_wish = std::move(wish);
  } else if (wish.speed != 0 || !wish.on_error.empty()) {
    return Status::Corrupt("a stream wish is stored without its flag");
  }
  header->partial_data_file = (flags & kFilePartialData) != 0;
  return Status::Ok();
}

}  // namespace

Status OverlayHeader::Validate() const {
  if (version < kOldestHeaderVersion || version > kLatestHeaderVersion) {
    return Status::Invalid("header version " + std::to_string(version) + " is not one this corfs writes");
  }
  if (cluster_bits < kMinClusterBits || cluster_bits > kMaxClusterBits) {
    return Status::Invalid("cluster size 2^" + std::to_string(cluster_bits) + " is outside 4 KiB .. 2 MiB");
  }
  if (virtual_size == 0) return Status::Invalid("virtual size is zero");
  if (virtual_size > kMaxVirtualSize) return Status::Invalid("virtual size is larger than 1 EiB");
  if (chain.size() > kMaxChainLength) {
    return Status::Invalid("backing chain has " + std::to_string(chain.size()) + " images (at most " +
                           std::to_string(kMaxChainLength) + ")");
  }
  if (standalone && !chain.empty()) return Status::Invalid("a standalone overlay lists a backing chain");
  if (version < kFileAttributesVersion && (owner || mode || stream_wish || partial_data_file)) {
    return Status::Invalid("a version " + std::to_string(version) +
                           " header cannot record an owner, a mode, a stream wish or a partial data file");
  }
  if (mode && (*mode & ~kModeBits) != 0)
    return Status::Invalid("mode " + std::to_string(*mode) + " has bits past 07777");
  if (stream_wish) {
    const std::string& policy = stream_wish->on_error;
    if (policy.empty() || policy.size() > kMaxPolicyLength) return Status::Invalid("stream wish policy is invalid");
  }
  for (const BackingImage& image : chain) {
    const ImageSpec& spec = image.spec;
    if (spec.path.empty() || spec.path.size() > kMaxPathLength) {
      return Status::Invalid("backing path length is invalid");
    }
    if (spec.path.find('\0') != std::string::npos) return Status::Invalid("backing path contains a NUL byte");
    if (spec.format.empty() || spec.format.size() > 16) return Status::Invalid("backing format name is invalid");
    if (version < 2 && (image.identity.stamp || image.identity.content)) {
      return Status::Invalid("a version 1 header cannot record a backing image's file stamp or content hash");
    }
    const std::string& tag = image.identity.version_tag;
    if (version < kVersionTagVersion && !tag.empty()) {
      return Status::Invalid("a version " + std::to_string(version) +
                             " header cannot record a backing image's version tag");
    }
    if (tag.size() > kMaxVersionTagLength || tag.find('\0') != std::string::npos) {
      return Status::Invalid("a backing image's version tag is longer than " + std::to_string(kMaxVersionTagLength) +
                             " bytes or holds a NUL byte");
    }
  }
  return Status::Ok();
}

Status EncodeHeaderSlot(const OverlayHeader& header, std::string* slot) {
  CORFS_RETURN_IF_ERROR(header.Validate());
  Writer payload;
  payload.Int<uint64_t>(header.sequence);
  payload.Int<uint64_t>(header.virtual_size);
  payload.Int<uint32_t>(header.cluster_bits);
  payload.Int<uint32_t>(header.standalone ? 1 : 0);
  payload.Int<uint32_t>(static_cast<uint32_t>(header.chain.size()));
  for (const BackingImage& image : header.chain) {
    payload.String(image.spec.path);
    payload.String(image.spec.format);
    payload.Int<uint64_t>(image.identity.size);
    payload.Int<uint64_t>(image.identity.fingerprint);
    if (header.version >= 2) EncodeVersion2Fields(image.identity, &payload);
    if (header.version >= kVersionTagVersion) payload.String(image.identity.version_tag);
  }
  if (header.version >= kFileAttributesVersion) EncodeVersion3Fields(header, &payload);
  if (payload.bytes().size() + kPrefixSize > kHeaderSlotSize) {
    return Status::Invalid("the backing chain's paths are too long to fit the overlay header");
  }
  Writer summed;  // version | length | payload: what the checksum covers
  summed.Int<uint32_t>(header.version);
  summed.Int<uint32_t>(static_cast<uint32_t>(payload.bytes().size()));
  summed.bytes().append(payload.bytes());

  Writer out;
  out.bytes().append(kMagic, sizeof kMagic);
  out.bytes().append(summed.bytes(), 0, 8);
  out.Int<uint64_t>(Checksum(summed.bytes()));
  out.bytes().append(payload.bytes());
  out.bytes().resize(kHeaderSlotSize, '\0');
  *slot = std::move(out.bytes());
  return Status::Ok();
}

Status DecodeHeaderSlot(std::string_view slot, OverlayHeader* out) {
  if (slot.size() < kPrefixSize || std::memcmp(slot.data(), kMagic, sizeof kMagic) != 0) {
    return Status::Corrupt("bad magic (not a corfs overlay metadata file)");
  }
  Reader prefix(slot.substr(8));
  uint32_t version = 0, length = 0;
  uint64_t checksum = 0;
  prefix.Int(&version);
  prefix.Int(&length);
  prefix.Int(&checksum);
  if (length > slot.size() - kPrefixSize)
    return Status::Corrupt("header length " + std::to_string(length) + " is past the slot");
  std::string summed(slot.substr(8, 8));
  summed.append(slot.substr(kPrefixSize, length));
  if (Checksum(summed) != checksum) return Status::Corrupt("bad header checksum");
  if (version < kOldestHeaderVersion || version > kLatestHeaderVersion) {
    return Status::Corrupt("unsupported header version " + std::to_string(version) + " (this corfs reads versions " +
                           std::to_string(kOldestHeaderVersion) + " to " + std::to_string(kLatestHeaderVersion) +
                           "; a newer corfs made this overlay)");
  }

  Reader payload(slot.substr(kPrefixSize, length));
  OverlayHeader header;
  header.version = version;
  uint32_t flags = 0, chain_length = 0;
  bool ok = payload.Int(&header.sequence) && payload.Int(&header.virtual_size) && payload.Int(&header.cluster_bits) &&
            payload.Int(&flags) && payload.Int(&chain_length);
  if (ok && chain_length > kMaxChainLength)
    return Status::Corrupt("backing chain length " + std::to_string(chain_length) + " is too large");
  for (uint32_t i = 0; ok && i < chain_length; ++i) {
    BackingImage image;
    ok = payload.String(&image.spec.path) && payload.String(&image.spec.format) && payload.Int(&image.identity.size) &&
         payload.Int(&image.identity.fingerprint);
    if (ok && version >= 2) {
      Status fields = DecodeVersion2Fields(payload, &image.identity);
      if (!fields.ok()) return fields.WithContext("backing image " + std::to_string(i + 1));
    }
    if (ok && version >= kVersionTagVersion) ok = payload.String(&image.identity.version_tag);
    // corfs records a URI without its user information; one a hand-edited
    // header holds is dropped here, so no message or `info` shows it.
    image.spec.path = RedactCredentials(image.spec.path);
    header.chain.push_back(std::move(image));
  }
  if (ok && version >= kFileAttributesVersion) CORFS_RETURN_IF_ERROR(DecodeVersion3Fields(payload, &header));
  if (!ok || !payload.empty()) return Status::Corrupt("header fields do not match their length");
  if ((flags & ~1u) != 0) return Status::Corrupt("unknown header flags " + std::to_string(flags));
  header.standalone = (flags & 1u) != 0;
  Status valid = header.Validate();
  if (!valid.ok()) return Status::Corrupt("invalid header: " + valid.message());
  *out = std::move(header);
  return Status::Ok();
}

Status ReadHeaderSlots(int fd, const std::string& path, HeaderSlots* out) {
  std::string bytes(kBitmapOffset, '\0');
  CORFS_RETURN_IF_ERROR(PreadFull(fd, bytes, 0, path));
  for (int i = 0; i < 2; ++i) {
    std::string_view slot = std::string_view(bytes).substr(i * kHeaderSlotSize, kHeaderSlotSize);
    out->slot_status[i] = DecodeHeaderSlot(slot, &out->slot_header[i]);
    if (out->slot_status[i].ok() && out->slot_header[i].sequence % 2 != static_cast<uint64_t>(i)) {
      out->slot_status[i] = Status::Corrupt("sequence " + std::to_string(out->slot_header[i].sequence) +
                                            " does not belong in slot " + std::to_string(i));
    }
  }
  out->active = -1;
  for (int i = 0; i < 2; ++i) {
    if (!out->slot_status[i].ok()) continue;
    if (out->active < 0 || out->slot_header[i].sequence > out->slot_header[out->active].sequence) out->active = i;
  }
  return Status::Ok();
}

Status ReadHeader(int fd, const std::string& path, OverlayHeader* out) {
  HeaderSlots slots;
  CORFS_RETURN_IF_ERROR(ReadHeaderSlots(fd, path, &slots));
  if (slots.active < 0) {
    // Both slots are bad; the first slot's reason is the telling one (bad
    // magic means "not an overlay at all").
    return Status::Corrupt(path + ": " + slots.slot_status[0].message() +
                           (slots.slot_status[1].message() != slots.slot_status[0].message()
                                ? "; second header slot: " + slots.slot_status[1].message()
                                : ""));
  }
  *out = slots.slot_header[slots.active];
  return Status::Ok();
}

Status WriteHeaderSlot(int fd, const std::string& path, const OverlayHeader& header) {
  std::string slot;
  CORFS_RETURN_IF_ERROR(EncodeHeaderSlot(header, &slot));
  CORFS_RETURN_IF_ERROR(PwriteFull(fd, slot, (header.sequence % 2) * kHeaderSlotSize, path));
  return SyncData(fd, path);
}

}  // namespace corfs::overlay
