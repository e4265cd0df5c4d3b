#include "common/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/trim.h"

namespace corfs {

namespace {

int SuffixShift(std::string_view suffix) {
  std::string s;
  for (char c : suffix) s.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (s.empty() || s == "B") return 0;
  static constexpr std::string_view kUnits = "KMGTPE";
  if (s.size() == 1 || s == std::string(1, s[0]) + "B" || s == std::string(1, s[0]) + "IB") {
    size_t unit = kUnits.find(s[0]);
    if (unit != std::string_view::npos) return static_cast<int>(10 * (unit + 1));
  }
  return -1;
}

}  // namespace

Status ParseSize(std::string_view text, uint64_t* out) {
  const std::string_view s = TrimSpace(text);
  const std::string quoted = "'" + std::string(text) + "'";
  if (s.empty()) return Status::Invalid("empty size");
  if (s.front() == '-') return Status::Invalid("size " + quoted + " is negative");

  size_t digits_end = 0;
  bool seen_dot = false;
  while (digits_end < s.size() &&
         (std::isdigit(static_cast<unsigned char>(s[digits_end])) || (s[digits_end] == '.' && !seen_dot))) {
    seen_dot |= s[digits_end] == '.';
    ++digits_end;
  }
  std::string_view number = s.substr(0, digits_end);
  if (number.empty() || number == ".") {
    return Status::Invalid("size " + quoted + " is not a number (use e.g. 65536, 64K, 10G; " +
                           std::string(kSizeUnitsHelp) + ")");
  }
  // "10 G" as well as "10G": people copy sizes from tools that print a space.
  const std::string_view unit = TrimSpace(s.substr(digits_end));
  int shift = SuffixShift(unit);
  if (shift < 0) {
    return Status::Invalid("size " + quoted + " has an unknown unit '" + std::string(unit) + "' (" +
                           std::string(kSizeUnitsHelp) + ")");
  }

  long double value = std::strtold(std::string(number).c_str(), nullptr);
  value = std::ldexp(value, shift);
  if (value > static_cast<long double>(std::numeric_limits<uint64_t>::max())) {
    return Status::Invalid("size " + quoted + " is too large");
  }
  long double whole = std::floor(value);
  if (whole != value) return Status::Invalid("size " + quoted + " is not a whole number of bytes");
  *out = static_cast<uint64_t>(whole);
  return Status::Ok();
}

bool SizeHasUnit(std::string_view text) {
  const std::string_view s = TrimSpace(text);
  return !s.empty() && std::isalpha(static_cast<unsigned char>(s.back()));
}

std::string FormatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 6) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0 || value == std::floor(value)) {
    std::snprintf(text, sizeof text, "%.0f %s", value, kUnits[unit]);
  } else {
    std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  }
  return text;
}

}  // namespace corfs
