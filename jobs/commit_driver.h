#pragma once
// CommitDriver: the driver of a commit job (jobs/job_driver.h), in the
// manner of QEMU's block/commit.c. It writes what the images of an
// overlay's chain from `top` down to just above `base` hold into `base`, a
// raw file of the chain opened writable for the commit alone, then removes
// those images from the chain, so the overlay reads the same.
//
// The safe commit: other images of the mount whose chains contain `base`
// (siblings) would see their disks change. Before the first write into the
// base, the clusters the commit will change are copied into each sibling's
// own overlay (Overlay::Populate, then a flush), so every sibling reads
// what it read before whatever the base holds. The order of steps, each
// durable before the next, is what makes a crash at any point harmless
// (docs/design.md, "The commit driver"):
//   1. plan the runs to commit; populate them into every sibling; flush;
//   2. write the commit intent beside the base (overlay/commit_intent.h):
//      the base's old identity and every overlay so prepared;
//   3. write the runs into the base; fdatasync it;
//   4. (Prepare) each sibling's header records the base's new identity;
//      then the committed overlay's header drops [top, base) and records it,
//      one header update each;
//   5. remove the intent.
// A cancel or an error after step 2 (Abort) records the base's new
// identity in every header without dropping layers (the layers above the
// base still hold what was written into it) and removes the intent.
//
// An active commit (no top: the overlay itself, with every image above the
// base) goes through READY like a mirror: a write hook marks guest writes
// in a DirtyBitmap; the overlay's clusters and the upper images' runs are
// marked at the start and copied (siblings populated first, per run), then
// what got dirty again, until nothing is left: the base is synced and the
// job is READY; it keeps copying what the guest writes. Complete (the
// user's block-job-complete) makes the hook hold guest writes back, the
// last dirty runs are copied and the base synced; Prepare records the
// identities, drops every image above the base from the chain, forgets
// the overlay's clusters (Overlay::ForgetLocalClusters: each reads the same
// from the base now) and lets the writes go. Afterwards the overlay holds
// nothing and reads through to the base.
//
// Threading: as JobDriver's. The siblings must outlive the job (the caller
// keeps them by `keep`).

#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "jobs/job_driver.h"
#include "overlay/overlay.h"

namespace corfs::jobs {

struct CommitOptions {
  // The image of the chain whose data (with everything between it and the
  // base) is committed; nullopt: the overlay itself (an active commit).
  std::optional<std::string> top;
  // The raw image written into; nullopt: the bottom of the chain.
  std::optional<std::string> base;
  // Tests only: the daemon _exits right after step N (1..6: siblings
  // populated, intent written, half the runs written, base synced, siblings'
  // headers rewritten, committed header rewritten), to test crash safety.
  int exit_after_step = 0;
};

// Another image of the mount, which the commit keeps reading what it read.
struct CommitSibling {
  std::string name;
  overlay::Overlay* overlay = nullptr;
  std::shared_ptr<const void> keep;  // keeps `overlay` alive while the job runs
};

class CommitDriver final : public JobDriver {
 public:
  // Checks everything before any job exists, changing nothing: the top and
  // the base in the chain, top above base, the base a local raw file that
  // opens for writing and is at least the disk's size, the siblings over it
  // writable. `image` names the overlay in errors; `others` are the other
  // images of the mount (those over the base are picked from them).
  static Status Make(overlay::Overlay& overlay, const std::string& image, const CommitOptions& options,
                     std::vector<CommitSibling> others, std::unique_ptr<CommitDriver>* out);

  std::string_view type() const override { return "commit"; }
  Status Run(JobContext& job) override;
  Status Prepare(JobContext& job) override;
  void Abort(JobContext& job) override;
  void Clean(JobContext& job) override;
  void Complete() override { complete_requested_.store(true); }
  // The siblings, as JobInfo::other_images.
  void Describe(JobInfo& info) const override;

 private:
  struct Run_ {
    uint64_t offset;
    uint64_t length;
  };

  CommitDriver(overlay::Overlay& overlay, std::string image, const CommitOptions& options, bool active, size_t top,
               size_t base, std::string base_path, UniqueFd base_fd, std::vector<CommitSibling> siblings);

  class ActiveHook;

  Status Plan(JobContext& job);
  void AddRun(uint64_t offset, uint64_t length);
  Status PrepareSiblings(JobContext& job);
  Status WriteRuns(JobContext& job);
  // Active commit: the loop up to READY and on to Complete.
  Status RunActive(JobContext& job);
  // Copies every dirty run (siblings first); false in *cancelled on a cancel.
  Status CopyDirty(JobContext& job, bool* cancelled);
  // Makes every sibling hold [offset, offset+length) durably.
  Status KeepSiblings(JobContext& job, uint64_t offset, uint64_t length);
  // Reads the disk above the base: the overlay's clusters, else the chain.
  Status ReadAboveBase(uint64_t offset, std::span<char> buf);
  // The base's identity now (content hash too when a header records one).
  Status BaseIdentity(overlay::ImageIdentity* out) const;
  // Steps 4 and 5; `drop_layers` false records the identity only (Abort).
  Status RecordIdentities(bool drop_layers);
  void MaybeExit(int step) const;

  overlay::Overlay& overlay_;
  const std::string image_;
  const size_t top_;   // index in the chain of the top image
  const size_t base_;  // index in the chain of the base
  const std::string base_path_;
  UniqueFd base_fd_;
  const std::vector<CommitSibling> siblings_;
  const int exit_after_step_;
  const bool active_;
  std::shared_ptr<ActiveHook> hook_;  // active commit: installed while the job runs
  std::atomic<bool> complete_requested_{false};
  std::shared_ptr<overlay::BackingChain> chain_;  // the chain as the job found it
  std::vector<Run_> runs_;
  bool intent_written_ = false;
};

}  // namespace corfs::jobs
