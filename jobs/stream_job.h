#pragma once
// StreamJob: copies what an overlay lacks from its backing chain, in the
// manner of QEMU's block/stream.c, so the overlay becomes standalone.
//
// Modes:
//   whole  every cluster; at the end the backing link is dropped;
//   range  [offset, offset+length) only; the job reports where the next
//          range should start, so a management tool can pace it;
//   base   only what the images above `base` hold; at the end `base`
//          becomes the overlay's backing image (the chain is shortened).
// Allocation status is asked in whole runs, so what the overlay holds
// already and what no image holds are skipped without reading them. Copies
// go through the overlay's claim path, exactly as a guest read's
// copy-on-read does, so a stream never races a guest write.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "jobs/job.h"
#include "jobs/worker_pool.h"
#include "overlay/overlay.h"

namespace corfs::jobs {

struct StreamOptions {
  std::string job_id;               // default: the image's name
  std::optional<std::string> base;  // path of an image of the chain
  std::optional<uint64_t> range_offset;
  std::optional<uint64_t> range_length;
  uint64_t speed = 0;               // bytes/s, 0 = unlimited
  OnError on_error = OnError::kReport;
  uint64_t chunk_size = 512 * 1024;
};

class StreamJob final : public Job {
 public:
  // Checks the options against the overlay (base in the chain, range inside
  // the disk) before any job exists.
  static Status Make(overlay::Overlay& overlay, const std::string& device, const StreamOptions& options,
                     WorkerPool& pool, EventBus& events, std::unique_ptr<StreamJob>* out);
  ~StreamJob() override;

  // Where the job's range ends: for a range, the offset the next range
  // should start at.
  uint64_t range_end() const { return end_; }
  // How far the job has got.
  uint64_t next_offset() const { return next_offset_.load(); }

 protected:
  Status Run() override;
  Status Prepare() override;

 private:
  StreamJob(overlay::Overlay& overlay, const std::string& device, const StreamOptions& options, WorkerPool& pool,
            EventBus& events, size_t end_layer, uint64_t start, uint64_t end);

  // One step of the job: a run to copy from the chain, or one to record
  // as zeros.
  struct Chunk {
    uint64_t offset;
    uint64_t length;
    bool copy;
  };

  // One pass over [start_, end_): copies every run the overlay needs.
  Status Pass(bool wait_for_busy);
  Status CopyBatch(const std::vector<Chunk>& chunks, bool wait_for_busy);

  overlay::Overlay& overlay_;
  WorkerPool& pool_;
  const StreamOptions options_;
  const size_t end_layer_;  // layers above the base (all layers without one)
  const bool base_mode_;
  const uint64_t start_;
  const uint64_t end_;
  std::atomic<uint64_t> next_offset_;
  std::unique_ptr<overlay::WriteBehind> write_behind_;  // used by the driver thread only
};

}  // namespace corfs::jobs
