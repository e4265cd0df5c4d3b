#pragma once
// BootProfileWriter: writes the boot profile an image records
// (overlay/boot_profile_recorder.h) once the guest has read nothing new for
// `idle` (its boot is over, most likely), or when the image closes, whichever
// comes first; then recording stops. The write is atomic (SaveBootProfile).
// A guest that read nothing leaves no profile.
//
// Threading: one thread of its own looks at the recorder a few times a
// second; the destructor (the image closing) stops it and writes what is
// recorded if nothing was written yet. A failed write is logged (spdlog's
// default logger, as for the FUSE callbacks) and not tried again: the next
// mount records again.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "overlay/boot_profile_recorder.h"

namespace corfs::mount {

class BootProfileWriter {
 public:
  // `image` names the image in the log.
  BootProfileWriter(std::string path, std::chrono::milliseconds idle,
                    std::shared_ptr<overlay::BootProfileRecorder> recorder, std::string image);
  ~BootProfileWriter();
  BootProfileWriter(const BootProfileWriter&) = delete;
  BootProfileWriter& operator=(const BootProfileWriter&) = delete;

 private:
  void Loop();
  // Stops recording and writes the profile, once.
  void WriteOnce();

  const std::string path_;
  const std::chrono::milliseconds idle_;
  const std::shared_ptr<overlay::BootProfileRecorder> recorder_;
  const std::string image_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  bool written_ = false;   // guarded by mutex_
  std::thread thread_;     // last: started once the rest is set
};

}  // namespace corfs::mount
