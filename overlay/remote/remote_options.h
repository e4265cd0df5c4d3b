#pragma once
// RemoteOptions: how corfs talks to a server that holds a backing image
// (NBD, HTTP): timeouts, retries, parallel connections and where the
// credentials come from. One value per mount (the YAML file's `remote:`
// settings); the protocol drivers copy what they need at open.

#include <chrono>
#include <map>
#include <string>

namespace corfs::overlay {

struct RemoteOptions {
  // Connecting (TCP, TLS, the NBD handshake) may take this long.
  std::chrono::milliseconds connect_timeout{10'000};
  // One request (a read, a block-status query) may take this long before
  // it counts as a transient failure.
  std::chrono::milliseconds request_timeout{30'000};
  // Transient failures (a reset connection, a server restarting, HTTP 5xx
  // and 429, a timeout) are retried this many times, reconnecting, with a
  // back-off that starts at `backoff` and doubles up to `max_backoff`.
  unsigned retries = 5;
  std::chrono::milliseconds backoff{200};
  std::chrono::milliseconds max_backoff{5'000};
  // Parallel connections to one server per image (NBD: used only when the
  // server allows multi-conn; HTTP: always), so a stream keeps the link full.
  unsigned connections = 4;
  // Credentials written in a URI of the YAML file (user:password@), keyed
  // by the URI without them (RedactCredentials), which is the only form of
  // the name the rest of corfs sees.
  struct Credentials {
    std::string user;
    std::string password;
  };
  std::map<std::string, Credentials> uri_credentials;
  // A netrc file (mode 0600 or stricter) with credentials by host, for URIs
  // without their own; "" = none. The YAML file names it, else the
  // environment (CORFS_CREDENTIALS); the cli resolves that, not the drivers.
  std::string credentials_file;
  // A CA bundle to verify HTTPS servers with, besides the system's; TLS
  // verification is always on.
  std::string ca_file;
};

}  // namespace corfs::overlay
