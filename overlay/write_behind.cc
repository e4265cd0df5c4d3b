#include "overlay/write_behind.h"

#include <fcntl.h>

namespace corfs::overlay {

void WriteBehind::Written(uint64_t offset, uint64_t length) {
  if (length == 0) return;
  // Errors are left to the overlay's own fdatasync (see the header).
  (void)::sync_file_range(fd_.get(), static_cast<off64_t>(offset), static_cast<off64_t>(length),
                          SYNC_FILE_RANGE_WRITE);
  in_flight_.emplace_back(offset, length);
  in_flight_bytes_ += length;
  while (in_flight_bytes_ > window_) {
    auto [old_offset, old_length] = in_flight_.front();
    in_flight_.pop_front();
    in_flight_bytes_ -= old_length;
    (void)::sync_file_range(fd_.get(), static_cast<off64_t>(old_offset), static_cast<off64_t>(old_length),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
    (void)::posix_fadvise(fd_.get(), static_cast<off_t>(old_offset), static_cast<off_t>(old_length),
                          POSIX_FADV_DONTNEED);
  }
}

}  // namespace corfs::overlay
