#pragma once
// FaultyFileSystem: the overlay's FileSystem (overlay/file_system.h) for
// tests, over the real one, that fails chosen calls and models a power cut.
//
// Faults: the Nth write, punch, sync, rename or folder sync from now on the
// data file (NAME, NAME.part), the metadata file (NAME.cor and its .tmp) or
// either fails with an errno, and so do the `times` - 1 calls of that kind
// after it (a rename counts for the file it renames, a folder sync for the
// file whose entry it makes durable). A failing rename or folder sync
// changes nothing. A failing write first
// writes the first half of its range (rounded down to 4 KiB), as a write
// that runs out of space does. A copy into the file (copy_file_range)
// counts as a write; when it fails it copies nothing, as the kernel's does.
//
// Power cut (Crash): per file, every 4 KiB block changed since the last sync
// that succeeded keeps its content from before the change; Crash puts those
// contents back, which is what the disk holds when the page cache is gone.
// Copies made inside the kernel are recorded the same way. A failed sync is
// what the kernel does after a writeback error: the blocks it covered stay
// lost even when a later sync succeeds, until they are written again.
// After Crash every file opened before it fails every call with EIO (the
// machine is gone); files opened later work. A rename whose folder was not
// synced since (SyncParentDirectory that succeeded) is undone by Crash.
// File sizes, new files and removals are not modelled (they change only
// while an overlay is created, which syncs both).
//
// Syncs that succeed do not reach the disk: the model is the durability.
//
// Threading: every method may be called from several threads at once (one
// lock around each call).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "overlay/file_system.h"

namespace corfs::testing {

enum class FaultOp { kWrite, kPunch, kSync, kRename, kSyncFolder };
enum class FaultTarget { kDataFile, kMetadataFile, kAnyFile };

class FaultyFileSystem final : public overlay::FileSystem {
 public:
  static constexpr uint64_t kForever = UINT64_MAX;

  FaultyFileSystem();
  ~FaultyFileSystem() override;

  // The `nth` call (1: the next) of `op` on `target` from now fails with
  // `error`, and so do the `times` - 1 such calls after it.
  void FailNth(FaultOp op, FaultTarget target, uint64_t nth, int error, uint64_t times = 1);
  void ClearFaults();

  // Bytes (in whole 4 KiB blocks) of the files changed and not yet durable.
  uint64_t UnsyncedBytes(FaultTarget target) const;

  // The power cut described above.
  void Crash();

  Status Open(const std::string& path, overlay::OpenMode mode, std::unique_ptr<overlay::File>* out) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncParentDirectory(const std::string& path) override;

  // For the files (faulty_file_system.cc).
  struct Model;

 private:
  std::shared_ptr<Model> model_;
  std::shared_ptr<overlay::FileSystem> real_ = overlay::DefaultFileSystem();
};

}  // namespace corfs::testing
