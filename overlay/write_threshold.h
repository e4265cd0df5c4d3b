#pragma once
// WriteThreshold: a one-shot alarm on how much an overlay holds, like QEMU's
// write threshold: once the overlay holds more than the threshold (by writes,
// copy-on-read or streaming), the handler is called once with the threshold
// and the amount over it, and the threshold goes back to 0 (off).
//
// Threading: every method may be called from several threads at once. Set
// comes from the control thread, Check from the I/O and stream threads after
// each allocation; the handler runs on the thread whose Check passed the
// threshold, with no lock of this class held.

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>

namespace corfs::overlay {

class WriteThreshold {
 public:
  using Handler = std::function<void(uint64_t threshold, uint64_t exceeded)>;

  // Arms the alarm at `bytes` (0: off).
  void Set(uint64_t bytes, Handler on_exceeded);
  uint64_t bytes() const { return threshold_.load(std::memory_order_relaxed); }

  // The overlay now holds `allocated` bytes. Costs one atomic load unless
  // the threshold is armed and passed.
  void Check(uint64_t allocated) {
    const uint64_t threshold = threshold_.load(std::memory_order_relaxed);
    if (threshold != 0 && allocated > threshold) Fire(threshold, allocated);
  }

 private:
  void Fire(uint64_t threshold, uint64_t allocated);

  std::atomic<uint64_t> threshold_{0};
  std::mutex mutex_;  // guards handler_ only; a leaf: the handler runs after it is released
  Handler handler_;
};

}  // namespace corfs::overlay
