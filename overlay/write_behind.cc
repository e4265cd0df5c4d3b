#include "overlay/write_behind.h"

#include <fcntl.h>

#include <string>

namespace corfs::overlay {

// Errors are left to the overlay's own fdatasync (see the header).

std::unique_ptr<WriteBehind> WriteBehind::ForFile(int fd, uint64_t batch, uint64_t window) {
  // The same file through /proc, not by name: the name may point elsewhere
  // by now. A new open gives the descriptor its own writeback-error cursor.
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  UniqueFd own(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!own.valid()) return nullptr;
  return std::make_unique<WriteBehind>(std::move(own), batch, window);
}

void WriteBehind::Written(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  if (pending_length_ > 0 && offset != pending_offset_ + pending_length_) StartPending();
  if (pending_length_ == 0) pending_offset_ = offset;
  pending_length_ += length;
  if (pending_length_ >= batch_) StartPending();
}

void WriteBehind::StartPending() {
  (void)::sync_file_range(fd_.get(), static_cast<off64_t>(pending_offset_), static_cast<off64_t>(pending_length_),
                          SYNC_FILE_RANGE_WRITE);
  in_flight_.emplace_back(pending_offset_, pending_length_);
  in_flight_bytes_ += pending_length_;
  pending_length_ = 0;
  while (in_flight_bytes_ > window_) {
    auto [offset, length] = in_flight_.front();
    in_flight_.pop_front();
    in_flight_bytes_ -= length;
    (void)::sync_file_range(fd_.get(), static_cast<off64_t>(offset), static_cast<off64_t>(length),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)::posix_fadvise(fd_.get(), static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
  }
}

}  // namespace corfs::overlay
