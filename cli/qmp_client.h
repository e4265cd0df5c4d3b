#pragma once
// QmpClient: the client side of a mount's control socket, for the CLI.
// Connects, reads the greeting, negotiates, then runs commands; events that
// arrive while waiting for a reply are kept for NextEvent.

#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace corfs::cli {

class QmpClient {
 public:
  static Status Connect(const std::string& socket_path, QmpClient* out);

  // Runs `command`; the "return" value goes to *result. A QMP error becomes
  // a failed Status with the error's description only: its class
  // ("GenericError") means something to programs, not to people, so it is
  // kept in last_error() for --json output.
  Status Execute(const std::string& command, const nlohmann::json& arguments, nlohmann::json* result);

  // The "error" object of the last Execute's reply ({"class", "desc"}), or
  // null when it succeeded or failed before a reply.
  const nlohmann::json& last_error() const { return last_error_; }

  // The next event, waiting up to `timeout`; nullopt on timeout.
  Status NextEvent(std::chrono::milliseconds timeout, std::optional<nlohmann::json>* event);

 private:
  // Reads one JSON line, waiting up to `timeout` (negative: forever).
  Status ReadMessage(std::chrono::milliseconds timeout, std::optional<nlohmann::json>* message);

  std::string socket_path_;
  UniqueFd fd_;
  std::string buffer_;
  std::deque<nlohmann::json> events_;
  uint64_t next_id_ = 1;
  nlohmann::json last_error_;
};

// Where the control socket of a mount is: --socket if given, else beside
// the mountpoint. Fails with advice when neither is given.
Status ResolveSocket(const std::string& socket, const std::string& mountpoint, std::string* out);

// Connects `client` to the control socket of a mount (ResolveSocket).
Status ConnectToMount(const std::string& socket, const std::string& mountpoint, QmpClient* client);

}  // namespace corfs::cli
