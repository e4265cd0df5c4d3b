#include "overlay/write_threshold.h"

namespace corfs::overlay {

void WriteThreshold::Set(uint64_t bytes, Handler on_exceeded) {
  {
    std::lock_guard lock(mutex_);
    handler_ = std::move(on_exceeded);
  }
  threshold_.store(bytes, std::memory_order_relaxed);
}

void WriteThreshold::Fire(uint64_t threshold, uint64_t allocated) {
  // One-shot: whoever swaps the threshold to 0 reports it.
  uint64_t expected = threshold;
  if (!threshold_.compare_exchange_strong(expected, 0)) return;
  Handler handler;
  {
    std::lock_guard lock(mutex_);
    handler = handler_;
  }
  if (handler) handler(threshold, allocated - threshold);
}

}  // namespace corfs::overlay
