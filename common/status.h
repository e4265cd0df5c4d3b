#pragma once
// Status: the outcome of an operation that can fail, carried as a value.
//
// The overlay and common layers never throw for expected failures (bad input,
// I/O errors): every fallible call returns a Status, in the style of LevelDB.
// A failed Status holds an errno value, so the FUSE layer can hand it to the
// kernel unchanged (EIO, ENOSPC, EROFS, ...), and a message for people.

#include <string>
#include <utility>

namespace corfs {

class [[nodiscard]] Status {
 public:
  Status() = default;

  static Status Ok() { return Status(); }
  // A failure with errno value `code` (must be non-zero) and a message.
  static Status Error(int code, std::string message) { return Status(code, std::move(message)); }
  // A failure built from the current errno, prefixed by `context`.
  static Status FromErrno(const std::string& context);
  // Shorthands for the common kinds of bad input.
  static Status Invalid(std::string message);   // EINVAL
  static Status Corrupt(std::string message);   // EUCLEAN: an on-disk structure is damaged
  static Status NotFound(std::string message);  // ENOENT

  bool ok() const { return code_ == 0; }
  int code() const { return code_; }
  const std::string& message() const { return message_; }

  // The same failure with `context` put in front of the message.
  Status WithContext(const std::string& context) const;

 private:
  Status(int code, std::string message) : code_(code), message_(std::move(message)) {}

  int code_ = 0;
  std::string message_;
};

// Returns from the enclosing function if `expr` yields a failed Status.
#define CORFS_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::corfs::Status corfs_status_ = (expr);        \
    if (!corfs_status_.ok()) return corfs_status_; \
  } while (0)

}  // namespace corfs
