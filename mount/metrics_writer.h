#pragma once
// MetricsWriter: keeps a Prometheus text file (mount/metrics.h) up to date
// for node_exporter's textfile collector, which reads every `*.prom` file
// of its folder whenever it is scraped. Each write goes to PATH.tmp, is
// synced, then renamed over PATH, so a scrape reads a whole old file or a
// whole new one, never a half-written one (and never the temporary file:
// it does not end in .prom).
//
// Threading: one thread of its own writes every `interval`; Stop and the
// last Write come from the owner's thread. A failed write
// is logged and tried again at the next interval (the folder may be full
// or gone for a while).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/status.h"
#include "mount/metrics.h"

namespace corfs::mount {

class MetricsWriter {
 public:
  using Collect = std::function<MetricsSnapshot()>;

  // Writes the first file (a path that cannot be written fails here, before
  // the mount goes on), then starts the thread. `collect` is called on the
  // writer's thread.
  static Status Start(const std::string& path, std::chrono::milliseconds interval, Collect collect,
                      std::shared_ptr<spdlog::logger> log, std::unique_ptr<MetricsWriter>* out);
  ~MetricsWriter();

  // Ends the thread (before what `collect` reads goes away); idempotent.
  void Stop();
  // Writes one snapshot whole (the last one, at unmount, after Stop).
  Status Write(const MetricsSnapshot& snapshot) const;

  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

 private:
  MetricsWriter(std::string path, std::chrono::milliseconds interval, Collect collect,
                std::shared_ptr<spdlog::logger> log);
  void Loop();

  const std::string path_;
  const std::chrono::milliseconds interval_;
  const Collect collect_;
  const std::shared_ptr<spdlog::logger> log_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: started once the rest is set
};

}  // namespace corfs::mount
