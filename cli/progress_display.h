#pragma once
// How the CLI shows a job's progress: on a terminal, a bar redrawn in place
// with percent, bytes, rate and ETA; otherwise one plain line per update
// that a script can split on spaces and '='.

#include <nlohmann/json.hpp>
#include <string>

namespace corfs::cli {

// `job` is one entry of query-block-jobs.
std::string ProgressBar(const nlohmann::json& job, int width);
std::string ProgressLine(const nlohmann::json& job);
// "1:02:03", "4:05", "--:--" when unknown.
std::string FormatEta(double seconds);

}  // namespace corfs::cli
