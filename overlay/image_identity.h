#pragma once
// The identity of a backing image: what the overlay header records about
// each image of its chain, so an overlay opened over a different or changed
// template is refused (or, where corfs cannot tell, warned about) instead of
// silently mixing two disks.
//
// - size and a sampled fingerprint, always: XXH3 over a fixed set of 4 KiB
//   samples spread over the image and its first and last 64 KiB (partition
//   tables, superblocks, backup headers). Cheap at every open, but blind to a
//   rewrite between its samples.
// - the file's stamp (header version 2 on): its modification time, device
//   and inode when the overlay was made. Only the mtime decides: every
//   write through the file system moves it, while `cp -p`, `rsync -a`, `mv`,
//   chmod and chown keep it. ctime is not recorded because chmod, chown and
//   every move or copy change it (a warning that fires on harmless moves is
//   soon ignored); device and inode change on any copy or restore and are
//   kept only to say in a message whether the file was replaced.
// - the content hash (content_hash.h), when the overlay was made with
//   `--verify-backing full`.
// - the version tag (header version 4 on) of an image on a server that
//   gives one (BlockDriver::version_tag: HTTP's ETag or Last-Modified). An
//   image on a server has no file stamp (a URI is never stat'ed); an NBD
//   export has no tag either, so its size and sampled fingerprint decide.
//
// Verification (VerifyIdentity): a size or fingerprint that differs refuses,
// and so does a version tag of the same kind (ETag, Last-Modified) that
// differs. A tag that is gone, or of another kind, is a warning: the server
// changed how it names versions, which says nothing of the content.
// With VerifyBacking::kFull the content hash is computed and must match. A
// changed mtime re-verifies the content hash when the overlay has one, and
// is otherwise a warning: the content may have changed where corfs did not
// look.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "overlay/block_driver.h"
#include "overlay/content_hash.h"

namespace corfs::overlay {

// How much of a backing image is verified when an overlay is opened.
enum class VerifyBacking {
  kSampled,  // size, sampled fingerprint, and the mtime (see above)
  kFull,     // the above and the content hash, which the overlay must have
};

inline constexpr std::string_view kVerifyBackingNames[] = {"sampled", "full"};  // by VerifyBacking value
std::string_view VerifyBackingName(VerifyBacking mode);
bool ParseVerifyBacking(std::string_view name, VerifyBacking* out);

// What stat() tells of a backing image's file.
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;  // since the epoch

  bool operator==(const FileStamp&) const = default;
};

struct ImageIdentity {
  uint64_t size = 0;
  uint64_t fingerprint = 0;
  std::optional<FileStamp> stamp;      // absent in overlays of header version 1
  std::optional<ContentHash> content;  // present when made with --verify-backing full
  std::string version_tag;             // header version 4 on; "" when the image has none

  bool operator==(const ImageIdentity&) const = default;
  bool SameSamples(const ImageIdentity& other) const { return size == other.size && fingerprint == other.fingerprint; }
  std::string ToString() const;  // "size 1073741824, fingerprint 1234..."
};

// Size, sampled fingerprint, file stamp and version tag of `image` (its
// identity source); no content hash. The stamp is left out when the image
// is not a local file (a URI) or cannot be stat'ed.
Status ComputeIdentity(BlockDriver& image, ImageIdentity* out);

// Checks `image` (opened from `path`) against the identity `recorded` for
// it under `recorded_path` (as the header names it). Fails, naming both, when
// corfs can tell it is another image; sets `*warning` (else leaves it
// empty) when it may have changed and corfs cannot tell.
Status VerifyIdentity(BlockDriver& image, const std::string& path, const ImageIdentity& recorded,
                      const std::string& recorded_path, VerifyBacking mode, std::string* warning);

}  // namespace corfs::overlay
