#include "overlay/boot_profile_cursor.h"

#include <algorithm>

namespace corfs::overlay {

BootProfileCursor::BootProfileCursor(BootProfile profile, NowFunction now)
    : profile_(std::move(profile)), now_(std::move(now)) {
  prefix_.reserve(profile_.ranges.size() + 1);
  prefix_.push_back(0);
  for (size_t i = 0; i < profile_.ranges.size(); ++i) {
    const ProfileRange& range = profile_.ranges[i];
    prefix_.push_back(prefix_.back() + range.length);
    by_offset_.push_back({range.offset, range.offset + range.length, i});
  }
  std::sort(by_offset_.begin(), by_offset_.end(), [](const Span& a, const Span& b) { return a.offset < b.offset; });
}

void BootProfileCursor::NoteRead(uint64_t offset, uint64_t length) {
  if (length == 0 || by_offset_.empty()) return;
  NoteAt(offset);
  if (length > 1) NoteAt(offset + length - 1);
}

void BootProfileCursor::NoteAt(uint64_t offset) {
  // The last span starting at or before `offset`.
  auto it = std::upper_bound(by_offset_.begin(), by_offset_.end(), offset,
                             [](uint64_t value, const Span& span) { return value < span.offset; });
  if (it == by_offset_.begin()) return;
  --it;
  if (offset >= it->end) return;
  last_read_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(now_().time_since_epoch()).count(),
                   std::memory_order_relaxed);
  size_t seen = guest_index_.load(std::memory_order_relaxed);
  while (it->index + 1 > seen && !guest_index_.compare_exchange_weak(seen, it->index + 1, std::memory_order_relaxed)) {
  }
}

std::optional<BootProfileCursor::Clock::duration> BootProfileCursor::IdleFor(Clock::time_point now) const {
  const int64_t last = last_read_.load(std::memory_order_relaxed);
  if (last == 0) return std::nullopt;
  const int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  return std::chrono::nanoseconds(std::max<int64_t>(0, now_ns - last));
}

}  // namespace corfs::overlay
