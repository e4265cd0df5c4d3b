#pragma once
// Readiness for a service manager: systemd's Type=notify (the unit
// packaging/corfs@.service) starts what depends on a mount only once the
// mount says it is up. Outside such a manager (NOTIFY_SOCKET unset) every
// call does nothing, so `corfs mount` behaves the same from a terminal.
//
// Thread-safe: each call is one datagram on a socket of its own.

#include <string>

namespace corfs::cli {

// The mount serves files and its control socket listens.
void NotifyReady(const std::string& status);

// The mount is on its way down (jobs cancel, overlays commit, unmount).
void NotifyStopping(const std::string& status);

}  // namespace corfs::cli
