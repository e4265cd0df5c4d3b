#include "cli/progress_display.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <vector>

#include "common/size.h"

namespace corfs::cli {

namespace {

// The bar itself gets at least kMinBar columns, else what follows it is
// cut down; and at most kMaxBar, so a wide terminal gets no wall of dots.
constexpr int kMinBar = 10;
constexpr int kMaxBar = 60;

uint64_t Field(const nlohmann::json& job, const char* name) { return job.value(name, uint64_t{0}); }

// Done and total in the job's own terms: bytes to copy when it says how many
// remain, else bytes of its range walked.
std::pair<uint64_t, uint64_t> DoneAndTotal(const nlohmann::json& job) {
  if (job.contains("remaining") && Field(job, "copied") + Field(job, "remaining") > 0) {
    return {Field(job, "copied"), Field(job, "copied") + Field(job, "remaining")};
  }
  return {Field(job, "offset"), Field(job, "len")};
}

// `text` cut to `width` bytes, not inside a UTF-8 sequence.
std::string Cut(std::string text, size_t width) {
  if (text.size() <= width) return text;
  size_t end = width;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text;
}

}  // namespace

int TerminalColumns() {
  winsize size{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

double ProgressPercent(const nlohmann::json& job) {
  const auto [done, total] = DoneAndTotal(job);
  if (total == 0) return 100.0;
  return std::min(100.0, 100.0 * static_cast<double>(done) / static_cast<double>(total));
}

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
  const double percent = ProgressPercent(job);
  const auto [done, total] = DoneAndTotal(job);
  char number[32];
  std::snprintf(number, sizeof number, "%5.1f%%", percent);
  const std::string name = job.value("device", std::string());
  const std::string bytes = FormatSize(done) + " / " + FormatSize(total);
  const std::string rate = FormatSize(static_cast<uint64_t>(job.value("rate", 0.0))) + "/s";
  const std::string eta = "ETA " + FormatEta(job.value("eta-seconds", -1.0));
  const std::string flags =
      std::string(job.value("resumed", false) ? "  (resumed)" : "") + (job.value("paused", false) ? "  (paused)" : "");
  // A stream replaying a boot profile: how far into the profile it is.
  const std::string profile = job.value("profile", false) ? "  profile " + FormatSize(Field(job, "profile-offset")) +
                                                                " / " + FormatSize(Field(job, "profile-len"))
                                                          : "";
  // What follows the bar, from the most to the least said.
  const std::vector<std::string> tails = {
      " " + name + "  " + number + "  " + bytes + "  " + rate + "  " + eta + profile + flags,
      " " + name + "  " + number + "  " + rate + "  " + eta + flags,
      " " + name + "  " + number + "  " + eta + flags,
      " " + name + " " + number,
      std::string(" ") + number,
  };
  const size_t columns = static_cast<size_t>(std::max(width, 0));
  for (const std::string& tail : tails) {
    if (tail.size() + 2 + kMinBar > columns) continue;
    const int length = std::min<int>(kMaxBar, static_cast<int>(columns - tail.size() - 2));
    const int filled = std::clamp(static_cast<int>(std::lround(percent / 100.0 * length)), 0, length);
    return "[" + std::string(filled, '#') + std::string(length - filled, '.') + "]" + tail;
  }
  return Cut(name + " " + number, columns);
}

// New keys go at the end, after the ones scripts already split.
std::string ProgressLine(const nlohmann::json& job) {
  const std::string remaining = job.contains("remaining") ? std::to_string(Field(job, "remaining")) : "-";
  char text[384];
  std::snprintf(text, sizeof text,
                "job=%s image=%s status=%s offset=%" PRIu64 " len=%" PRIu64
                " percent=%.1f rate=%.0f eta=%.0f speed=%" PRIu64 " copied=%" PRIu64 " remaining=%s resumed=%d",
                job.value("device", std::string()).c_str(), job.value("image", std::string()).c_str(),
                job.value("status", std::string()).c_str(), Field(job, "offset"), Field(job, "len"),
                ProgressPercent(job), job.value("rate", 0.0), job.value("eta-seconds", -1.0), Field(job, "speed"),
                Field(job, "copied"), remaining.c_str(), job.value("resumed", false) ? 1 : 0);
  std::string line = text;
  // A stream replaying a boot profile (query-block-jobs' "profile"): how far
  // into it; only then, so the lines of other jobs are as they were.
  if (job.value("profile", false)) {
    line += " profile=1 profile-offset=" + std::to_string(Field(job, "profile-offset")) +
            " profile-len=" + std::to_string(Field(job, "profile-len"));
  }
  return line;
}

std::string JobSummary(const std::string& event, const nlohmann::json& data) {
  std::string outcome = "completed";
  if (event == "BLOCK_JOB_CANCELLED") {
    outcome = "cancelled";
  } else if (data.contains("error")) {
    outcome = "failed (" + data.value("error", std::string()) + ")";
  }
  if (data.value("resumed", false)) outcome = "(resumed) " + outcome;
  return "job " + data.value("device", std::string()) + " " + outcome + " in " +
         FormatEta(data.value("elapsed-seconds", 0.0)) + ": " + FormatSize(Field(data, "copied")) + " copied, " +
         FormatSize(Field(data, "holes")) + " holes, " + FormatSize(Field(data, "local")) + " local, " +
         FormatSize(static_cast<uint64_t>(data.value("average-rate", 0.0))) + "/s average";
}

}  // namespace corfs::cli
