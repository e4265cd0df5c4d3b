#pragma once
// How the CLI shows a job's progress: on a terminal, a bar redrawn in place
// with percent, bytes, rate and ETA, fitted to the terminal's width; otherwise
// one plain line per update that a script can split on spaces and '='; and
// a summary line when a job ends. A stream that replays a boot profile
// also says how far into the profile it is (profile-offset of profile-len).
//
// Progress is counted in bytes to copy where the job says how many remain
// ("copied" and "remaining" of query-block-jobs), so that holes walked in a
// moment do not make the bar jump and then crawl; else in QEMU's offset/len.

#include <nlohmann/json.hpp>
#include <string>

namespace corfs::cli {

// The columns of the terminal on standard output, asked anew (TIOCGWINSZ)
// on every call so that each redraw follows a resize; 80 when there is no
// terminal to ask.
int TerminalColumns();

// The percent of `job` done (one entry of query-block-jobs, or the data of
// its final event).
double ProgressPercent(const nlohmann::json& job);
// A bar of at most `width` columns: the bar and what follows it shrink, and
// less is shown, as the width drops.
std::string ProgressBar(const nlohmann::json& job, int width);
std::string ProgressLine(const nlohmann::json& job);
// What a job did, from the data of its BLOCK_JOB_COMPLETED or
// BLOCK_JOB_CANCELLED event: "job ID completed in 0:24: 96 MiB copied, ...".
std::string JobSummary(const std::string& event, const nlohmann::json& data);
// "1:02:03", "4:05", "--:--" when unknown.
std::string FormatEta(double seconds);

}  // namespace corfs::cli
