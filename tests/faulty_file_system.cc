#include "tests/faulty_file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>
#include <vector>

#include "common/file_io.h"
#include "common/unique_fd.h"

namespace corfs::testing {

using overlay::Allocation;
using overlay::BlockStatus;
using overlay::File;
using overlay::OpenMode;

namespace {

constexpr uint64_t kBlock = 4096;

bool IsMetadataPath(const std::string& path) {
  auto ends_with = [&](const std::string& tail) {
    return path.size() >= tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends_with(".cor") || ends_with(".cor.tmp");
}

bool Matches(FaultTarget target, bool metadata) {
  return target == FaultTarget::kAnyFile || (target == FaultTarget::kMetadataFile) == metadata;
}

}  // namespace

struct FaultyFileSystem::Model {
  struct Rule {
    FaultOp op;
    FaultTarget target;
    uint64_t skip;  // matching calls still to let through
    int error;
    uint64_t times;  // failures still to inject
  };
  // A block changed since the last good sync: its content before.
  struct Undo {
    std::string before;
    bool lost = false;  // a sync failed since: later good syncs leave it lost
  };
  struct FileState {
    UniqueFd fd;  // a descriptor of the file's own, for Crash
    bool metadata = false;
    std::map<uint64_t, Undo> undo;  // by block index
  };

  std::mutex mutex;
  std::vector<Rule> rules;
  std::map<std::pair<dev_t, ino_t>, FileState> files;
  // Renames not yet durable (their folder not synced since), in order.
  std::vector<std::pair<std::string, std::string>> renames;
  uint64_t generation = 0;  // bumped by Crash

  // The error to inject for this call, or 0.
  int TakeFault(FaultOp op, bool metadata) {
    for (Rule& rule : rules) {
      if (rule.op != op || !Matches(rule.target, metadata) || rule.times == 0) continue;
      if (rule.skip > 0) {
        --rule.skip;
        continue;
      }
      --rule.times;
      return rule.error;
    }
    return 0;
  }

  // Keeps the content of the blocks of [offset, offset+length) before a change.
  void Remember(FileState& state, uint64_t offset, uint64_t length) {
    if (length == 0) return;
    for (uint64_t block = offset / kBlock; block <= (offset + length - 1) / kBlock; ++block) {
      auto [it, inserted] = state.undo.try_emplace(block);
      if (!inserted) {
        it->second.lost = false;  // written again: the next good sync keeps it
        continue;
      }
      it->second.before.assign(kBlock, '\0');
      (void)PreadFull(state.fd.get(), it->second.before, block * kBlock, "model");
    }
  }

  void Synced(FileState& state, bool ok) {
    for (auto it = state.undo.begin(); it != state.undo.end();) {
      if (!ok) it->second.lost = true;
      it = (ok && !it->second.lost) ? state.undo.erase(it) : std::next(it);
    }
  }

  static void Restore(FileState& state) {
    struct stat st {};
    if (::fstat(state.fd.get(), &st) != 0) return;
    const auto size = static_cast<uint64_t>(st.st_size);
    for (const auto& [block, undo] : state.undo) {
      const uint64_t offset = block * kBlock;
      if (offset >= size) continue;
      const uint64_t length = std::min(kBlock, size - offset);
      if (IsAllZero(undo.before) && ::fallocate(state.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                                static_cast<off_t>(offset), static_cast<off_t>(length)) == 0) {
        continue;
      }
      (void)PwriteFull(state.fd.get(), std::span(undo.before.data(), length), offset, "model");
    }
    state.undo.clear();
  }
};

namespace {

class FaultyFile final : public File {
 public:
  using Model = FaultyFileSystem::Model;

  FaultyFile(std::unique_ptr<File> real, std::shared_ptr<Model> model, Model::FileState* state, uint64_t generation)
      : real_(std::move(real)), model_(std::move(model)), state_(state), generation_(generation) {}

  const std::string& path() const override { return real_->path(); }
  int fd() const override { return real_->fd(); }

  Status Read(uint64_t offset, std::span<char> buf) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    return real_->Read(offset, buf);
  }

  Status Write(uint64_t offset, std::span<const char> data) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    model_->Remember(*state_, offset, data.size());
    if (const int error = model_->TakeFault(FaultOp::kWrite, state_->metadata)) {
      (void)real_->Write(offset, data.first(data.size() / 2 / kBlock * kBlock));
      return Injected(error, "write");
    }
    return real_->Write(offset, data);
  }

  Status PunchHole(uint64_t offset, uint64_t length) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    if (const int error = model_->TakeFault(FaultOp::kPunch, state_->metadata)) return Injected(error, "punch hole in");
    model_->Remember(*state_, offset, length);
    return real_->PunchHole(offset, length);
  }

  uint64_t CopyFrom(int source, uint64_t offset, uint64_t length) override {
    std::lock_guard lock(model_->mutex);
    if (!Alive().ok() || model_->TakeFault(FaultOp::kWrite, state_->metadata) != 0) return 0;
    model_->Remember(*state_, offset, length);
    return real_->CopyFrom(source, offset, length);
  }

  Status GetBlockStatus(uint64_t offset, uint64_t length, Allocation hole_as, BlockStatus* out) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    return real_->GetBlockStatus(offset, length, hole_as, out);
  }

  Status GetSize(uint64_t* size) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    return real_->GetSize(size);
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    return real_->Truncate(size);
  }

  Status Sync() override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    const int error = model_->TakeFault(FaultOp::kSync, state_->metadata);
    model_->Synced(*state_, error == 0);
    return error == 0 ? Status::Ok() : Injected(error, "sync");
  }

  Status TryLock(bool exclusive) override {
    std::lock_guard lock(model_->mutex);
    CORFS_RETURN_IF_ERROR(Alive());
    return real_->TryLock(exclusive);
  }

 private:
  Status Alive() const {
    if (generation_ == model_->generation) return Status::Ok();
    return Status::Error(EIO, path() + ": the machine crashed (test)");
  }
  Status Injected(int error, const char* what) const {
    return Status::Error(error, std::string(what) + " " + path() + ": injected fault (test)");
  }

  std::unique_ptr<File> real_;
  std::shared_ptr<Model> model_;
  Model::FileState* state_;  // in model_->files; lives as long as generation_ is current
  const uint64_t generation_;
};

}  // namespace

FaultyFileSystem::FaultyFileSystem() : model_(std::make_shared<Model>()) {}
FaultyFileSystem::~FaultyFileSystem() = default;

void FaultyFileSystem::FailNth(FaultOp op, FaultTarget target, uint64_t nth, int error, uint64_t times) {
  std::lock_guard lock(model_->mutex);
  model_->rules.push_back({op, target, nth - 1, error, times});
}

void FaultyFileSystem::ClearFaults() {
  std::lock_guard lock(model_->mutex);
  model_->rules.clear();
}

uint64_t FaultyFileSystem::UnsyncedBytes(FaultTarget target) const {
  std::lock_guard lock(model_->mutex);
  uint64_t bytes = 0;
  for (const auto& [id, state] : model_->files) {
    if (Matches(target, state.metadata)) bytes += state.undo.size() * kBlock;
  }
  return bytes;
}

void FaultyFileSystem::Crash() {
  std::lock_guard lock(model_->mutex);
  for (auto& [id, state] : model_->files) Model::Restore(state);
  model_->files.clear();
  for (auto it = model_->renames.rbegin(); it != model_->renames.rend(); ++it) {
    (void)::rename(it->second.c_str(), it->first.c_str());
  }
  model_->renames.clear();
  ++model_->generation;
}

Status FaultyFileSystem::Open(const std::string& path, OpenMode mode, std::unique_ptr<File>* out) {
  std::unique_ptr<File> real;
  CORFS_RETURN_IF_ERROR(real_->Open(path, mode, &real));
  struct stat st {};
  if (::fstat(real->fd(), &st) != 0) return Status::FromErrno("stat " + path);
  std::lock_guard lock(model_->mutex);
  Model::FileState& state = model_->files[{st.st_dev, st.st_ino}];
  if (!state.fd.valid()) {
    state.fd = UniqueFd(::open(("/proc/self/fd/" + std::to_string(real->fd())).c_str(), O_RDWR | O_CLOEXEC));
    if (!state.fd.valid()) return Status::FromErrno("reopen " + path);
    state.metadata = IsMetadataPath(path);
  }
  *out = std::make_unique<FaultyFile>(std::move(real), model_, &state, model_->generation);
  return Status::Ok();
}

Status FaultyFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(model_->mutex);
  if (const int error = model_->TakeFault(FaultOp::kRename, IsMetadataPath(from))) {
    return Status::Error(error, "rename " + from + " to " + to + ": injected fault (test)");
  }
  CORFS_RETURN_IF_ERROR(real_->Rename(from, to));
  model_->renames.emplace_back(from, to);
  return Status::Ok();
}

Status FaultyFileSystem::Remove(const std::string& path) { return real_->Remove(path); }

Status FaultyFileSystem::SyncParentDirectory(const std::string& path) {
  std::lock_guard lock(model_->mutex);
  if (const int error = model_->TakeFault(FaultOp::kSyncFolder, IsMetadataPath(path))) {
    return Status::Error(error, "sync the folder of " + path + ": injected fault (test)");
  }
  CORFS_RETURN_IF_ERROR(real_->SyncParentDirectory(path));
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  std::erase_if(model_->renames,
                [&](const auto& rename) { return std::filesystem::path(rename.second).parent_path() == folder; });
  return Status::Ok();
}

}  // namespace corfs::testing
