#include "jobs/copy_estimate.h"

#include <algorithm>

namespace corfs::jobs {

CopyEstimate::CopyEstimate(uint64_t start, uint64_t end, uint64_t granularity)
    : start_(start), end_(std::max(start, end)), surveyed_end_(start) {
  const uint64_t unit = std::max<uint64_t>(granularity, 1);
  const uint64_t per_bin = (end_ - start_ + kBins - 1) / kBins;
  bin_size_ = std::max(unit, (per_bin + unit - 1) / unit * unit);
  bins_.assign((end_ - start_ + bin_size_ - 1) / bin_size_, 0);
}

void CopyEstimate::AddData(uint64_t offset, uint64_t length) {
  uint64_t pos = std::max(offset, start_);
  const uint64_t stop = std::min(offset + length, end_);
  while (pos < stop) {
    const uint64_t bin = (pos - start_) / bin_size_;
    const uint64_t bin_end = start_ + (bin + 1) * bin_size_;
    const uint64_t piece = std::min(stop, bin_end) - pos;
    bins_[bin] += piece;
    pos += piece;
  }
}

uint64_t CopyEstimate::Remaining(uint64_t pos) const {
  pos = std::clamp(pos, start_, end_);
  const uint64_t surveyed = std::min(surveyed_end_, end_);
  long double total = 0;
  uint64_t surveyed_data = 0;
  for (uint64_t bin = 0; bin < bins_.size(); ++bin) {
    surveyed_data += bins_[bin];
    const uint64_t bin_start = start_ + bin * bin_size_;
    const uint64_t bin_end = std::min(end_, bin_start + bin_size_);
    if (bin_end <= pos) continue;
    // The part of the bin ahead of `pos`, the data spread evenly in it.
    const uint64_t ahead = bin_end - std::max(bin_start, pos);
    total += static_cast<long double>(bins_[bin]) * ahead / (bin_end - bin_start);
  }
  if (surveyed < end_) {
    const long double density = surveyed > start_ ? static_cast<long double>(surveyed_data) / (surveyed - start_) : 1;
    total += density * (end_ - std::max(pos, surveyed));
  }
  return static_cast<uint64_t>(total + 0.5L);
}

}  // namespace corfs::jobs
