#pragma once
// ChainResolver: turns `backing:` values and `templates:` into chains of
// backing images, top first.
//
// An entry of a chain is written as
//   NAME                       a template (if one is called NAME), else a path
//   {path: P, format: F}       a path, with a format ("" or "auto" = detect)
//   {template: NAME}           a template, explicitly
// and a chain as one entry or a list of entries. A template expands to its
// own chain, so templates may stack (a delta over a base template). Every
// file must exist (stat); a template that reaches itself, or a chain that
// holds one file twice (same device and inode, so links and symlinks count
// as the same file), is refused. A URI (nbd://, http://, ...) is a name, not
// a path: it is neither made absolute nor stat'ed, and two entries are the
// same image when their names are the same. A URI's user information
// (user:password@) is split off into the credentials of RemoteOptions: the
// chain holds the URI without it.

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/file_id.h"
#include "config/yaml_reader.h"
#include "overlay/overlay.h"

namespace corfs::config {

// One image of a resolved chain: the spec that goes into the mount
// description, and what resolving it learnt on the way.
struct ResolvedImage {
  overlay::ImageSpec spec;  // absolute, lexically normal path; format "" = detect
  FileId file;              // which file it is (templates that reach one file twice are refused)
  YAML::Mark mark;          // where the path was written
  // Set when the file does not exist: the message to report. The caller
  // reports it unless the chain is no longer needed (a standalone overlay,
  // whose template may be deleted).
  std::string missing;

  // The same file (device and inode), or the same name for a URI or a
  // missing file.
  bool SameImage(const ResolvedImage& other) const;
};

class ChainResolver {
 public:
  // URIs with user information are recorded redacted; their credentials go
  // to `remote` (RemoteOptions::uri_credentials).
  ChainResolver(std::string base_dir, Diagnostics& diag, overlay::RemoteOptions* remote)
      : base_dir_(std::move(base_dir)), diag_(diag), remote_(remote) {}

  // Takes the entries of the `templates:` map and expands each one, so that
  // a mistake in a template is reported once, even if no image uses it.
  void AddTemplates(const std::vector<MapEntry>& templates);

  // The chain of a `backing:` value. An empty value or list is an empty
  // chain. Returns false when something was wrong (already reported).
  bool Resolve(const Field& backing, std::vector<ResolvedImage>* out);

  // stat() of `path`: false, with an error at `field`, when it fails or is
  // neither a regular file nor a block device.
  bool Identify(const std::string& path, const Field& field, FileId* out);

  bool HasTemplate(const std::string& name) const { return templates_.count(name) != 0; }

  // Reports the missing files of templates that no image used (those of
  // used templates were the images' to report).
  void ReportMissingInUnusedTemplates();

 private:
  enum class State { kPending, kExpanding, kDone, kFailed };
  struct Template {
    Field definition;
    State state = State::kPending;
    bool used_by_image = false;
    std::vector<ResolvedImage> links;
  };
  struct StatResult {
    bool known = false;
    int error = 0;  // errno of stat, or EISDIR / EINVAL for a wrong kind of file
    FileId file;
  };

  // The chain of a value; `stack` is the templates being expanded around it.
  bool ResolveValue(const Field& value, std::vector<std::string>& stack, std::vector<ResolvedImage>* out);
  // An image on a server: its scheme is checked, nothing else.
  bool AddUri(const std::string& text, const std::string& format, const Field& field, std::vector<ResolvedImage>* out);
  // The links of one entry of a chain.
  bool ResolveEntry(const Field& entry, std::vector<std::string>& stack, std::vector<ResolvedImage>* out);
  bool ExpandTemplate(const std::string& name, const Field& reference, std::vector<std::string>& stack,
                      std::vector<ResolvedImage>* out);
  bool AddPath(const std::string& text, const std::string& format, const Field& field, bool maybe_template,
               std::vector<ResolvedImage>* out);
  // "; templates: a, b" (or "; no templates are defined"), to end a message.
  std::string TemplateNames() const;

  std::string base_dir_;
  bool resolving_image_ = false;  // inside Resolve: templates met are used
  Diagnostics& diag_;
  overlay::RemoteOptions* remote_;
  std::map<std::string, Template> templates_;
  std::map<std::string, StatResult> stat_cache_;
};

}  // namespace corfs::config
