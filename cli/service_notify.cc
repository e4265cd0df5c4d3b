#include "cli/service_notify.h"

#include <algorithm>

#include <systemd/sd-daemon.h>

namespace corfs::cli {

namespace {

// The environment stays as it is (unset_environment = 0): READY and
// STOPPING go to the same socket. A failure to notify is not the mount's
// failure: the manager's start timeout says it, and the mount keeps serving.
void Notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

// The protocol is one `KEY=value` per line: a status (a mountpoint in it)
// stays on its line.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

}  // namespace

void NotifyReady(const std::string& status) { Notify("READY=1\nSTATUS=" + OneLine(status)); }

void NotifyStopping(const std::string& status) { Notify("STOPPING=1\nSTATUS=" + OneLine(status)); }

}  // namespace corfs::cli
