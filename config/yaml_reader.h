#pragma once
// Reading typed values out of a parsed YAML document, with the position of
// every mistake. The helpers of the config loader.
//
// Nothing here throws or stops at the first problem: a reader checks the
// node, records "FILE:LINE:COLUMN: key.path: what is wrong" in a Diagnostics
// and returns false, so one run reports every mistake of a file.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/status.h"

namespace corfs::config {

// The errors found in one YAML file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string source_name) : source_(std::move(source_name)) {}

  // "FILE:LINE:COLUMN" (1-based; yaml-cpp counts from 0), or "FILE" for a
  // mark without a position.
  std::string Where(const YAML::Mark& mark) const;
  // Records "WHERE: message", unless recorded already. `code` is the errno
  // of the final Status when this is the first error (in file order).
  void Error(const YAML::Mark& mark, const std::string& message, int code = EINVAL);

  bool has_errors() const { return !errors_.empty(); }
  size_t error_count() const { return errors_.size(); }
  // OK when nothing was recorded; else every error in file order, one a line
  // (at most kMaxShown, then how many more).
  Status ToStatus() const;

  static constexpr size_t kMaxShown = 30;

 private:
  struct Entry {
    int line;
    int column;
    std::string text;
    int code;
  };
  std::string source_;
  std::vector<Entry> errors_;
};

// One value to read: the node, where to report a problem with it, and its
// place in the document for messages ("images.vm1.size").
struct Field {
  YAML::Node node;
  YAML::Mark mark;
  std::string what;

  Field() = default;
  Field(const YAML::Node& n, const YAML::Mark& m, std::string w) : node(n), mark(m), what(std::move(w)) {}
  Field(const Field&) = default;
  // YAML::Node's assignment writes through to the node it is bound to (it
  // would change the document); rebind instead.
  Field& operator=(const Field& other) {
    node.reset(other.node);
    mark = other.mark;
    what = other.what;
    return *this;
  }
};

// A key of a map and its value.
struct MapEntry {
  std::string key;
  YAML::Mark key_mark;
  Field value;  // value.what is "<parent>.<key>"; value.mark is the key's for an empty value
};

// Parses `text`, which must hold one YAML document (or none: *out is then
// null). Malformed YAML and a second document are recorded as errors, with
// false returned.
//
// Not YAML::LoadAll: up to yaml-cpp 0.8, a stray ',' at the top of a document
// makes it return a null document forever without moving on, allocating
// until memory runs out (jbeder/yaml-cpp#1040, fixed by #1319); YAML::Load
// alone silently reads such a file as null. So the documents are first
// counted by a parser driven a bounded number of times, which also notices
// one that does not advance, and only then YAML::Load builds the nodes.
bool LoadSingleDocument(const std::string& text, Diagnostics& diag, YAML::Node* out);

// How a node reads in a message: "a map", "a list", "nothing", "'text'".
std::string Describe(const YAML::Node& node);

// `parent` + "." + `key`, or `key` at the top.
std::string JoinWhat(const std::string& parent, const std::string& key);

// The entries of a map in file order. Keys must be scalars and distinct (a
// repeated key is reported, and its later values skipped); with a non-empty
// `allowed`, other keys are reported and skipped. An empty value (null) reads
// as an empty map. Returns false, with an error, when the node is no map.
bool ReadMap(const Field& field, std::span<const std::string_view> allowed, Diagnostics& diag,
             std::vector<MapEntry>* out);

// The elements of a list; a single value reads as a list of one, an empty
// value as an empty list. Each element's what is "<what>[i]".
std::vector<Field> ListElements(const Field& field);

// A scalar as text (not empty unless `allow_empty`, no NUL character).
bool ReadString(const Field& field, Diagnostics& diag, std::string* out, bool allow_empty = false);
// true/false (also yes/no, on/off, any case).
bool ReadBool(const Field& field, Diagnostics& diag, bool* out);
// A size as corfs::ParseSize reads it: 65536, 64K, 10G, 1.5T.
bool ReadSize(const Field& field, Diagnostics& diag, uint64_t* out);
// A decimal integer in [0, max].
bool ReadUnsigned(const Field& field, uint64_t max, Diagnostics& diag, uint64_t* out);
// A duration: a whole number with a unit, ms, s, m or h ("500ms", "5s");
// a bare number is seconds. It must lie in [min, max].
bool ReadDuration(const Field& field, std::chrono::milliseconds min, std::chrono::milliseconds max, Diagnostics& diag,
                  std::chrono::milliseconds* out);
// Permission bits, always octal as in chmod: 0644, 644, "0o644"; at most 0777.
bool ReadMode(const Field& field, Diagnostics& diag, uint32_t* out);
// A path, made absolute against `base_dir` and lexically normal. "~" is not
// expanded, so a path starting with it is refused.
bool ReadPath(const Field& field, const std::string& base_dir, Diagnostics& diag, std::string* out);

// `path` made absolute against `base_dir` and lexically normal.
std::string ResolvePath(const std::string& base_dir, const std::string& path);

// The allowed words, for messages: "a, b or c".
std::string ListWords(std::span<const std::string_view> words, std::string_view last_joiner = " or ");
// The word of `words` closest to `word` when it is a likely typo, else "".
std::string_view Suggest(std::string_view word, std::span<const std::string_view> words);

}  // namespace corfs::config
