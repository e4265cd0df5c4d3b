#include "overlay/image_opener.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "common/file_id.h"
#include "common/file_io.h"
#include "common/unique_fd.h"
#include "overlay/fault_injection_driver.h"
#include "overlay/image_location.h"
#include "overlay/qcow2_driver.h"
#include "overlay/qcow2_header.h"
#include "overlay/raw_driver.h"
#include "overlay/remote/http_driver.h"
#include "overlay/remote/nbd_driver.h"

namespace corfs::overlay {

namespace {

std::string FormatOfMagic(const std::array<char, 8>& magic) {
  if (std::memcmp(magic.data(), "QFI\xfb", 4) == 0) return "qcow2";
  if (std::memcmp(magic.data(), "CORFSHDR", 8) == 0) return "corfs";
  return "raw";
}

}  // namespace

Status DetectFormat(const std::string& path, std::string* format) {
  return DetectFormat(path, RemoteProtocolOpener({}), format);
}

Status DetectFormat(const std::string& path, const ProtocolOpener& protocol, std::string* format) {
  if (IsUri(path)) {
    std::unique_ptr<BlockDriver> bytes;
    CORFS_RETURN_IF_ERROR(protocol(path, &bytes));
    return DetectFormat(*bytes, format);
  }
  UniqueFd fd;
  CORFS_RETURN_IF_ERROR(OpenDiskFile(path, O_RDONLY, &fd));
  std::array<char, 8> magic{};
  CORFS_RETURN_IF_ERROR(PreadFull(fd.get(), magic, 0, path));
  *format = FormatOfMagic(magic);
  return Status::Ok();
}

Status DetectFormat(BlockDriver& bytes, std::string* format) {
  std::array<char, 8> magic{};
  // Reads past an image's end read zeros, so a tiny image is raw.
  CORFS_RETURN_IF_ERROR(bytes.Read(0, magic));
  *format = FormatOfMagic(magic);
  return Status::Ok();
}

Status OpenProtocol(const std::string& name, const RemoteOptions& remote, std::unique_ptr<BlockDriver>* out) {
  Protocol protocol = Protocol::kFile;
  CORFS_RETURN_IF_ERROR(ParseProtocol(name, &protocol));
  switch (protocol) {
    case Protocol::kNbd: return OpenNbdImage(name, remote, out);
    case Protocol::kHttp: return OpenHttpImage(name, remote, out);
    case Protocol::kFile: break;
  }
  std::unique_ptr<RawDriver> raw;
  CORFS_RETURN_IF_ERROR(RawDriver::Open(name, /*writable=*/false, &raw));
  *out = std::move(raw);
  return Status::Ok();
}

ProtocolOpener RemoteProtocolOpener(RemoteOptions remote) {
  return [remote = std::move(remote)](const std::string& name, std::unique_ptr<BlockDriver>* out) {
    return OpenProtocol(name, remote, out);
  };
}

namespace {

// An image on a server: its protocol driver, and the format over it.
Status OpenRemoteImage(const std::string& name, const std::string& format, const ProtocolOpener& protocol,
                       std::unique_ptr<BlockDriver>* out) {
  std::unique_ptr<BlockDriver> bytes;
  CORFS_RETURN_IF_ERROR(protocol(name, &bytes));
  std::string actual = format;
  if (actual.empty() || actual == "auto") CORFS_RETURN_IF_ERROR(DetectFormat(*bytes, &actual));
  if (actual == "raw") {
    *out = std::move(bytes);
    return Status::Ok();
  }
  if (actual == "qcow2") {
    std::unique_ptr<Qcow2Driver> qcow2;
    CORFS_RETURN_IF_ERROR(Qcow2Driver::Open(std::move(bytes), Qcow2Driver::Options{}, &qcow2));
    *out = std::move(qcow2);
    return Status::Ok();
  }
  if (actual == "corfs") {
    return Status::Invalid(RedactCredentials(name) + " is a corfs metadata file, which is never a backing image");
  }
  return Status::Invalid(RedactCredentials(name) + ": image format '" + actual + "' over a server is not supported");
}

Status OpenImageWith(const std::string& path, const std::string& format, const ProtocolOpener& protocol,
                     std::unique_ptr<BlockDriver>* out);

}  // namespace

Status OpenImage(const std::string& path, const std::string& format, std::unique_ptr<BlockDriver>* out) {
  return OpenImageWith(path, format, RemoteProtocolOpener({}), out);
}

ImageOpener RemoteImageOpener(RemoteOptions remote) { return ImageOpenerOver(RemoteProtocolOpener(std::move(remote))); }

ImageOpener ImageOpenerOver(ProtocolOpener protocol) {
  return [protocol = std::move(protocol)](const std::string& path, const std::string& format,
                                          std::unique_ptr<BlockDriver>* out) {
    return OpenImageWith(path, format, protocol, out);
  };
}

bool KnownImageFormat(std::string_view format) {
  return format.empty() || format == "auto" || format == "raw" || format == "qcow2" || format == "blkdebug";
}

namespace {

Status OpenImageWith(const std::string& path, const std::string& format, const ProtocolOpener& protocol,
                     std::unique_ptr<BlockDriver>* out) {
  if (IsUri(path)) return OpenRemoteImage(path, format, protocol, out);
  std::string actual = format;
  if (actual.empty() || actual == "auto") CORFS_RETURN_IF_ERROR(DetectFormat(path, &actual));
  if (actual == "raw") {
    std::unique_ptr<RawDriver> raw;
    CORFS_RETURN_IF_ERROR(RawDriver::Open(path, /*writable=*/false, &raw));
    *out = std::move(raw);
    return Status::Ok();
  }
  if (actual == "qcow2") {
    std::unique_ptr<Qcow2Driver> qcow2;
    CORFS_RETURN_IF_ERROR(Qcow2Driver::Open(path, &qcow2));
    *out = std::move(qcow2);
    return Status::Ok();
  }
  if (actual == "blkdebug") return FaultInjectionDriver::Open(path, ImageOpenerOver(protocol), out);
  if (actual == "corfs") {
    return Status::Invalid(path + " is a corfs metadata file; name the overlay's data file instead");
  }
  return Status::Invalid(path + ": image format '" + actual + "' is not supported yet");
}

// What tells two names of one image apart from two images: a file by its
// device and inode, a URI by its name (a server's images have no inode
// here). Empty when the file cannot be stat'ed.
using ImageKey = std::optional<std::string>;

ImageKey KeyOf(const std::string& name) {
  if (IsUri(name)) return "uri:" + name;
  FileId id;
  if (!IdentifyFile(name, &id).ok()) return std::nullopt;
  return "file:" + std::to_string(id.device) + ":" + std::to_string(id.inode);
}

// The format of the image whose bytes `bytes` presents ("" = detect) and,
// for a qcow2 image, where its backing file is ("" = none).
Status ReadChainLink(BlockDriver& bytes, const std::string& format, std::string* actual, std::string* backing,
                     std::string* backing_format) {
  *actual = format;
  if (actual->empty()) CORFS_RETURN_IF_ERROR(DetectFormat(bytes, actual));
  backing->clear();
  if (*actual != "qcow2") return Status::Ok();
  Qcow2Header header;
  CORFS_RETURN_IF_ERROR(ReadQcow2Header(bytes, &header));
  if (header.backing_file.empty()) return Status::Ok();
  CORFS_RETURN_IF_ERROR(ResolveQcow2BackingPath(bytes.path(), header.backing_file, backing));
  *backing_format = header.backing_format;
  return Status::Ok();
}

}  // namespace

Status ExpandImageChain(const std::string& path, const std::string& format, std::vector<ImageSpec>* out) {
  return ExpandImageChain(path, format, RemoteProtocolOpener({}), out);
}

Status ExpandImageChain(const std::string& path, const std::string& format, const ProtocolOpener& protocol,
                        std::vector<ImageSpec>* out) {
  std::vector<ImageSpec> chain;
  std::vector<std::string> seen;
  std::string current = path;
  std::string current_format = format == "auto" ? "" : format;
  while (true) {
    const std::string what = chain.empty() ? current : "backing file " + current + " of " + chain.back().path;
    if (chain.size() >= kMaxChainLength) {
      return Status::Invalid("the backing chain of " + path + " is deeper than " + std::to_string(kMaxChainLength) +
                             " images (at " + what + ")");
    }
    if (!IsUri(current)) {
      FileId id;
      if (Status found = IdentifyFile(current, &id); !found.ok())
        return Status::Error(found.code(), what + ": " + std::strerror(found.code()));
    }
    const std::string key = *KeyOf(current);
    for (size_t i = 0; i < seen.size(); ++i) {
      if (seen[i] != key) continue;
      std::string loop;
      for (size_t j = i; j < chain.size(); ++j) loop += chain[j].path + " -> ";
      return Status::Invalid("the backing chain of " + path + " loops: " + loop + current);
    }
    seen.push_back(key);
    std::unique_ptr<BlockDriver> bytes;
    std::string actual, next, next_format;
    Status read = IsUri(current) ? protocol(current, &bytes) : OpenProtocol(current, RemoteOptions{}, &bytes);
    if (read.ok()) read = ReadChainLink(*bytes, current_format, &actual, &next, &next_format);
    if (!read.ok()) return chain.empty() ? read : read.WithContext(what);
    // The image a user named keeps the format as given; backing files get
    // the one they are opened as.
    chain.push_back({current, chain.empty() ? current_format : actual});
    if (next.empty()) break;
    current = std::move(next);
    current_format = std::move(next_format);
  }
  *out = std::move(chain);
  return Status::Ok();
}

Status ExpandImageList(const std::vector<ImageSpec>& listed, std::vector<ImageSpec>* out) {
  return ExpandImageList(listed, RemoteProtocolOpener({}), out);
}

Status ExpandImageList(const std::vector<ImageSpec>& listed, const ProtocolOpener& protocol,
                       std::vector<ImageSpec>* out) {
  struct Entry {
    ImageSpec image;
    bool listed = false;
    ImageKey id;
    std::string added_by;  // for an added backing file: the image that names it
  };
  std::vector<Entry> result;
  std::vector<Entry> tail;  // backing files of the last qcow2, not placed yet
  for (const ImageSpec& image : listed) {
    Entry entry{image, true, KeyOf(image.path), ""};
    if (!tail.empty()) {
      size_t keep = tail.size();
      if (entry.id) {
        for (size_t m = 0; m < tail.size(); ++m) {
          if (tail[m].id == entry.id) {
            keep = m;  // the user lists the chain from here on
            break;
          }
        }
      }
      result.insert(result.end(), tail.begin(), tail.begin() + static_cast<long>(keep));
      tail.clear();
    }
    std::string actual = image.format == "auto" ? "" : image.format;
    if (actual.empty() && !DetectFormat(image.path, protocol, &actual).ok()) actual.clear();  // the opener reports it
    result.push_back(entry);
    if (actual != "qcow2") continue;
    std::vector<ImageSpec> chain;
    CORFS_RETURN_IF_ERROR(ExpandImageChain(image.path, image.format, protocol, &chain));
    for (size_t i = 1; i < chain.size(); ++i) {
      tail.push_back({chain[i], false, KeyOf(chain[i].path), chain[i - 1].path});
    }
  }
  result.insert(result.end(), tail.begin(), tail.end());

  for (size_t j = 0; j < result.size(); ++j) {
    if (!result[j].id) continue;
    if (result[j].listed) {  // listed twice under two names (`-b a -b ./a`)
      for (size_t i = 0; i < j; ++i) {
        if (result[i].listed && result[i].id == result[j].id) {
          return Status::Invalid("backing image '" + result[j].image.path + "' is '" + result[i].image.path +
                                 "' again; an image may appear once in a chain");
        }
      }
      continue;
    }
    for (size_t i = 0; i < result.size(); ++i) {
      if (i == j || result[i].id != result[j].id) continue;
      return Status::Invalid(result[j].image.path + ", the backing file of " + result[j].added_by + ", is also " +
                             (result[i].listed ? "listed" : "the backing file of " + result[i].added_by) +
                             " in the same chain; an image may appear once in a chain");
    }
  }
  if (result.size() > kMaxChainLength && result.size() > listed.size()) {
    return Status::Invalid("the backing chain has " + std::to_string(result.size()) +
                           " images with the backing files of its qcow2 images, more than " +
                           std::to_string(kMaxChainLength));
  }
  out->clear();
  for (Entry& entry : result) out->push_back(std::move(entry.image));
  return Status::Ok();
}

Status OpenImageChain(const std::string& path, const std::string& format,
                      std::vector<std::unique_ptr<BlockDriver>>* out) {
  std::vector<ImageSpec> chain;
  CORFS_RETURN_IF_ERROR(ExpandImageChain(path, format, &chain));
  std::vector<std::unique_ptr<BlockDriver>> drivers;
  for (const ImageSpec& image : chain) {
    std::unique_ptr<BlockDriver> driver;
    Status opened = OpenImage(image.path, image.format, &driver);
    if (!opened.ok()) return image.path == path ? opened : opened.WithContext("backing file " + image.path);
    drivers.push_back(std::move(driver));
  }
  *out = std::move(drivers);
  return Status::Ok();
}

}  // namespace corfs::overlay
