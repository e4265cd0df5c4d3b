#include "overlay/image_location.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace corfs::overlay {

namespace {

// RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
size_t SchemeLength(std::string_view name) {
  if (name.empty() || std::isalpha(static_cast<unsigned char>(name[0])) == 0) return 0;
  size_t i = 1;
  while (i < name.size() && (std::isalnum(static_cast<unsigned char>(name[i])) != 0 || name[i] == '+' ||
                             name[i] == '-' || name[i] == '.')) {
    ++i;
  }
  return name.substr(i, 3) == "://" ? i : 0;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

bool IsUri(std::string_view name) { return SchemeLength(name) != 0; }

Status ParseProtocol(std::string_view name, Protocol* out) {
  const size_t length = SchemeLength(name);
  if (length == 0) {
    *out = Protocol::kFile;
    return Status::Ok();
  }
  const std::string scheme = Lower(name.substr(0, length));
  static constexpr std::array<std::string_view, 4> kNbd = {"nbd", "nbds", "nbd+unix", "nbds+unix"};
  if (std::find(kNbd.begin(), kNbd.end(), scheme) != kNbd.end()) {
    *out = Protocol::kNbd;
    return Status::Ok();
  }
  if (scheme == "http" || scheme == "https") {
    *out = Protocol::kHttp;
    return Status::Ok();
  }
  return Status::Invalid(RedactCredentials(name) + ": scheme '" + scheme +
                         "' is not supported (nbd, nbds, nbd+unix, nbds+unix, http, https; or a path)");
}

std::string RedactCredentials(std::string_view name) {
  const size_t scheme = SchemeLength(name);
  if (scheme == 0) return std::string(name);
  const size_t authority = scheme + 3;
  const size_t end = std::min(name.find_first_of("/?#", authority), name.size());
  const size_t at = name.substr(authority, end - authority).rfind('@');
  if (at == std::string_view::npos) return std::string(name);
  return std::string(name.substr(0, authority)) + std::string(name.substr(authority + at + 1));
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 && HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace

UriUserInfo UserInfoOf(std::string_view name) {
  UriUserInfo info;
  const size_t scheme = SchemeLength(name);
  if (scheme == 0) return info;
  const size_t authority = scheme + 3;
  const size_t end = std::min(name.find_first_of("/?#", authority), name.size());
  const std::string_view host_part = name.substr(authority, end - authority);
  const size_t at = host_part.rfind('@');
  if (at == std::string_view::npos) return info;
  const std::string_view userinfo = host_part.substr(0, at);
  const size_t colon = userinfo.find(':');
  info.has = true;
  info.user = PercentDecode(userinfo.substr(0, colon));
  if (colon != std::string_view::npos) info.password = PercentDecode(userinfo.substr(colon + 1));
  return info;
}

}  // namespace corfs::overlay
