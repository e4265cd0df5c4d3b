#pragma once
// Logging of the daemon (`corfs mount`): spdlog, one line per event with the
// time and the level, on stderr. Client commands do not log; they print
// "corfs: message" (cli::Fail).
//
// The mount makes one logger (MakeDaemonLogger) before any of its threads
// start and passes it to what it builds; the FUSE callbacks, which reach
// nothing but the image table, log through spdlog's default logger, which
// the mount sets to the same logger. Nothing changes either afterwards.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "common/status.h"

namespace corfs {

// The --log-level words, least to most severe: trace, debug, info, warn,
// error, off.
inline constexpr const char* kLogLevelWords = "trace, debug, info, warn, error or off";
Status ParseLogLevel(const std::string& word, spdlog::level::level_enum* out);

// A logger named "corfs" writing "TIME LEVEL message" lines to stderr at
// `level` and above; also made spdlog's default logger.
std::shared_ptr<spdlog::logger> MakeDaemonLogger(spdlog::level::level_enum level);

}  // namespace corfs
