#pragma once
// ImageSpec: an image as a user names it (YAML, `corfs create --backing`,
// a qcow2 backing file): where it is and how it is laid out. It is the one
// type for "which image" across the layers; the overlay header records a
// BackingImage (a spec and the image's identity), and an opened image is a
// BlockDriver, a layer of a BackingChain.

#include <cstddef>
#include <string>

namespace corfs::overlay {

struct ImageSpec {
  std::string path;
  std::string format;  // "raw", "qcow2", ...; "" (or "auto") = detect from the first bytes

  bool operator==(const ImageSpec&) const = default;
};

// A backing chain (a user's list with the backing files of its qcow2
// images, or an overlay's recorded chain) holds at most this many images.
inline constexpr size_t kMaxChainLength = 64;

}  // namespace corfs::overlay
