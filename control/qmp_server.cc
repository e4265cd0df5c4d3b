#include "control/qmp_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "common/json_text.h"
#include "control/version.h"

namespace corfs::control {

struct QmpServer::Client {
  UniqueFd fd;
  std::string in;
  std::string out;
  bool negotiated = false;
  bool skipping_long_line = false;
  // The client has stopped sending (shutdown(SHUT_WR), or `socat` once its
  // input ends) but may still read: the replies to what it sent are owed,
  // and the loop closes the connection once they are written.
  bool eof = false;
};

namespace {

// Bytes that are not UTF-8 (a backing file or image named in Latin-1, say)
// are sent as U+FFFD: dump() would otherwise throw, and a throw on the poll
// thread (or the job thread publishing an event) would abort the daemon and
// leave a stale mount.
std::string Line(const nlohmann::json& message) {
  return message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

nlohmann::json ErrorMessage(const QmpError& error, const nlohmann::json* id) {
  nlohmann::json message = {{"error", {{"class", error.error_class}, {"desc", error.desc}}}};
  if (id != nullptr) message["id"] = *id;
  return message;
}

nlohmann::json Timestamp() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  return {{"seconds", us / 1000000}, {"microseconds", us % 1000000}};
}

// Binds a listening Unix socket at `path`, replacing a stale one.
Status Listen(const std::string& path, UniqueFd* out) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return Status::Invalid("control socket path " + path + " is too long (at most " +
                           std::to_string(sizeof addr.sun_path - 1) + " bytes)");
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::Error(EEXIST, path + " exists and is not a socket");
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Status::Error(EADDRINUSE, "control socket " + path + " is in use (is another corfs running?)");
    }
    ::unlink(path.c_str());  // stale: its daemon is gone
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Status::FromErrno("socket");
  // Only the mounting user may steer the mount: the socket is made 0600
  // from the start (umask), not chmod-ed after a window of wider access.
  mode_t old_umask = ::umask(0177);
  int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old_umask);
  if (bound != 0) return Status::FromErrno("bind control socket " + path);
  if (::listen(fd.get(), 16) != 0) return Status::FromErrno("listen on " + path);
  *out = std::move(fd);
  return Status::Ok();
}

}  // namespace

QmpServer::QmpServer(std::string socket_path, const CommandTable& commands, const QmpServerOptions& options)
    : socket_path_(std::move(socket_path)), commands_(commands), options_(options) {}

Status QmpServer::Start(const std::string& socket_path, const CommandTable& commands, EventBus& events,
                        const QmpServerOptions& options, std::unique_ptr<QmpServer>* out) {
  std::unique_ptr<QmpServer> server(new QmpServer(socket_path, commands, options));
  CORFS_RETURN_IF_ERROR(Listen(socket_path, &server->listen_fd_));
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) server->bound_inode_ = st.st_ino;
  server->wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->wake_fd_.valid()) return Status::FromErrno("eventfd");
  QmpServer* self = server.get();
  server->subscription_ = events.Subscribe([self](const Event& event) {
    nlohmann::json message = {{"event", event.name}, {"data", event.data}, {"timestamp", Timestamp()}};
    {
      std::lock_guard lock(self->pending_mutex_);
      self->pending_events_.push_back(Line(message));
    }
    self->Wake();
  });
  server->thread_ = std::thread([self] { self->Loop(); });
  *out = std::move(server);
  return Status::Ok();
}

QmpServer::~QmpServer() {
  subscription_.reset();
  {
    std::lock_guard lock(pending_mutex_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  // Only a socket this server bound is removed: a server that failed to
  // start because another corfs holds the path must leave that one alone,
  // or the running mount would be cut off its control.
  struct stat st {};
  if (bound_inode_ != 0 && ::lstat(socket_path_.c_str(), &st) == 0 && st.st_ino == bound_inode_) {
    ::unlink(socket_path_.c_str());
  }
}

void QmpServer::Wake() {
  uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void QmpServer::Loop() {
  std::vector<pollfd> fds;
  while (true) {
    fds.clear();
    fds.push_back({wake_fd_.get(), POLLIN, 0});
    fds.push_back({listen_fd_.get(), POLLIN, 0});
    for (auto& client : clients_) {
      short events = client->eof ? 0 : POLLIN;  // nothing more to read after EOF
      if (!client->out.empty()) events |= POLLOUT;
      fds.push_back({client->fd.get(), events, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;

    if (fds[0].revents & POLLIN) {
      uint64_t count;
      (void)!::read(wake_fd_.get(), &count, sizeof count);
      std::lock_guard lock(pending_mutex_);
      if (stopping_) break;
    }
    DeliverEvents();
    if (fds[1].revents & POLLIN) Accept();
    // Clients accepted just now have no pollfd yet: only the first n polled.
    const size_t polled = fds.size() - 2;
    std::vector<bool> gone(clients_.size(), false);
    for (size_t i = 0; i < polled; ++i) {
      const short revents = fds[i + 2].revents;
      Client& client = *clients_[i];
      if (revents & (POLLIN | POLLHUP | POLLERR)) gone[i] = !Receive(client);
    }
    for (size_t i = 0; i < clients_.size(); ++i) {
      if (!gone[i] && !clients_[i]->out.empty()) gone[i] = !Send(*clients_[i]);
      if (!gone[i] && clients_[i]->out.size() > options_.max_backlog) gone[i] = true;  // not reading
      if (!gone[i] && clients_[i]->eof && clients_[i]->out.empty()) gone[i] = true;    // all answered
    }
    for (size_t i = clients_.size(); i-- > 0;) {
      if (gone[i]) clients_.erase(clients_.begin() + static_cast<long>(i));
    }
  }
  clients_.clear();
}

void QmpServer::Accept() {
  while (true) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    auto client = std::make_unique<Client>();
    client->fd.reset(fd);
    client->out = Line(Greeting());
    clients_.push_back(std::move(client));
  }
}

bool QmpServer::Receive(Client& client) {
  // One read per client per round of the poll loop: a client that keeps
  // its socket full (a flood of commands) gets its turn like the others
  // instead of holding the loop, and its backlog of replies is checked
  // between turns. Poll reports the rest of its input next round.
  char buf[16384];
  ssize_t n;
  do {
    n = ::recv(client.fd.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  if (n == 0) {
    // The client is not dropped yet: the replies to the commands that came
    // with its EOF (`printf ... | socat - UNIX-CONNECT:...`) are owed, and
    // the loop writes them before closing (see Client::eof).
    client.eof = true;
    return true;
  }
  auto refuse_long_line = [&] {
    client.out += Line(ErrorMessage(
        {"GenericError", "command line longer than " + std::to_string(options_.max_line) + " bytes refused"}, nullptr));
  };
  client.in.append(buf, static_cast<size_t>(n));
  size_t newline;
  while ((newline = client.in.find('\n')) != std::string::npos) {
    std::string line = client.in.substr(0, newline);
    client.in.erase(0, newline + 1);
    if (client.skipping_long_line) {
      client.skipping_long_line = false;  // the end of the refused line
      continue;
    }
    if (line.size() > options_.max_line) {
      refuse_long_line();
      continue;
    }
    HandleLine(client, line);
  }
  if (client.in.size() > options_.max_line) {
    if (!client.skipping_long_line) refuse_long_line();
    client.skipping_long_line = true;
    client.in.clear();
  }
  return true;
}

namespace {

// qmp_capabilities: the greeting offers no capability (QEMU's `oob` is not
// spoken here), so `enable` may only name none, as QEMU answers a client
// that asks for one it did not offer.
QmpResult NegotiateCapabilities(const nlohmann::json& arguments) {
  QmpError error;
  if (!Arguments(arguments).OnlyKnown({"enable"}, &error)) return Failed(error);
  if (!arguments.contains("enable")) return QmpResult::Ok();
  const nlohmann::json& enable = arguments["enable"];
  if (!enable.is_array()) return QmpResult::Generic("Invalid parameter type for 'enable', expected: array");
  if (enable.empty()) return QmpResult::Ok();
  if (!enable[0].is_string()) return QmpResult::Generic("Invalid parameter type for 'enable[0]', expected: string");
  return QmpResult::Generic("Capability '" + enable[0].get<std::string>() + "' not available");
}

}  // namespace

void QmpServer::HandleLine(Client& client, const std::string& line) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return;
  nlohmann::json request;
  switch (ParseJsonText(line, &request)) {
    case JsonText::kOk: break;
    case JsonText::kInvalid: client.out += Line(ErrorMessage({"GenericError", "JSON parse error"}, nullptr)); return;
    case JsonText::kTooDeep:
      client.out += Line(ErrorMessage({"GenericError", "JSON nesting depth limit exceeded"}, nullptr));
      return;
  }
  if (!request.is_object()) {
    client.out += Line(ErrorMessage({"GenericError", "QMP input must be a JSON object"}, nullptr));
    return;
  }
  const nlohmann::json* id = request.contains("id") ? &request["id"] : nullptr;
  auto reply_error = [&](const QmpError& error) { client.out += Line(ErrorMessage(error, id)); };
  for (const auto& [key, value] : request.items()) {
    if (key != "execute" && key != "arguments" && key != "id") {
      return reply_error({"GenericError", "QMP input member '" + key + "' is unexpected"});
    }
  }
  if (!request.contains("execute") || !request["execute"].is_string()) {
    return reply_error({"GenericError", "QMP input lacks member 'execute'"});
  }
  const std::string command = request["execute"].get<std::string>();
  nlohmann::json arguments = request.value("arguments", nlohmann::json::object());
  if (!arguments.is_object()) return reply_error({"GenericError", "QMP input member 'arguments' must be an object"});

  QmpResult result;
  if (command == "qmp_capabilities") {
    if (client.negotiated) {
      result = QmpResult::Error("CommandNotFound", "Capabilities negotiation is already complete, command ignored");
    } else {
      result = NegotiateCapabilities(arguments);
      client.negotiated = !result.error.has_value();
    }
  } else if (!client.negotiated) {
    result = QmpResult::Error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'");
  } else if (const QmpHandler* handler = commands_.Find(command)) {
    result = (*handler)(arguments);
  } else {
    result = QmpResult::Error("CommandNotFound", "The command " + command + " has not been found");
  }

  if (result.error) return reply_error(*result.error);
  nlohmann::json reply = {{"return", result.value}};
  if (id != nullptr) reply["id"] = *id;
  client.out += Line(reply);
}

bool QmpServer::Send(Client& client) {
  while (!client.out.empty()) {
    ssize_t n = ::send(client.fd.get(), client.out.data(), client.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    client.out.erase(0, static_cast<size_t>(n));
  }
  return true;
}

void QmpServer::DeliverEvents() {
  std::vector<std::string> events;
  {
    std::lock_guard lock(pending_mutex_);
    events.swap(pending_events_);
  }
  for (const std::string& event : events) {
    for (auto& client : clients_) {
      if (client->negotiated) client->out += event;  // QMP: events only after negotiation
    }
  }
}

}  // namespace corfs::control
