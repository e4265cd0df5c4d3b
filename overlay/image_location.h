#pragma once
// Where an image's bytes are: a local file, or a server named by a URI.
//
// A name with a scheme ("nbd://host/export", "nbd+unix:///export?socket=S",
// "http://...", "https://...") is a URI, never a path: it is not made
// absolute, normalised, stat'ed or compared by device and inode. Everything
// else is a path. The split is QEMU's protocol / format split: the protocol
// says where the bytes are (this file), the format how they are laid out
// (raw, qcow2: image_opener.h), and a format reads its bytes through a
// protocol driver.
//
// A URI may carry credentials (user:password@). They are for connecting
// only: what corfs records or shows (the overlay header, logs, events,
// `corfs info`) is RedactCredentials(name).

#include <string>
#include <string_view>

#include "common/status.h"

namespace corfs::overlay {

enum class Protocol { kFile, kNbd, kHttp };

// True when `name` starts with a URI scheme followed by ':' and "//"
// ("scheme://..."), so it is not a path. A path that merely holds a colon
// ("a:b/c.img") is a path.
bool IsUri(std::string_view name);

// The protocol of `name`: kFile for a path; kNbd for nbd, nbds, nbd+unix,
// nbds+unix; kHttp for http and https. Another scheme is refused, naming it.
Status ParseProtocol(std::string_view name, Protocol* out);

// `name` without the user information of its authority ("user:pw@"), the
// form that may be recorded and shown. Paths are returned as they are.
std::string RedactCredentials(std::string_view name);

// The user information of a URI, percent-decoded ("us%40r:p%3Ass@" gives
// user "us@r", password "p:ss"); `has` is false when the URI has none.
struct UriUserInfo {
  bool has = false;
  std::string user;
  std::string password;
};
UriUserInfo UserInfoOf(std::string_view name);

}  // namespace corfs::overlay
