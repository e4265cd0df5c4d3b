#pragma once
// QmpServer: the control socket of a mount, speaking QEMU's QMP dialect.
//
//   <- {"QMP": {"version": {...}, "capabilities": []}}
//   -> {"execute": "qmp_capabilities"}
//   <- {"return": {}}
//   -> {"execute": "query-block-jobs", "id": 7}
//   <- {"return": [...], "id": 7}
//   <- {"event": "BLOCK_JOB_COMPLETED", "data": {...}, "timestamp": {...}}
//
// One thread polls the listening socket and every client. Commands run on
// that thread (they are all quick: a stream only starts a job). Events are
// queued by whatever thread publishes them and written by the poll thread,
// so a client that stops reading never blocks a job; one whose backlog grows
// past a limit is disconnected. A line longer than the limit is refused
// with an error and skipped; the connection stays usable.

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/event_bus.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "control/qmp_command.h"

namespace corfs::control {

struct QmpServerOptions {
  size_t max_line = 64 * 1024;
  size_t max_backlog = 16 << 20;
};

class QmpServer {
 public:
  // Listens on `socket_path` (mode 0600). A stale socket left by a killed
  // daemon is replaced; a live one is an error.
  static Status Start(const std::string& socket_path, const CommandTable& commands, EventBus& events,
                      const QmpServerOptions& options, std::unique_ptr<QmpServer>* out);
  ~QmpServer();  // disconnects everyone and removes the socket
  QmpServer(const QmpServer&) = delete;
  QmpServer& operator=(const QmpServer&) = delete;

  const std::string& socket_path() const { return socket_path_; }

 private:
  struct Client;

  QmpServer(std::string socket_path, const CommandTable& commands, const QmpServerOptions& options);

  void Loop();
  void Wake();
  void Accept();
  // Reads what the client sent; false when it is gone.
  bool Receive(Client& client);
  void HandleLine(Client& client, const std::string& line);
  // Writes what is pending; false when the client is gone.
  bool Send(Client& client);
  void DeliverEvents();

  const std::string socket_path_;
  const CommandTable& commands_;
  const QmpServerOptions options_;
  UniqueFd listen_fd_;
  ino_t bound_inode_ = 0;  // the socket file this server made (0: none)
  UniqueFd wake_fd_;       // eventfd: events queued, or stop

  std::mutex pending_mutex_;
  std::vector<std::string> pending_events_;  // serialized lines
  bool stopping_ = false;

  std::vector<std::unique_ptr<Client>> clients_;  // poll thread only
  EventBus::Subscription subscription_;
  std::thread thread_;
};

}  // namespace corfs::control
