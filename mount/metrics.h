#pragma once
// Metrics of a mount for Prometheus, in its text exposition format (version
// 0.0.4, what node_exporter's textfile collector reads): a snapshot of the
// images (sizes, I/O counters, copy-on-read) and the jobs, and its text.
//
// The names: corfs_image_* with an `image` label, corfs_job_* with `job`,
// `image` and `type` labels, counters ending in _total, sizes in bytes and
// times in seconds, as Prometheus' naming conventions ask.
//
// Plain values and functions; any thread.

#include <cstdint>
#include <string>
#include <vector>

#include "mount/image_table.h"
#include "mount/io_stats.h"

namespace corfs::mount {

struct ImageMetrics {
  std::string name;
  uint64_t virtual_bytes = 0;
  uint64_t local_bytes = 0;  // what the overlay holds
  bool standalone = false;   // the overlay needs no backing image any more
  IoCounts io[kIoKindCount];
  uint64_t cor_faults = 0;
  uint64_t cor_bytes = 0;
};

// The jobs layer is above this one: the mount fills these from its jobs.
struct JobMetrics {
  std::string id;
  std::string image;
  std::string type;
  std::string state;  // QMP's: running, paused, ...
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t speed = 0;  // 0 = unlimited
  double rate = 0;     // bytes per second
  bool stopped_on_error = false;
};

struct MetricsSnapshot {
  bool up = true;  // false in the last snapshot, written at unmount
  std::vector<ImageMetrics> images;
  std::vector<JobMetrics> jobs;
};

// The images of `table` as they are now.
std::vector<ImageMetrics> CollectImageMetrics(const ImageTable& table);

// The snapshot in the text exposition format: # HELP and # TYPE, then the
// samples of each metric.
std::string FormatMetrics(const MetricsSnapshot& snapshot);

}  // namespace corfs::mount
