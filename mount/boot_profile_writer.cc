#include "mount/boot_profile_writer.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace corfs::mount {

namespace {
// How often the thread looks whether the guest went idle: often enough that
// the profile is written within a fraction of the idle time.
constexpr std::chrono::milliseconds kMaxPoll{250};
}  // namespace

BootProfileWriter::BootProfileWriter(std::string path, std::chrono::milliseconds idle,
                                     std::shared_ptr<overlay::BootProfileRecorder> recorder, std::string image)
    : path_(std::move(path)), idle_(idle), recorder_(std::move(recorder)), image_(std::move(image)) {
  thread_ = std::thread([this] { Loop(); });
}

BootProfileWriter::~BootProfileWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  WriteOnce();
}

void BootProfileWriter::Loop() {
  const auto poll = std::max(std::chrono::milliseconds(1), std::min(kMaxPoll, idle_ / 4));
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, poll, [this] { return stopping_; })) {
    const auto idle = recorder_->IdleFor(overlay::BootProfileRecorder::Clock::now());
    if (!idle || *idle < idle_) continue;
    lock.unlock();
    WriteOnce();
    return;
  }
}

void BootProfileWriter::WriteOnce() {
  std::lock_guard lock(mutex_);
  if (written_) return;
  written_ = true;
  recorder_->Stop();
  const overlay::BootProfile profile = recorder_->Snapshot();
  if (profile.ranges.empty()) return;  // the guest read nothing
  Status saved = overlay::SaveBootProfile(path_, profile);
  if (!saved.ok()) {
    spdlog::warn("image '{}': boot profile not written: {}", image_, saved.message());
    return;
  }
  spdlog::info("image '{}': boot profile {} written: {} ranges, {} bytes, over {:.3f} s", image_, path_,
               profile.ranges.size(), profile.bytes(), static_cast<double>(profile.span_ns()) / 1e9);
}

}  // namespace corfs::mount
