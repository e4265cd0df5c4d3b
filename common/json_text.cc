#include "common/json_text.h"

#include <algorithm>

namespace corfs {

namespace {

// The deepest nesting of arrays and objects in `text`, counted without
// parsing: brackets inside strings do not count. Stops counting once past
// `limit`. Malformed text is the parser's to refuse.
int NestingDepth(std::string_view text, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

}  // namespace

JsonText ParseJsonText(std::string_view text, nlohmann::json* out, int max_depth) {
  if (NestingDepth(text, max_depth) > max_depth) return JsonText::kTooDeep;
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return JsonText::kInvalid;
  *out = std::move(parsed);
  return JsonText::kOk;
}

}  // namespace corfs
