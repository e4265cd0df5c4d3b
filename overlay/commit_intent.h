#pragma once
// CommitIntent: the record a commit job (jobs/commit_driver.h) leaves beside
// the base it writes into, BASE.corfs-commit, for as long as the base and
// the headers that record its identity may disagree.
//
// A commit changes the base's bytes first and rewrites the identity each
// overlay of the mount records for it afterwards, one header at a time. A
// crash in between leaves headers whose recorded identity refuses the
// changed base. Before its first write into the base, the commit copies
// every cluster it will change into each of those overlays (so they read
// the same whatever the base holds there) and writes this record: the
// base's identity before the commit, and the overlays so prepared. At open,
// an overlay named here whose header records that old identity accepts the
// base whatever it holds now (overlay_open.cc), with a warning; any other
// overlay over the base is checked as always, and refused when the change
// shows. The commit removes the record once every header holds the new
// identity.
//
// The record is a small JSON file written atomically (temporary file,
// fsync, rename, fsync of the folder) and checked by an XXH3-64 checksum;
// a record that does not parse is ignored (the identity check then decides).
//
// Threading: plain functions on files; callers serialize per base.

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "overlay/image_identity.h"

namespace corfs::overlay {

struct CommitIntent {
  ImageIdentity old_identity;         // the base before the commit (size, sampled fingerprint)
  std::vector<std::string> overlays;  // absolute paths (NAME) of the overlays prepared for it
  // The base's identities before earlier commits that did not finish: a
  // commit run again keeps them (MergeUnfinished), since an overlay it
  // prepared may still record one of them (it opened through the earlier
  // record, and holds what that commit changed as well).
  std::vector<ImageIdentity> earlier_identities;

  // Takes over the identities `unfinished` (the record a commit cut short
  // left) vouches for. Only this commit's overlays are named: one that
  // only the earlier commit prepared lacks what this one changes.
  void MergeUnfinished(const CommitIntent& unfinished);

  // Whether an overlay at `overlay_path` that records `recorded` for the
  // base may open over it while this record stands.
  bool Covers(const std::string& overlay_path, const ImageIdentity& recorded) const;
};

// BASE.corfs-commit
std::string CommitIntentPath(const std::string& base_path);

// Writes the record durably (the folder synced too).
Status WriteCommitIntent(const std::string& base_path, const CommitIntent& intent);
// The record beside `base_path`, or nullopt when there is none or it does
// not parse (it is then no reason to accept anything).
std::optional<CommitIntent> ReadCommitIntent(const std::string& base_path);
// Whether the overlay NAME `overlay_path`, whose header records `recorded`
// for the base at `base_path`, may use that base whatever it holds now: a
// record beside the base covers it (a commit cut short prepared it). If so,
// `*why` says so, for a warning (open) or a note (check).
bool CoveredByUnfinishedCommit(const std::string& base_path, const std::string& overlay_path,
                               const ImageIdentity& recorded, std::string* why);
// Removes the record (and syncs the folder); no record is no error.
Status RemoveCommitIntent(const std::string& base_path);

}  // namespace corfs::overlay
