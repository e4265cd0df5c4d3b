#include "jobs/commit_driver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/file_io.h"
#include "overlay/commit_intent.h"
#include "overlay/dirty_bitmap.h"
#include "overlay/image_location.h"

namespace corfs::jobs {

namespace {

namespace fs = std::filesystem;

// Bytes read from the chain and written into the base per step.
constexpr uint64_t kStepBytes = 4ull << 20;

// An active commit is READY once its first pass has copied everything; it
// looks for new dirty runs this often while it waits for Complete.
constexpr std::chrono::milliseconds kReadyPoll{20};

IoOperation Write(const Status&) { return IoOperation::kWrite; }
IoOperation Read(const Status&) { return IoOperation::kRead; }

std::string Absolute(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

// The index in `overlay`'s chain of the image named `name` (as its header
// stores it, or its path).
Status FindLayer(const overlay::Overlay& overlay, const std::string& name, size_t* index) {
  return overlay.FindBackingLayer(name, index);
}

}  // namespace

Status CommitDriver::Make(overlay::Overlay& overlay, const std::string& image, const CommitOptions& options,
                          std::vector<CommitSibling> others, std::unique_ptr<CommitDriver>* out) {
  if (overlay.read_only()) return Status::Error(EROFS, "image '" + image + "' is read-only");
  const overlay::OverlayHeader header = overlay.header();
  if (header.standalone || header.chain.empty()) {
    return Status::Invalid("image '" + image + "' has no backing image to commit into");
  }
  const bool active = !options.top;
  size_t top = 0;
  if (!active) CORFS_RETURN_IF_ERROR(FindLayer(overlay, *options.top, &top));
  size_t base = header.chain.size() - 1;
  if (options.base) CORFS_RETURN_IF_ERROR(FindLayer(overlay, *options.base, &base));
  if (!active && top >= base) {
    return Status::Invalid("top '" + header.chain[top].spec.path + "' is not above base '" +
                           header.chain[base].spec.path + "' in the chain of '" + image + "'");
  }
  const overlay::BackingImage& recorded = header.chain[base];
  if (overlay::IsUri(recorded.spec.path)) {
    return Status::Invalid("base '" + recorded.spec.path + "' is on a server; a commit writes only into a local file");
  }
  if (recorded.spec.format != "raw") {
    return Status::Invalid("base '" + recorded.spec.path + "' is a " + recorded.spec.format +
                           " image; a commit writes only into a raw image");
  }
  const std::string base_path = Absolute(overlay::ResolveBackingPath(overlay.path(), recorded.spec.path));
  struct stat st {};
  if (::stat(base_path.c_str(), &st) != 0) return Status::FromErrno("base '" + base_path + "'");
  if ((st.st_mode & 0222) == 0) {
    return Status::Error(EACCES, "base '" + base_path + "' is read-only on disk (mode " +
                                     std::to_string(st.st_mode & 0777) + "); a commit would write into it");
  }
  if (static_cast<uint64_t>(st.st_size) < overlay.size()) {
    return Status::Invalid("base '" + base_path + "' (" + std::to_string(st.st_size) +
                           " bytes) is smaller than the disk (" + std::to_string(overlay.size()) + ")");
  }
  UniqueFd fd(::open(base_path.c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno("cannot open base '" + base_path + "' for writing");
  // The siblings: the other images whose chains hold the base. Each must be
  // able to take the clusters the commit changes.
  std::vector<CommitSibling> siblings;
  for (CommitSibling& other : others) {
    if (other.overlay == &overlay) continue;
    size_t index = 0;
    if (!other.overlay->FindBackingLayer(base_path, &index).ok()) continue;
    if (other.overlay->read_only()) {
      return Status::Error(EROFS, "image '" + other.name + "' of the mount reads '" + base_path +
                                      "' and is read-only: it could not keep what the commit changes");
    }
    siblings.push_back(std::move(other));
  }
  out->reset(new CommitDriver(overlay, image, options, active, top, base, base_path, std::move(fd),
                              std::move(siblings)));
  return Status::Ok();
}

CommitDriver::CommitDriver(overlay::Overlay& overlay, std::string image, const CommitOptions& options, bool active,
                           size_t top, size_t base, std::string base_path, UniqueFd base_fd,
                           std::vector<CommitSibling> siblings)
    : overlay_(overlay),
      image_(std::move(image)),
      top_(top),
      base_(base),
      base_path_(std::move(base_path)),
      base_fd_(std::move(base_fd)),
      siblings_(std::move(siblings)),
      exit_after_step_(options.exit_after_step),
      active_(active) {}

void CommitDriver::MaybeExit(int step) const {
  if (exit_after_step_ != step) return;
  spdlog::warn("commit of '{}': exiting after step {} (test hook)", image_, step);
  ::_exit(9);
}

// Marks guest writes dirty, and at the end holds them back: Freeze waits
// for the writes it let through, later ones wait in BeforeWrite until
// Release.
class CommitDriver::ActiveHook final : public overlay::GuestWriteHook {
 public:
  ActiveHook(uint64_t disk_size, uint64_t granularity) : dirty(disk_size, granularity) {}

  Status BeforeWrite(uint64_t offset, uint64_t length) override {
    std::unique_lock lock(mutex_);
    released_.wait(lock, [&] { return !frozen_; });
    ++in_flight_;
    dirty.Set(offset, length);
    return Status::Ok();
  }
  Status AfterWrite(uint64_t offset, uint64_t length, std::span<const char>) override {
    // Again: the copier may have taken the run between BeforeWrite and now.
    dirty.Set(offset, length);
    Done();
    return Status::Ok();
  }
  void WriteFailed(uint64_t offset, uint64_t length) override {
    dirty.Set(offset, length);  // it may have changed part of the range
    Done();
  }
  void Freeze() {
    std::unique_lock lock(mutex_);
    frozen_ = true;
    drained_.wait(lock, [&] { return in_flight_ == 0; });
  }
  void Release() {
    std::lock_guard lock(mutex_);
    frozen_ = false;
    released_.notify_all();
  }

  overlay::DirtyBitmap dirty;

 private:
  void Done() {
    std::lock_guard lock(mutex_);
    if (--in_flight_ == 0) drained_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable released_;
  std::condition_variable drained_;
  bool frozen_ = false;
  int64_t in_flight_ = 0;
};

Status CommitDriver::Run(JobContext& job) {
  chain_ = overlay_.backing_chain();
  if (active_) {
    hook_ = std::make_shared<ActiveHook>(overlay_.size(), overlay_.cluster_size());
    overlay_.AddWriteHook(hook_);
  }
  CORFS_RETURN_IF_ERROR(Plan(job));
  if (job.cancel_requested()) return Status::Ok();
  CORFS_RETURN_IF_ERROR(PrepareSiblings(job));
  if (job.cancel_requested()) return Status::Ok();
  MaybeExit(1);
  overlay::CommitIntent intent;
  CORFS_RETURN_IF_ERROR(ComputeIdentity(chain_->layer(base_), &intent.old_identity));
  intent.overlays.push_back(Absolute(overlay_.path()));
  for (const CommitSibling& sibling : siblings_) intent.overlays.push_back(Absolute(sibling.overlay->path()));
  // A commit cut short before: its overlays may still record the base as
  // it was before that one, and must keep opening if this one is cut short too.
  if (std::optional<overlay::CommitIntent> unfinished = overlay::ReadCommitIntent(base_path_)) {
    intent.MergeUnfinished(*unfinished);
  }
  CORFS_RETURN_IF_ERROR(overlay::WriteCommitIntent(base_path_, intent));
  intent_written_ = true;
  MaybeExit(2);
  if (active_) return RunActive(job);
  CORFS_RETURN_IF_ERROR(WriteRuns(job));
  if (job.cancel_requested()) return Status::Ok();
  auto sync = [&] { return SyncData(base_fd_.get(), "base " + base_path_); };
  CORFS_RETURN_IF_ERROR(job.RunStep(sync(), sync, Write));
  MaybeExit(4);
  return Status::Ok();
}

void CommitDriver::AddRun(uint64_t offset, uint64_t length) {
  if (!runs_.empty() && runs_.back().offset + runs_.back().length == offset) {
    runs_.back().length += length;
  } else {
    runs_.push_back({offset, length});
  }
}

Status CommitDriver::Plan(JobContext& job) {
  std::shared_ptr<overlay::BackingChain> from_top = chain_->Suffix(top_, overlay_.size());
  const size_t upper = base_ - top_;
  uint64_t total = 0;
  for (uint64_t pos = 0; pos < overlay_.size();) {
    if (!job.Checkpoint()) return Status::Ok();
    uint64_t span = overlay_.size() - pos;
    if (active_) {
      // What the overlay holds is committed too (and marked dirty below).
      bool local = false;
      CORFS_RETURN_IF_ERROR(overlay_.GetLocalRun(pos, span, &local, &span));
      if (local) {
        AddRun(pos, span);
        total += span;
        pos += span;
        continue;
      }
    }
    overlay::UpperLayersStatus status;
    auto ask = [&] { return from_top->GetUpperLayersStatus(pos, span, upper, &status); };
    CORFS_RETURN_IF_ERROR(job.RunStep(ask(), ask, Read));
    // Data, or zeros an upper image knows of (a qcow2 zero cluster, or past
    // the end of an upper image): the base must read so afterwards.
    if (status.status.allocation != overlay::Allocation::kUnallocated) {
      AddRun(pos, status.status.length);
      total += status.status.length;
    }
    pos += status.status.length;
  }
  job.SetRange(total);
  job.SetRemaining(total);
  spdlog::info("commit of '{}': {} bytes in {} runs into {}, {} other images over it", image_, total, runs_.size(),
               base_path_, siblings_.size());
  return Status::Ok();
}

Status CommitDriver::PrepareSiblings(JobContext& job) {
  for (const CommitSibling& sibling : siblings_) {
    for (const Run_& run : runs_) {
      if (!job.Checkpoint()) return Status::Ok();
      auto populate = [&] { return sibling.overlay->Populate(run.offset, run.length, /*wait=*/true); };
      Status status = job.RunStep(populate(), populate, Write);
      if (!status.ok()) return status.WithContext("keeping image '" + sibling.name + "' as it reads");
    }
    auto flush = [&] { return sibling.overlay->Flush(); };
    CORFS_RETURN_IF_ERROR(job.RunStep(flush(), flush, Write));
  }
  return Status::Ok();
}

Status CommitDriver::WriteRuns(JobContext& job) {
  std::shared_ptr<overlay::BackingChain> from_top = chain_->Suffix(top_, overlay_.size());
  std::vector<char> buffer(kStepBytes);
  uint64_t done = 0;
  uint64_t total = 0;
  for (const Run_& run : runs_) total += run.length;
  bool half = false;
  for (const Run_& run : runs_) {
    for (uint64_t pos = run.offset; pos < run.offset + run.length;) {
      if (!job.Checkpoint()) return Status::Ok();
      const uint64_t length = std::min(kStepBytes, run.offset + run.length - pos);
      if (!job.Throttle(length)) return Status::Ok();
      std::span<char> bytes(buffer.data(), length);
      auto step = [&]() -> Status {
        CORFS_RETURN_IF_ERROR(from_top->Read(pos, bytes));
        return PwriteFull(base_fd_.get(), bytes, pos, "base " + base_path_);
      };
      CORFS_RETURN_IF_ERROR(job.RunStep(step(), step, Write));
      pos += length;
      done += length;
      job.Advance({length, length, 0});
      job.SetRemaining(total - done);
      if (!half && done * 2 >= total) {
        half = true;
        MaybeExit(3);
      }
    }
  }
  return Status::Ok();
}

Status CommitDriver::ReadAboveBase(uint64_t offset, std::span<char> buf) {
  for (uint64_t pos = 0; pos < buf.size();) {
    bool local = false;
    uint64_t span = 0;
    CORFS_RETURN_IF_ERROR(overlay_.GetLocalRun(offset + pos, buf.size() - pos, &local, &span));
    std::span<char> part = buf.subspan(pos, span);
    // A cluster that turns local meanwhile was written: the write marked it
    // dirty again, so what is read here is copied over later.
    CORFS_RETURN_IF_ERROR(local ? overlay_.Read(offset + pos, part) : chain_->Read(offset + pos, part));
    pos += span;
  }
  return Status::Ok();
}

Status CommitDriver::KeepSiblings(JobContext& job, uint64_t offset, uint64_t length) {
  for (const CommitSibling& sibling : siblings_) {
    bool local = false;
    uint64_t span = 0;
    CORFS_RETURN_IF_ERROR(sibling.overlay->GetLocalRun(offset, length, &local, &span));
    if (local && span == length) continue;
    auto keep = [&]() -> Status {
      CORFS_RETURN_IF_ERROR(sibling.overlay->Populate(offset, length, /*wait=*/true));
      return sibling.overlay->Flush();
    };
    Status status = job.RunStep(keep(), keep, Write);
    if (!status.ok()) return status.WithContext("keeping image '" + sibling.name + "' as it reads");
  }
  return Status::Ok();
}

Status CommitDriver::CopyDirty(JobContext& job, bool* cancelled) {
  std::vector<char> buffer(kStepBytes);
  uint64_t offset = 0;
  uint64_t length = 0;
  while (hook_->dirty.TakeRun(0, kStepBytes, &offset, &length)) {
    if (!job.Checkpoint() || !job.Throttle(length)) {
      hook_->dirty.Set(offset, length);
      *cancelled = true;
      return Status::Ok();
    }
    std::span<char> bytes(buffer.data(), length);
    auto step = [&]() -> Status {
      CORFS_RETURN_IF_ERROR(KeepSiblings(job, offset, length));
      CORFS_RETURN_IF_ERROR(ReadAboveBase(offset, bytes));
      return PwriteFull(base_fd_.get(), bytes, offset, "base " + base_path_);
    };
    Status status = job.RunStep(step(), step, Write);
    if (!status.ok()) {
      hook_->dirty.Set(offset, length);
      return status;
    }
    job.Advance({length, length, 0});
    job.SetRemaining(hook_->dirty.DirtyBytes());
  }
  return Status::Ok();
}

Status CommitDriver::RunActive(JobContext& job) {
  for (const Run_& run : runs_) hook_->dirty.Set(run.offset, run.length);
  auto sync = [&] { return SyncData(base_fd_.get(), "base " + base_path_); };
  bool cancelled = false;
  CORFS_RETURN_IF_ERROR(CopyDirty(job, &cancelled));
  if (cancelled) return Status::Ok();
  CORFS_RETURN_IF_ERROR(job.RunStep(sync(), sync, Write));
  MaybeExit(3);
  job.EnterReady();
  while (!complete_requested_.load()) {
    if (!job.Checkpoint()) return Status::Ok();
    if (hook_->dirty.DirtyBytes() == 0) {
      if (!job.Delay(kReadyPoll)) return Status::Ok();
      continue;
    }
    CORFS_RETURN_IF_ERROR(CopyDirty(job, &cancelled));
    if (cancelled) return Status::Ok();
  }
  // Guest writes wait from here until Clean: the last dirty runs are
  // copied, and the overlay's clusters equal the base's when Prepare
  // forgets them.
  hook_->Freeze();
  CORFS_RETURN_IF_ERROR(CopyDirty(job, &cancelled));
  if (cancelled) return Status::Ok();
  CORFS_RETURN_IF_ERROR(job.RunStep(sync(), sync, Write));
  MaybeExit(4);
  return Status::Ok();
}

void CommitDriver::Clean(JobContext&) {
  if (!hook_) return;
  hook_->Release();
  overlay_.RemoveWriteHook(hook_.get());
}

Status CommitDriver::BaseIdentity(overlay::ImageIdentity* out) const {
  overlay::BlockDriver& base = chain_->layer(base_);
  CORFS_RETURN_IF_ERROR(ComputeIdentity(base, out));
  bool hashed = static_cast<bool>(overlay_.header().chain[base_].identity.content);
  for (const CommitSibling& sibling : siblings_) {
    size_t index = 0;
    if (sibling.overlay->FindBackingLayer(base_path_, &index).ok()) {
      hashed = hashed || static_cast<bool>(sibling.overlay->header().chain[index].identity.content);
    }
  }
  if (hashed) {
    overlay::ContentHash hash;
    CORFS_RETURN_IF_ERROR(ComputeContentHash(base, &hash));
    out->content = hash;
  }
  return Status::Ok();
}

Status CommitDriver::RecordIdentities(bool drop_layers) {
  overlay::ImageIdentity identity;
  CORFS_RETURN_IF_ERROR(BaseIdentity(&identity));
  for (const CommitSibling& sibling : siblings_) {
    size_t index = 0;
    // A sibling streamed meanwhile (standalone, or its chain shortened) no
    // longer reads the base: nothing of it to follow the base's change.
    if (!sibling.overlay->FindBackingLayer(base_path_, &index).ok()) continue;
    Status status = sibling.overlay->RecordBackingIdentity(index, identity);
    if (!status.ok()) return status.WithContext("image '" + sibling.name + "'");
  }
  MaybeExit(5);
  if (drop_layers) {
    CORFS_RETURN_IF_ERROR(overlay_.RemoveLayers(top_, base_, identity));
    // After the header: with the old chain, a forgotten cluster would read
    // from the images above the base, which lack what the guest wrote.
    if (active_) CORFS_RETURN_IF_ERROR(overlay_.ForgetLocalClusters());
  } else {
    CORFS_RETURN_IF_ERROR(overlay_.RecordBackingIdentity(base_, identity));
  }
  MaybeExit(6);
  return overlay::RemoveCommitIntent(base_path_);
}

void CommitDriver::Describe(JobInfo& info) const {
  for (const CommitSibling& sibling : siblings_) info.other_images.push_back(sibling.name);
}

Status CommitDriver::Prepare(JobContext&) { return RecordIdentities(/*drop_layers=*/true); }

void CommitDriver::Abort(JobContext&) {
  if (!intent_written_) return;
  // The base may hold part of the commit: every header records what it
  // holds now, and the chain stays (its upper images still hold it all).
  // Should that fail, the intent stays and the next open accepts the base.
  Status status = RecordIdentities(/*drop_layers=*/false);
  if (!status.ok()) spdlog::warn("commit of '{}': after it stopped: {}", image_, status.message());
}

}  // namespace corfs::jobs
