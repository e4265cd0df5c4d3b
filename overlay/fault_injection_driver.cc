#include "overlay/fault_injection_driver.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/size.h"

namespace corfs::overlay {

namespace {

bool ErrnoByName(const std::string& name, int* out) {
  static const std::pair<const char*, int> kNames[] = {
      {"EIO", EIO}, {"ENOSPC", ENOSPC}, {"EPERM", EPERM}, {"ENOMEM", ENOMEM}, {"EINVAL", EINVAL}};
  for (const auto& [text, code] : kNames) {
    if (name == text) {
      *out = code;
      return true;
    }
  }
  return false;
}

}  // namespace

Status FaultInjectionDriver::Open(const std::string& path, const ImageOpener& opener,
                                  std::unique_ptr<BlockDriver>* out) {
  std::ifstream file(path);
  if (!file) return Status::FromErrno("open blkdebug rules " + path);
  std::string image, format;
  std::vector<Rule> rules;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    std::istringstream words(line);
    std::string keyword;
    if (!(words >> keyword) || keyword[0] == '#') continue;
    if (keyword == "image") {
      words >> image;
    } else if (keyword == "format") {
      words >> format;
    } else if (keyword == "read-error") {
      std::string offset, length, error = "EIO";
      int64_t count = 0;
      words >> offset >> length;
      if (!(words >> error)) error = "EIO";
      if (!(words >> count)) count = 0;
      Rule rule;
      Status parsed = ParseSize(offset, &rule.offset);
      if (parsed.ok()) parsed = ParseSize(length, &rule.length);
      if (!parsed.ok()) return Status::Invalid(where + parsed.message());
      if (!ErrnoByName(error, &rule.error)) return Status::Invalid(where + "unknown errno name '" + error + "'");
      rule.remaining = std::make_unique<std::atomic<int64_t>>(count > 0 ? count : -1);
      rules.push_back(std::move(rule));
    } else {
      return Status::Invalid(where + "unknown keyword '" + keyword + "' (image, format, read-error)");
    }
  }
  if (image.empty()) return Status::Invalid(path + ": no `image` line");
  if (std::filesystem::path(image).is_relative()) {
    image = (std::filesystem::path(path).parent_path() / image).lexically_normal().string();
  }
  std::unique_ptr<BlockDriver> inner;
  CORFS_RETURN_IF_ERROR(opener(image, format, &inner));
  out->reset(new FaultInjectionDriver(std::move(inner), std::move(rules)));
  return Status::Ok();
}

Status FaultInjectionDriver::Read(uint64_t offset, std::span<char> buf) {
  for (Rule& rule : rules_) {
    if (offset >= rule.offset + rule.length || offset + buf.size() <= rule.offset) continue;
    int64_t left = rule.remaining->load();
    while (left != 0) {
      if (left < 0 || rule.remaining->compare_exchange_weak(left, left - 1)) {
        return Status::Error(rule.error, "injected " + std::string(std::strerror(rule.error)) + " reading " + path() +
                                             " at " + std::to_string(offset));
      }
    }
  }
  return ForwardingDriver::Read(offset, buf);
}

}  // namespace corfs::overlay
