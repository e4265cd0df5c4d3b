#pragma once
// The mount-wide `remote:` settings of a YAML file (how corfs talks to the
// servers that hold backing images) and where credentials come from.
//
//   remote:
//     connect_timeout: 10     # seconds (or 500ms, 1m)
//     request_timeout: 30
//     retries: 5
//     connections: 4          # parallel connections per image
//     credentials: creds.netrc  # a netrc file, mode 0600 or stricter
//     ca_file: ca.pem         # a CA bundle for HTTPS, besides the system's
//
// Credentials never become part of a name: a URI written with user
// information (https://user:pw@host/x) is split into its redacted name and
// RemoteOptions::uri_credentials; when `credentials:` is absent the
// environment variable CORFS_CREDENTIALS names the netrc file. The drivers
// (overlay/remote/) only read RemoteOptions; nothing below config/ and cli/
// looks at the environment.

#include <string>

#include "common/status.h"
#include "config/yaml_reader.h"
#include "overlay/remote/remote_options.h"

namespace corfs::config {

inline constexpr const char* kCredentialsEnvironment = "CORFS_CREDENTIALS";

// Reads the `remote:` map into `out` (which keeps its defaults for keys not
// given). Returns false when something was wrong (reported to `diag`).
bool ReadRemote(const Field& field, const std::string& base_dir, Diagnostics& diag, overlay::RemoteOptions* out);

// A credentials file must be a regular file no one but its owner may read
// or write (mode 0600 or stricter): a netrc file others can read has leaked
// its passwords already.
Status CheckCredentialsFile(const std::string& path);

// When `out` names no credentials file, the one CORFS_CREDENTIALS names (made
// absolute against the current folder), checked; nothing when it is unset.
Status ApplyCredentialsEnvironment(overlay::RemoteOptions* out);

// Splits the user information off `name` when it is a URI: returns the
// redacted name and records the credentials under it in `out`. Fails when
// the same redacted URI was given other credentials before.
Status TakeUriCredentials(const std::string& name, overlay::RemoteOptions* out, std::string* redacted);

}  // namespace corfs::config
