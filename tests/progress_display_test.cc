// The CLI's progress display: a bar never wider than the width it is given
// (the terminal's), whatever the job says; 100% from the data of a job that
// completed; percent in bytes to copy when the job says how many remain; and
// the summary line of a job that ended.

#include "cli/progress_display.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace corfs::cli {
namespace {

nlohmann::json Running(const std::string& name) {
  return {{"device", name},        {"status", "running"},   {"len", 100ull << 30},
          {"offset", 52ull << 30}, {"copied", 1ull << 30},  {"remaining", 3ull << 30},
          {"rate", 2097152.0},     {"eta-seconds", 1536.0}, {"speed", 2097152}};
}

TEST(ProgressDisplay, TheBarNeverExceedsTheWidth) {
  nlohmann::json paused = Running("disk.img");
  paused["paused"] = true;
  nlohmann::json huge = Running(std::string(150, 'x'));
  huge["copied"] = UINT64_MAX / 4;
  nlohmann::json unicode = Running("диск-номер-один.img");
  nlohmann::json resumed = paused;
  resumed["resumed"] = true;
  for (const nlohmann::json& job : {Running("disk.img"), paused, huge, unicode, resumed}) {
    for (int width : {40, 80, 200, 20, 5, 0}) {
      SCOPED_TRACE(job.value("device", std::string()) + " at width " + std::to_string(width));
      const std::string bar = ProgressBar(job, width);
      EXPECT_LE(bar.size(), static_cast<size_t>(width)) << bar;
      EXPECT_EQ(bar.find('\n'), std::string::npos);
    }
  }
  // The widths a terminal has: the bar is there, and more is said when
  // there is room for it.
  const nlohmann::json job = Running("disk.img");
  EXPECT_EQ(ProgressBar(job, 40).front(), '[');
  EXPECT_NE(ProgressBar(job, 40).find("25.0%"), std::string::npos);
  EXPECT_NE(ProgressBar(job, 80).find("ETA 25:36"), std::string::npos) << ProgressBar(job, 80);
  EXPECT_NE(ProgressBar(job, 200).find("1 GiB / 4 GiB"), std::string::npos) << ProgressBar(job, 200);
  EXPECT_NE(ProgressBar(paused, 80).find("(paused)"), std::string::npos) << ProgressBar(paused, 80);
  EXPECT_NE(ProgressBar(resumed, 200).find("(resumed)  (paused)"), std::string::npos) << ProgressBar(resumed, 200);
  EXPECT_NE(ProgressLine(resumed).find(" resumed=1"), std::string::npos) << ProgressLine(resumed);
}

TEST(ProgressDisplay, AStreamReplayingABootProfileSaysHowFarIntoItItIs) {
  nlohmann::json job = Running("disk.img");
  EXPECT_EQ(ProgressLine(job).find("profile"), std::string::npos) << "no profile: the line as it was";
  EXPECT_EQ(ProgressBar(job, 200).find("profile"), std::string::npos);
  job["profile"] = true;
  job["profile-offset"] = 12ull << 20;
  job["profile-len"] = 18ull << 20;
  const std::string line = ProgressLine(job);
  EXPECT_NE(line.find(" resumed=0 profile=1 profile-offset=12582912 profile-len=18874368"), std::string::npos)
      << "new keys at the end: " << line;
  EXPECT_NE(ProgressBar(job, 200).find("profile 12 MiB / 18 MiB"), std::string::npos) << ProgressBar(job, 200);
  for (int width : {200, 80, 40, 5}) EXPECT_LE(ProgressBar(job, width).size(), static_cast<size_t>(width));
}

TEST(ProgressDisplay, PercentCountsBytesToCopyWhenTheJobSaysWhatRemains) {
  nlohmann::json job = Running("disk.img");
  EXPECT_DOUBLE_EQ(ProgressPercent(job), 25.0) << "1 GiB copied of 4 GiB, not 52 GiB walked of 100";
  job.erase("remaining");
  EXPECT_DOUBLE_EQ(ProgressPercent(job), 52.0) << "no estimate: QEMU's offset/len";
}

TEST(ProgressDisplay, ACompletedJobIsDrawnFull) {
  // The data of BLOCK_JOB_COMPLETED: nothing remains.
  const nlohmann::json done = {{"device", "disk.img"}, {"len", 100ull << 30},     {"offset", 100ull << 30},
                               {"copied", 4ull << 30}, {"remaining", 0},          {"holes", 96ull << 30},
                               {"local", 0},           {"elapsed-seconds", 24.0}, {"average-rate", 178956970.0}};
  EXPECT_DOUBLE_EQ(ProgressPercent(done), 100.0);
  for (int width : {40, 80, 200}) {
    const std::string bar = ProgressBar(done, width);
    EXPECT_NE(bar.find("100.0%"), std::string::npos) << bar;
    EXPECT_EQ(bar.substr(0, bar.find(']')).find('.'), std::string::npos) << "no empty cell: " << bar;
  }
  const nlohmann::json nothing = {{"device", "disk.img"}, {"len", 0}, {"offset", 0}, {"copied", 0}, {"remaining", 0}};
  EXPECT_DOUBLE_EQ(ProgressPercent(nothing), 100.0);

  EXPECT_EQ(JobSummary("BLOCK_JOB_COMPLETED", done),
            "job disk.img completed in 0:24: 4 GiB copied, 96 GiB holes, 0 B local, 170.7 MiB/s average");
  nlohmann::json failed = done;
  failed["error"] = "Input/output error";
  EXPECT_EQ(JobSummary("BLOCK_JOB_COMPLETED", failed).rfind("job disk.img failed (Input/output error) in 0:24", 0), 0u);
  EXPECT_EQ(JobSummary("BLOCK_JOB_CANCELLED", done).rfind("job disk.img cancelled in 0:24", 0), 0u);
}

}  // namespace
}  // namespace corfs::cli
