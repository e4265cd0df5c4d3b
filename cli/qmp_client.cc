#include "cli/qmp_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "cli/socket_path.h"
#include "common/json_text.h"

namespace corfs::cli {

Status ResolveSocket(const std::string& socket, const std::string& mountpoint, std::string* out) {
  if (!socket.empty()) {
    *out = socket;
  } else if (!mountpoint.empty()) {
    *out = DefaultSocketPath(mountpoint);
  } else if (const char* env = std::getenv("CORFS_SOCKET"); env != nullptr && *env != '\0') {
    *out = env;
  } else {
    return Status::Invalid("which mount? give --mountpoint DIR or --socket PATH (or set CORFS_SOCKET)");
  }
  return Status::Ok();
}

Status ConnectToMount(const std::string& socket, const std::string& mountpoint, QmpClient* client) {
  std::string path;
  CORFS_RETURN_IF_ERROR(ResolveSocket(socket, mountpoint, &path));
  return QmpClient::Connect(path, client);
}

Status QmpClient::Connect(const std::string& socket_path, QmpClient* out) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) return Status::Invalid("socket path too long: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status::FromErrno("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::FromErrno("connect to " + socket_path + " (is the mount running?)");
  }
  out->socket_path_ = socket_path;
  out->fd_ = std::move(fd);
  std::optional<nlohmann::json> greeting;
  CORFS_RETURN_IF_ERROR(out->ReadMessage(std::chrono::seconds(10), &greeting));
  if (!greeting || !greeting->contains("QMP")) return Status::Error(EPROTO, socket_path + " did not greet as QMP");
  nlohmann::json ignored;
  return out->Execute("qmp_capabilities", nlohmann::json::object(), &ignored);
}

Status QmpClient::ReadMessage(std::chrono::milliseconds timeout, std::optional<nlohmann::json>* message) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      nlohmann::json parsed;
      if (ParseJsonText(line, &parsed) != JsonText::kOk) {
        return Status::Error(EPROTO, "unreadable reply from " + socket_path_);
      }
      *message = std::move(parsed);
      return Status::Ok();
    }
    int wait_ms = -1;
    if (timeout.count() >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        message->reset();
        return Status::Ok();
      }
      wait_ms = static_cast<int>(left.count());
    }
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("poll");
    }
    if (ready == 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read from " + socket_path_);
    }
    if (n == 0) return Status::Error(ECONNRESET, "the mount closed the control socket (unmounted?)");
    buffer_.append(buf, static_cast<size_t>(n));
  }
}

Status QmpClient::Execute(const std::string& command, const nlohmann::json& arguments, nlohmann::json* result) {
  const uint64_t id = next_id_++;
  last_error_ = nullptr;
  nlohmann::json request = {{"execute", command}, {"id", id}};
  if (!arguments.empty()) request["arguments"] = arguments;
  const std::string line = request.dump() + "\n";
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::send(fd_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write to " + socket_path_);
    }
    sent += static_cast<size_t>(n);
  }
  while (true) {
    std::optional<nlohmann::json> message;
    CORFS_RETURN_IF_ERROR(ReadMessage(std::chrono::milliseconds(-1), &message));
    if (message->contains("event")) {
      events_.push_back(std::move(*message));
      continue;
    }
    if (message->contains("error")) {
      last_error_ = (*message)["error"];
      return Status::Error(EINVAL, last_error_.value("desc", std::string("error")));
    }
    *result = message->value("return", nlohmann::json::object());
    return Status::Ok();
  }
}

Status QmpClient::NextEvent(std::chrono::milliseconds timeout, std::optional<nlohmann::json>* event) {
  if (!events_.empty()) {
    *event = std::move(events_.front());
    events_.pop_front();
    return Status::Ok();
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (timeout.count() >= 0 && left.count() <= 0) {
      event->reset();
      return Status::Ok();
    }
    std::optional<nlohmann::json> message;
    CORFS_RETURN_IF_ERROR(ReadMessage(timeout.count() < 0 ? timeout : left, &message));
    if (!message) {
      event->reset();
      return Status::Ok();
    }
    if (message->contains("event")) {
      *event = std::move(*message);
      return Status::Ok();
    }
  }
}

}  // namespace corfs::cli
