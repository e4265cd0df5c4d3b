#include "overlay/data_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "common/file_io.h"
#include "overlay/raw_driver.h"

namespace corfs::overlay {

Status DataFile::Read(uint64_t offset, std::span<char> buf) const { return PreadFull(fd_.get(), buf, offset, path_); }

Status DataFile::Write(uint64_t offset, std::span<const char> data) {
  return PwriteFull(fd_.get(), data, offset, path_);
}

Status DataFile::Sync() const { return SyncData(fd_.get(), path_); }

Status DataFile::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) const {
  // Inside the overlay, holes of the data file are zeros.
  return ProbeSparseRun(fd_.get(), offset, length, Allocation::kZero, path_, out);
}

Status DataFile::Punch(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Ok();
  // A range that holds no data is a hole already (the usual case: a stream
  // recording a template's hole in a fresh overlay). Punching it anyway would
  // take the file's lock exclusively and wait for every copy into the file:
  // a stream over a sparse template spent a tenth of its time there.
  const off_t data = ::lseek(fd_.get(), static_cast<off_t>(offset), SEEK_DATA);
  if ((data < 0 && errno == ENXIO) || (data >= 0 && static_cast<uint64_t>(data) >= offset + length)) {
    return Status::Ok();
  }
  if (::fallocate(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                  static_cast<off_t>(length)) == 0) {
    return Status::Ok();
  }
  if (errno != EOPNOTSUPP) return Status::FromErrno("punch hole in " + path_);
  // No hole punching here: write the zeros.
  static const std::vector<char> zeros(1 << 20, 0);
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
    CORFS_RETURN_IF_ERROR(PwriteFull(fd_.get(), std::span(zeros.data(), n), offset + done, path_));
    done += n;
  }
  return Status::Ok();
}

Status DataFile::Store(uint64_t offset, std::span<const char> bytes) {
  // Zero detection in 4 KiB blocks aligned to the disk: a template that is
  // not sparse on disk still makes a sparse overlay.
  constexpr uint64_t kBlock = 4096;
  auto block_end = [&](uint64_t pos) {
    return std::min<uint64_t>(bytes.size(), (offset + pos) / kBlock * kBlock + kBlock - offset);
  };
  uint64_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t end = block_end(pos);
    const bool zero = IsAllZero(bytes.subspan(pos, end - pos));
    while (end < bytes.size()) {
      uint64_t next = block_end(end);
      if (IsAllZero(bytes.subspan(end, next - end)) != zero) break;
      end = next;
    }
    if (zero) {
      // Punch even over a hole: the file may hold data a crash left behind
      // in a cluster whose bit never reached the disk.
      CORFS_RETURN_IF_ERROR(Punch(offset + pos, end - pos));
    } else {
      CORFS_RETURN_IF_ERROR(PwriteFull(fd_.get(), bytes.subspan(pos, end - pos), offset + pos, path_));
    }
    pos = end;
  }
  return Status::Ok();
}

uint64_t DataFile::CopyFrom(int source, uint64_t offset, uint64_t length) {
  // A stream copies a raw layer's bytes with copy_file_range: they go from
  // page cache to page cache without the two copies through a buffer here,
  // which made streaming 2-4x faster on the machines we measured (most of
  // all on virtual machines, where touching process memory is dear). The
  // kernel copies zero blocks as data, so unlike Store this keeps only the
  // template's own holes (skipped by GetBlockStatus) sparse.
  uint64_t copied = 0;
  // On a failure the caller's buffered copy takes over where this stopped,
  // and reports the error if it is real.
  (void)CopyFileRange(source, offset, fd_.get(), offset, length, path_, &copied);
  return copied;
}

}  // namespace corfs::overlay
