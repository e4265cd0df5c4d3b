#include "overlay/data_file.h"

#include <algorithm>
#include <vector>

#include "common/file_io.h"

namespace corfs::overlay {

Status DataFile::Read(uint64_t offset, std::span<char> buf) const { return file_->Read(offset, buf); }

Status DataFile::Write(uint64_t offset, std::span<const char> data) { return file_->Write(offset, data); }

Status DataFile::GetBlockStatus(uint64_t offset, uint64_t length, BlockStatus* out) const {
  // Inside the overlay, holes of the data file are zeros.
  return file_->GetBlockStatus(offset, length, Allocation::kZero, out);
}

Status DataFile::Punch(uint64_t offset, uint64_t length) {
  if (length == 0) return Status::Ok();
  // A range that holds no data is a hole already (the usual case: a stream
  // recording a template's hole in a fresh overlay). Punching it anyway would
  // take the file's lock exclusively and wait for every copy into the file:
  // a stream over a sparse template spent a tenth of its time there.
  BlockStatus status;
  CORFS_RETURN_IF_ERROR(file_->GetBlockStatus(offset, length, Allocation::kZero, &status));
  if (status.allocation == Allocation::kZero && status.length >= length) return Status::Ok();
  Status punched = file_->PunchHole(offset, length);
  if (punched.code() != EOPNOTSUPP) return punched;
  // No hole punching here: write the zeros.
  static const std::vector<char> zeros(1 << 20, 0);
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
    CORFS_RETURN_IF_ERROR(file_->Write(offset + done, std::span(zeros.data(), n)));
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
      CORFS_RETURN_IF_ERROR(file_->Write(offset + pos, bytes.subspan(pos, end - pos)));
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
  return file_->CopyFrom(source, offset, length);
}

}  // namespace corfs::overlay
