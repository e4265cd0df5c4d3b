#include "jobs/mirror_hook.h"

#include <algorithm>
#include <cerrno>
#include <memory>

namespace corfs::jobs {

namespace {

bool AllZeros(std::span<const char> data) {
  return std::all_of(data.begin(), data.end(), [](char c) { return c == 0; });
}

}  // namespace

Status MirrorHook::AfterWrite(uint64_t offset, uint64_t length, std::span<const char> /*data*/) {
  std::shared_lock lock(mode_mutex_);
  switch (mode_) {
    case Mode::kTrack: dirty_->Set(offset, length); break;
    case Mode::kActive: {
      Status copied = Copy(offset, length);
      if (!copied.ok()) {
        // The disk holds the write; the target gets it later, by the job.
        dirty_->Set(offset, length);
        std::lock_guard error_lock(error_mutex_);
        if (!error_) error_ = std::move(copied);
      }
      break;
    }
    case Mode::kDetached: break;
  }
  return Status::Ok();
}

void MirrorHook::SetMode(Mode mode) {
  std::unique_lock lock(mode_mutex_);
  mode_ = mode;
}

MirrorHook::Mode MirrorHook::mode() const {
  std::shared_lock lock(mode_mutex_);
  return mode_;
}

Status MirrorHook::Copy(uint64_t offset, uint64_t length, Side* side) {
  RangeLock::Held held(ranges_, offset, length);
  // Not zeroed first: the read fills all of it.
  const std::unique_ptr<char[]> memory = std::make_unique_for_overwrite<char[]>(length);
  const std::span<char> buf(memory.get(), length);
  Status read = overlay_.ReadWithoutFill(offset, buf);
  if (!read.ok()) {
    if (side != nullptr) *side = Side::kSource;
    return read;
  }
  Status written;
  if (AllZeros(buf)) {
    // Zeros as a discard keep a file target sparse; a target that cannot
    // discard (EOPNOTSUPP: some file systems, a FUSE file) gets the zeros.
    written = target_->Discard(offset, length);
    if (written.code() == EOPNOTSUPP || written.code() == ENOTSUP) written = target_->Write(offset, buf);
  } else {
    written = target_->Write(offset, buf);
  }
  if (!written.ok() && side != nullptr) *side = Side::kTarget;
  return written;
}

std::optional<Status> MirrorHook::TakeError() {
  std::lock_guard lock(error_mutex_);
  std::optional<Status> error = std::move(error_);
  error_.reset();
  return error;
}

}  // namespace corfs::jobs
