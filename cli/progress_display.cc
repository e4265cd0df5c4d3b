#include "cli/progress_display.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "common/size.h"

namespace corfs::cli {

namespace {
double Percent(const nlohmann::json& job) {
  uint64_t len = job.value("len", uint64_t{0});
  return len == 0 ? 100.0 : 100.0 * static_cast<double>(job.value("offset", uint64_t{0})) / static_cast<double>(len);
}
}  // namespace

std::string FormatEta(double seconds) {
  if (seconds < 0 || !std::isfinite(seconds)) return "--:--";
  const auto s = static_cast<uint64_t>(std::llround(seconds));
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
  }
  return text;
}

std::string ProgressBar(const nlohmann::json& job, int width) {
  const double percent = Percent(job);
  const int filled = static_cast<int>(std::lround(percent / 100.0 * width));
  std::string bar = "[" + std::string(std::max(0, std::min(width, filled)), '#') +
                    std::string(std::max(0, width - filled), '.') + "]";
  char text[256];
  std::snprintf(text, sizeof text, "%s %-10s %5.1f%%  %s / %s  %s/s  ETA %s%s", bar.c_str(),
                job.value("device", std::string()).c_str(), percent,
                FormatSize(job.value("offset", uint64_t{0})).c_str(), FormatSize(job.value("len", uint64_t{0})).c_str(),
                FormatSize(static_cast<uint64_t>(job.value("rate", 0.0))).c_str(),
                FormatEta(job.value("eta-seconds", -1.0)).c_str(), job.value("paused", false) ? "  (paused)" : "");
  return text;
}

std::string ProgressLine(const nlohmann::json& job) {
  char text[320];
  std::snprintf(text, sizeof text,
                "job=%s image=%s status=%s offset=%" PRIu64 " len=%" PRIu64
                " percent=%.1f rate=%.0f eta=%.0f speed=%" PRIu64,
                job.value("device", std::string()).c_str(), job.value("image", std::string()).c_str(),
                job.value("status", std::string()).c_str(), job.value("offset", uint64_t{0}),
                job.value("len", uint64_t{0}), Percent(job), job.value("rate", 0.0), job.value("eta-seconds", -1.0),
                job.value("speed", uint64_t{0}));
  return text;
}

}  // namespace corfs::cli
