#pragma once
// Text as people type it into configuration files and command lines.

#include <cctype>
#include <string_view>

namespace corfs {

// `text` without the white space around it: " 10G\n" -> "10G".
inline std::string_view TrimSpace(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

}  // namespace corfs
