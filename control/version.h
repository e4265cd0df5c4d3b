#pragma once
// The version corfs reports on its control socket.

#include <nlohmann/json.hpp>

namespace corfs::control {

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionMicro = 0;

inline nlohmann::json VersionJson() {
  return {{"corfs", {{"major", kVersionMajor}, {"minor", kVersionMinor}, {"micro", kVersionMicro}}},
          {"package", "corfs " + std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) + "." +
                          std::to_string(kVersionMicro)}};
}

// The greeting a client gets on connecting, QMP style.
inline nlohmann::json Greeting() {
  return {{"QMP", {{"version", VersionJson()}, {"capabilities", nlohmann::json::array()}}}};
}

}  // namespace corfs::control
