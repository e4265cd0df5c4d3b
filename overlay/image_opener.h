#pragma once
// Opening backing images: picks the block driver for a file by its format
// name, or by its first bytes when the format is not given.
//
// The overlay takes an ImageOpener instead of calling OpenImage directly, so
// tests can slip a counting, slow or failing driver under a real overlay.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "overlay/block_driver.h"
#include "overlay/image_spec.h"
#include "overlay/remote/remote_options.h"

namespace corfs::overlay {

// Opens `path` read-only as `format` ("" or "auto" = detect).
using ImageOpener =
    std::function<Status(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out)>;

// The real opener: raw files, block devices and qcow2 images (read-only;
// a qcow2 image alone, without its backing file: see OpenImageChain).
// `path` may be a URI (image_location.h): then the bytes come from a
// protocol driver (NBD, HTTP), and the format reads through it. OpenImage
// talks to servers with RemoteOptions' defaults.
Status OpenImage(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out);

// The same opener, talking to servers with `remote`: the opener of a mount.
ImageOpener RemoteImageOpener(RemoteOptions remote);

// The protocol driver of `name`: the bytes of a file (a raw driver), an NBD
// export or an HTTP resource, before any format is applied.
Status OpenProtocol(const std::string& name, const RemoteOptions& remote, std::unique_ptr<BlockDriver>* out);

// Opens the protocol driver of a URI: OpenProtocol with a mount's
// RemoteOptions, or, in tests, a fake server (a driver over memory).
using ProtocolOpener = std::function<Status(const std::string& name, std::unique_ptr<BlockDriver>* out)>;
ProtocolOpener RemoteProtocolOpener(RemoteOptions remote);
// The real opener with the URIs' bytes from `protocol` (local files are
// opened as files); RemoteImageOpener(r) is ImageOpenerOver(RemoteProtocolOpener(r)).
ImageOpener ImageOpenerOver(ProtocolOpener protocol);

// Whether OpenImage reads images of `format`: raw, qcow2 and blkdebug (a
// fault-injecting wrapper, fault_injection_driver.h); "" and "auto" detect.
bool KnownImageFormat(std::string_view format);

// Reads the first bytes of `path` and names its format ("raw", "qcow2", "corfs").
Status DetectFormat(const std::string& path, std::string* format);
Status DetectFormat(const std::string& path, const ProtocolOpener& protocol, std::string* format);
// The same for bytes a protocol driver presents.
Status DetectFormat(BlockDriver& bytes, std::string* format);

// ---------------------------------------------------------------------------
// Backing chains of qcow2 images

// The chain that the image at `path` stands for, top first: the image
// itself, then, if it is a qcow2 image with a backing file, that file
// (relative names are relative to the image's folder; its format from the
// backing format extension, else detected), and so on. A loop (the same
// file, by device and inode, twice; the same URI, by name) or a chain
// deeper than kMaxChainLength is refused.
//
// Each image's header is read through its protocol driver, so a qcow2 on a
// server is followed as a local one is (ResolveQcow2BackingPath: a relative
// backing name is on the same server; an absolute path is refused). URIs
// are opened with `protocol` (without it: RemoteOptions' defaults).
Status ExpandImageChain(const std::string& path, const std::string& format, std::vector<ImageSpec>* out);
Status ExpandImageChain(const std::string& path, const std::string& format, const ProtocolOpener& protocol,
                        std::vector<ImageSpec>* out);

// A chain as a user lists it (YAML, `corfs create --backing`), with the
// backing files of its qcow2 images added: each qcow2's own backing images
// come right after it, down to the next image the user lists, unless the
// user lists them there (then the list is followed as written from that
// image on). Images whose format is not qcow2, and files that cannot be
// read (their opener reports that), are kept as listed. A file that would
// appear twice is refused: listed twice under two names, or because of an
// added backing file.
Status ExpandImageList(const std::vector<ImageSpec>& listed, std::vector<ImageSpec>* out);
Status ExpandImageList(const std::vector<ImageSpec>& listed, const ProtocolOpener& protocol,
                       std::vector<ImageSpec>* out);

// Opens the chain of `path` (ExpandImageChain) with OpenImage, top first.
Status OpenImageChain(const std::string& path, const std::string& format,
                      std::vector<std::unique_ptr<BlockDriver>>* out);

}  // namespace corfs::overlay
