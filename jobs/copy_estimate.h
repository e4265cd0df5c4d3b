#pragma once
// CopyEstimate: how many bytes a stream still has to copy from a point of
// its range on, for its ETA. A survey before the copying walks the stream's
// plan (jobs/stream_plan.h) over the range and adds every run to copy; the
// estimate keeps those bytes in at most kBins bins, so it costs a few pages
// whatever the disk's size and fragmentation, and prorates the bin the
// stream is in.
//
// It is an upper bound as the disk goes on: the chain is read-only, so
// nothing ahead can become data to copy, while guests' reads and writes ahead
// of the stream make some of it local. A survey cut short (the run limit, a
// failed plan, a cancel) covers only the start of the range; beyond it the
// density of the surveyed part is assumed (all of it data if none was).
//
// Not thread-safe: a stream's driver uses it on the job's thread.

#include <cstdint>
#include <vector>

namespace corfs::jobs {

class CopyEstimate {
 public:
  static constexpr uint64_t kBins = 4096;

  CopyEstimate() = default;
  // For the range [start, end), in bins of whole `granularity` units.
  CopyEstimate(uint64_t start, uint64_t end, uint64_t granularity);

  // The survey found `length` bytes to copy at `offset`.
  void AddData(uint64_t offset, uint64_t length);
  // The survey covered [start, end) up to `end`; called once it stops.
  void SetSurveyed(uint64_t end) { surveyed_end_ = end; }

  // The bytes still to copy from `pos` to the end of the range.
  uint64_t Remaining(uint64_t pos) const;

 private:
  uint64_t start_ = 0;
  uint64_t end_ = 0;
  uint64_t bin_size_ = 1;
  uint64_t surveyed_end_ = 0;
  std::vector<uint64_t> bins_;  // bytes to copy in each bin
};

}  // namespace corfs::jobs
