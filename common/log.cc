#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace corfs {

Status ParseLogLevel(const std::string& word, spdlog::level::level_enum* out) {
  static constexpr struct {
    const char* word;
    spdlog::level::level_enum level;
  } kLevels[] = {{"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
                 {"warn", spdlog::level::warn},   {"error", spdlog::level::err},   {"off", spdlog::level::off}};
  for (const auto& entry : kLevels) {
    if (word == entry.word) {
      *out = entry.level;
      return Status::Ok();
    }
  }
  return Status::Invalid("log level '" + word + "': expected " + kLogLevelWords);
}

std::shared_ptr<spdlog::logger> MakeDaemonLogger(spdlog::level::level_enum level) {
  // The stderr sink that takes a lock: lines of several threads stay whole.
  auto logger = std::make_shared<spdlog::logger>("corfs", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  // ISO 8601 local time with milliseconds and offset, then the level.
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");
  logger->set_level(level);
  spdlog::set_default_logger(logger);
  return logger;
}

}  // namespace corfs
