#include "jobs/backup_driver.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <span>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/file_id.h"
#include "common/file_io.h"
#include "overlay/image_location.h"
#include "overlay/overlay_files.h"
#include "overlay/target_image.h"

namespace corfs::jobs {

bool ParseBackupSync(const std::string& text, BackupSync* out) {
  if (text == "full") {
    *out = BackupSync::kFull;
  } else if (text == "top") {
    *out = BackupSync::kTop;
  } else if (text == "incremental") {
    *out = BackupSync::kIncremental;
  } else {
    return false;
  }
  return true;
}

// Where the copied chunks go. Called by the job's thread and by guest
// write threads (copy-before-write) at once, for distinct chunks.
class BackupTarget {
 public:
  virtual ~BackupTarget() = default;
  virtual Status Write(uint64_t offset, std::span<const char> data) = 0;
  // The chunk read as zeros at the start.
  virtual Status Zero(uint64_t offset, uint64_t length) = 0;
  virtual Status Flush() = 0;
  virtual Status Close() = 0;
  // A failed backup removes a target it made: a partial copy must not pass
  // for a backup.
  virtual void RemoveIfMade() = 0;
};

namespace {

// A raw target (a file, or an export once OpenTarget writes to them).
class DriverTarget final : public BackupTarget {
 public:
  DriverTarget(std::unique_ptr<overlay::BlockDriver> driver, std::string path, bool made)
      : driver_(std::move(driver)), path_(std::move(path)), made_(made) {}
  Status Write(uint64_t offset, std::span<const char> data) override { return driver_->Write(offset, data); }
  // A file the job made reads as zeros already (and stays sparse there).
  Status Zero(uint64_t offset, uint64_t length) override {
    return made_ ? Status::Ok() : driver_->Discard(offset, length);
  }
  Status Flush() override { return driver_->Flush(); }
  Status Close() override {
    driver_.reset();
    return Status::Ok();
  }
  void RemoveIfMade() override {
    driver_.reset();
    if (made_) ::unlink(path_.c_str());
  }

 private:
  std::unique_ptr<overlay::BlockDriver> driver_;
  const std::string path_;
  const bool made_;
};

// An incremental's target: a corfs overlay over the previous backup. A
// chunk of zeros is discarded, so it reads as zeros whatever the previous
// backup holds there.
class OverlayTarget final : public BackupTarget {
 public:
  OverlayTarget(std::unique_ptr<overlay::Overlay> overlay, bool made) : overlay_(std::move(overlay)), made_(made) {}
  Status Write(uint64_t offset, std::span<const char> data) override { return overlay_->Write(offset, data); }
  Status Zero(uint64_t offset, uint64_t length) override { return overlay_->Discard(offset, length); }
  Status Flush() override { return overlay_->Flush(); }
  // Let go of it (its lock too), so it can be mounted as soon as the job ended.
  Status Close() override {
    if (!overlay_) return Status::Ok();
    Status status = overlay_->Close();
    overlay_.reset();
    return status;
  }
  void RemoveIfMade() override {
    if (!overlay_) return;
    const std::string path = overlay_->path();
    (void)overlay_->Close();
    overlay_.reset();
    if (!made_) return;
    ::unlink(path.c_str());
    ::unlink(overlay::PartialDataPath(path).c_str());
    ::unlink(overlay::MetadataPath(path).c_str());
  }

 private:
  std::unique_ptr<overlay::Overlay> overlay_;
  const bool made_;
};

// A step of the job copies about this much (less under a speed limit).
constexpr uint64_t kMaxStep = 4ull << 20;
// How long the job waits for guest writes' copies before it looks again.
constexpr std::chrono::milliseconds kBusyWait{20};

}  // namespace

struct BackupDriver::State {
  State(overlay::Overlay& o, std::unique_ptr<BackupTarget> t, uint64_t chunk_size)
      : overlay(o), target(std::move(t)), chunk(chunk_size), pending(o.size(), chunk_size) {}

  overlay::Overlay& overlay;  // outlives every hook call (the overlay calls them)
  std::unique_ptr<BackupTarget> target;
  const uint64_t chunk;
  overlay::DirtyBitmap pending;  // to copy: set at the start, cleared as copied

  std::mutex mutex;
  std::condition_variable changed;
  std::set<uint64_t> claimed;  // chunks being copied (mutex)
  Status failed;               // the first failed copy (mutex)
  bool stopped = false;        // no copy starts any more (mutex)
  std::atomic<uint64_t> copied_bytes{0};
  std::atomic<uint64_t> before_write_bytes{0};  // of those, copied by guest writes

  uint64_t chunks() const { return pending.bits(); }
  bool Pending(uint64_t c) const { return pending.Test(c * chunk); }

  // Copies the pending chunks of [first, last]. With `wait` (a guest
  // write), waits for chunks others copy and returns once none of them is
  // pending; without (the job), passes claimed chunks (*busy set) and
  // copies at most one run. Error: this copy failed (the backup is broken;
  // the guest write goes on regardless, see the header).
  Status Copy(uint64_t first, uint64_t last, bool wait, bool* busy) {
    std::unique_lock lock(mutex);
    uint64_t c = first;
    while (c <= last) {
      if (stopped) return Status::Ok();
      if (!Pending(c)) {
        ++c;
        continue;
      }
      if (claimed.count(c) != 0) {
        if (!wait) {
          *busy = true;
          ++c;
          continue;
        }
        changed.wait(lock);
        continue;
      }
      uint64_t end = c + 1;  // one past the run claimed
      while (end <= last && Pending(end) && claimed.count(end) == 0) ++end;
      for (uint64_t i = c; i < end; ++i) claimed.insert(i);
      lock.unlock();
      const uint64_t offset = c * chunk;
      const uint64_t length = std::min(pending.disk_size(), end * chunk) - offset;
      Status status = CopyClaimed(offset, length);
      lock.lock();
      for (uint64_t i = c; i < end; ++i) claimed.erase(i);
      if (status.ok()) {
        pending.Reset(offset, length);
        copied_bytes.fetch_add(length, std::memory_order_relaxed);
        if (wait) before_write_bytes.fetch_add(length, std::memory_order_relaxed);
      } else if (failed.ok()) {
        failed = status;
        stopped = true;
      }
      changed.notify_all();
      if (!status.ok()) return status;
      if (!wait) return Status::Ok();
      c = end;
    }
    return Status::Ok();
  }

  // The claimed chunks' content at the start (see the header for why) to
  // the target.
  Status CopyClaimed(uint64_t offset, uint64_t length) {
    std::vector<char> buf(length);
    CORFS_RETURN_IF_ERROR(overlay.ReadWithoutFill(offset, buf));
    if (IsAllZero(buf)) return target->Zero(offset, length);
    return target->Write(offset, buf);
  }

  // No copy starts from now on; waits for those under way.
  void Stop() {
    std::unique_lock lock(mutex);
    stopped = true;
    changed.notify_all();
    changed.wait(lock, [this] { return claimed.empty(); });
  }
};

namespace {

class CopyBeforeWriteHook final : public overlay::GuestWriteHook {
 public:
  explicit CopyBeforeWriteHook(std::shared_ptr<BackupDriver::State> state) : state_(std::move(state)) {}
  Status BeforeWrite(uint64_t offset, uint64_t length) override {
    if (length == 0) return Status::Ok();
    bool busy = false;
    Status status = state_->Copy(offset / state_->chunk, (offset + length - 1) / state_->chunk, true, &busy);
    // break-snapshot: the backup fails (State::failed), the write goes on.
    if (!status.ok()) spdlog::warn("backup: copy-before-write failed, the backup is broken: {}", status.message());
    return Status::Ok();
  }

 private:
  const std::shared_ptr<BackupDriver::State> state_;
};

// The granularity of bitmap `name`, 0 when there is none.
uint64_t GranularityOf(const overlay::PersistentBitmaps& bitmaps, const std::string& name, std::string* last_target) {
  for (const overlay::BitmapInfo& info : bitmaps.List()) {
    if (info.name != name) continue;
    *last_target = info.last_target;
    return info.granularity;
  }
  return 0;
}

Status OpenIncrementalTarget(overlay::Overlay& source, const BackupOptions& options, const std::string& previous,
                             std::unique_ptr<BackupTarget>* out) {
  if (overlay::IsUri(options.target)) {
    return Status::Error(ENOTSUP, "an incremental backup goes into a corfs overlay, a local file");
  }
  bool made = false;
  if (!options.existing) {
    if (previous.empty()) {
      return Status::Invalid(
          "the bitmap has no previous backup to build on: make a full backup with it first, or make the target "
          "with `corfs create TARGET --backing PREVIOUS` and give mode existing");
    }
    if (std::filesystem::exists(overlay::MetadataPath(previous))) {
      return Status::Invalid("the previous backup " + previous +
                             " is a corfs overlay, which is never a backing image: make the target over a raw "
                             "copy of it with `corfs create TARGET --backing COPY` and give mode existing");
    }
    if (std::filesystem::exists(options.target) || std::filesystem::exists(overlay::MetadataPath(options.target))) {
      return Status::Error(EEXIST, "target " + options.target + " exists already (mode \"existing\" writes into it)");
    }
    overlay::CreateOptions create;
    create.backing = {overlay::ImageSpec{previous, "raw"}};
    create.size = source.size();
    create.cluster_size = source.cluster_size();
    CORFS_RETURN_IF_ERROR(overlay::Overlay::Create(options.target, create).WithContext("target " + options.target));
    made = true;
  }
  overlay::OpenOptions open;
  open.copy_on_read = false;  // the target keeps what the backup writes, nothing of its backing
  std::unique_ptr<overlay::Overlay> target;
  Status status = overlay::Overlay::Open(options.target, open, &target);
  if (status.ok() && target->size() != source.size()) {
    status = Status::Invalid("target " + options.target + " has " + std::to_string(target->size()) +
                             " bytes, the disk " + std::to_string(source.size()));
  }
  if (!status.ok()) {
    target.reset();
    if (made) {
      ::unlink(options.target.c_str());
      ::unlink(overlay::PartialDataPath(options.target).c_str());
      ::unlink(overlay::MetadataPath(options.target).c_str());
    }
    return status.WithContext("incremental backup target");
  }
  *out = std::make_unique<OverlayTarget>(std::move(target), made);
  return Status::Ok();
}

}  // namespace

Status BackupDriver::Make(overlay::Overlay& overlay, std::shared_ptr<overlay::PersistentBitmaps> bitmaps,
                          const BackupOptions& options, std::unique_ptr<BackupDriver>* out) {
  const bool incremental = options.sync == BackupSync::kIncremental;
  if (options.target.empty()) return Status::Invalid("a backup needs a target");
  if (incremental && options.bitmap.empty()) return Status::Invalid("sync 'incremental' needs a bitmap");
  if (!options.bitmap.empty() && options.sync == BackupSync::kTop) {
    return Status::Invalid("a bitmap goes with sync 'full' or 'incremental', not 'top'");
  }
  uint64_t chunk = std::max<uint64_t>(overlay.cluster_size(), 64 * 1024);
  std::string previous;
  if (!options.bitmap.empty()) {
    if (bitmaps == nullptr) return Status::NotFound("Dirty bitmap '" + options.bitmap + "' not found");
    CORFS_RETURN_IF_ERROR(bitmaps->Check(options.bitmap, incremental));
    const uint64_t granularity = GranularityOf(*bitmaps, options.bitmap, &previous);
    if (incremental) chunk = granularity;
  }
  std::unique_ptr<BackupTarget> target;
  if (incremental) {
    CORFS_RETURN_IF_ERROR(OpenIncrementalTarget(overlay, options, previous, &target));
  } else {
    overlay::TargetOptions target_options;
    target_options.size = overlay.size();
    target_options.existing = options.existing;
    std::unique_ptr<overlay::BlockDriver> driver;
    CORFS_RETURN_IF_ERROR(overlay::OpenTarget(options.target, target_options, &driver));
    target = std::make_unique<DriverTarget>(std::move(driver), options.target, !options.existing);
  }
  std::unique_ptr<BackupDriver> driver(new BackupDriver(overlay, std::move(bitmaps), options, std::move(target),
                                                        chunk));
  // Refused (the bitmap busy meanwhile): the driver undoes it as it goes.
  CORFS_RETURN_IF_ERROR(driver->TakePointInTime());
  *out = std::move(driver);
  return Status::Ok();
}

BackupDriver::BackupDriver(overlay::Overlay& overlay, std::shared_ptr<overlay::PersistentBitmaps> bitmaps,
                           const BackupOptions& options, std::unique_ptr<BackupTarget> target, uint64_t chunk)
    : overlay_(overlay),
      bitmaps_(std::move(bitmaps)),
      options_(options),
      disk_size_(overlay.size()),
      state_(std::make_shared<State>(overlay, std::move(target), chunk)) {}

BackupDriver::~BackupDriver() { CleanUp(); }

Status BackupDriver::TakePointInTime() {
  // The point in time (see the header): the hook goes in, the bitmap is
  // taken and the pending chunks are fixed, all while no write is under way.
  Status taken;
  hook_ = std::make_shared<CopyBeforeWriteHook>(state_);
  overlay_.AddWriteHook(hook_, [&] {
    if (!options_.bitmap.empty()) {
      taken = bitmaps_->Take(options_.bitmap, options_.sync == BackupSync::kIncremental, &taken_);
      if (!taken.ok()) return;
    }
    overlay::DirtyBitmap& pending = state_->pending;
    switch (options_.sync) {
      case BackupSync::kFull: pending.SetAll(); break;
      case BackupSync::kIncremental: pending.Merge(*taken_); break;
      case BackupSync::kTop:
        for (uint64_t pos = 0; pos < disk_size_;) {
          bool local = false;
          uint64_t run = 0;
          if (!overlay_.GetLocalRun(pos, disk_size_ - pos, &local, &run).ok() || run == 0) {
            pending.Set(pos, disk_size_ - pos);  // cannot tell: copy the rest
            break;
          }
          if (local) pending.Set(pos, run);
          pos += run;
        }
        break;
    }
  });
  return taken;
}

Status BackupDriver::Run(JobContext& job) {
  State& state = *state_;
  const uint64_t total = state.pending.DirtyBytes();
  job.SetRange(total);
  job.SetRemaining(total);
  uint64_t reported = 0;
  auto report = [&] {
    const uint64_t copied = state.copied_bytes.load(std::memory_order_relaxed);
    if (copied > reported) {
      job.Advance({copied - reported, copied - reported, 0});
      reported = copied;
    }
    job.SetRemaining(state.pending.DirtyBytes());
  };
  uint64_t c = 0;
  bool busy_seen = false;
  while (true) {
    if (!job.Checkpoint()) return Status::Ok();
    {
      std::lock_guard lock(state.mutex);
      if (!state.failed.ok()) return state.failed;
    }
    while (c < state.chunks() && !state.Pending(c)) ++c;
    if (c >= state.chunks()) {
      report();
      if (state.pending.DirtyBytes() == 0) break;
      // What is left is being copied by guest writes (or a copy of theirs
      // failed and left it pending): wait for them, then look again.
      if (busy_seen) {
        std::unique_lock lock(state.mutex);
        state.changed.wait_for(lock, kBusyWait);
      }
      busy_seen = false;
      c = 0;
      continue;
    }
    const uint64_t slice = job.SliceBytes();
    const uint64_t step = std::max(state.chunk, slice == 0 ? kMaxStep : std::min(kMaxStep, slice));
    const uint64_t step_chunks = std::max<uint64_t>(1, step / state.chunk);
    if (!job.Throttle(step_chunks * state.chunk)) return Status::Ok();
    bool busy = false;
    const uint64_t first = c;
    Status status = state.Copy(first, std::min(state.chunks() - 1, first + step_chunks - 1), false, &busy);
    busy_seen |= busy;
    // A failed copy breaks the backup (the chunk may be half written and
    // guest writes go on): no retry, the job ends with the error.
    if (!status.ok()) return status;
    c = first + 1;
    report();
  }
  return Status::Ok();
}

Status BackupDriver::Prepare(JobContext&) {
  state_->Stop();
  CORFS_RETURN_IF_ERROR(state_->target->Flush().WithContext("backup target " + options_.target));
  CORFS_RETURN_IF_ERROR(state_->target->Close().WithContext("backup target " + options_.target));
  succeeded_ = true;
  return Status::Ok();
}

void BackupDriver::Abort(JobContext&) { state_->Stop(); }

void BackupDriver::Clean(JobContext&) { CleanUp(); }

void BackupDriver::CleanUp() {
  if (cleaned_) return;
  cleaned_ = true;
  state_->Stop();
  if (hook_) overlay_.RemoveWriteHook(hook_.get());
  if (!succeeded_) state_->target->RemoveIfMade();
  if (taken_) {
    // A backup that ended otherwise hands the bits back (QEMU merges the
    // successor back into the bitmap).
    bitmaps_->Release(options_.bitmap, *taken_, succeeded_, options_.target);
    taken_.reset();
  }
}

}  // namespace corfs::jobs
