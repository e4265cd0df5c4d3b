#pragma once
// ParseJsonText: JSON text from outside corfs (a control client's line, a
// file a user may hand over) parsed with a limit on how deeply it nests.
//
// Why a limit: nlohmann's parser keeps its own stack, but a parsed value is
// copied and compared recursively, one call per level, so a line of 20 KB
// nested 10 000 deep overflowed the control thread's stack. Nothing corfs
// reads nests more than a few levels; QEMU's parser refuses depths above
// 1024 for the same reason.

#include <nlohmann/json.hpp>
#include <string_view>

namespace corfs {

enum class JsonText { kOk, kInvalid, kTooDeep };

inline constexpr int kMaxJsonDepth = 64;

// Parses `text` into `*out`. kInvalid: not JSON; kTooDeep: arrays and
// objects nested more than `max_depth` deep (not parsed). `*out` is set
// only on kOk.
JsonText ParseJsonText(std::string_view text, nlohmann::json* out, int max_depth = kMaxJsonDepth);

}  // namespace corfs
