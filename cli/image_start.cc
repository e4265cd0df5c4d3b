#include "cli/image_start.h"

#include <algorithm>
#include <optional>

#include "control/block_commands.h"

namespace corfs::cli {

namespace {

// The stream an image starts with at mount, if any. A whole-image stream
// that was running when the last mount ended (its wish is in the overlay's
// header) resumes, with the speed and on-error policy it had, whatever
// `stream.auto` says: the user started it and did not end it. Else
// `stream.auto` starts the YAML's stream. When both apply and the YAML's is
// a whole-image stream too, the YAML's settings win (they may have been
// changed since), and the job is still reported as resumed. A boot profile
// to replay (MountedImage::profile_cursor) starts the stream as `stream.auto`
// does, and every stream started here copies the profile's ranges first.
Status StartStreamAtMount(const mount::MountedImage& image, jobs::JobManager& jobs) {
  const config::ImageConfig& config = image.config;
  if (config.read_only) return Status::Ok();  // nothing may be written; a wish waits
  overlay::Overlay& overlay = *image.overlay;
  const overlay::OverlayHeader header = overlay.header();
  if (header.standalone) {
    // A stream that ended between dropping the chain and clearing its wish.
    return header.stream_wish ? overlay.SetStreamWish(std::nullopt) : Status::Ok();
  }
  jobs::StreamOptions options = config.stream.JobDefaults();
  options.profile = image.profile_cursor;
  const bool auto_start = config.stream.auto_start || image.profile_cursor != nullptr;
  const bool auto_whole_image = auto_start && !options.base;
  if (header.stream_wish && !auto_whole_image) {
    options.base.reset();
    // The YAML's chunk size follows its cluster size, which need not be the
    // one this overlay was made with.
    options.chunk_size = std::max(options.chunk_size, overlay.cluster_size());
    options.speed = header.stream_wish->speed;
    if (!jobs::ParseOnError(header.stream_wish->on_error, &options.on_error)) options.on_error = jobs::OnError::kReport;
  } else if (!auto_start) {
    return Status::Ok();
  }
  options.resumed = header.stream_wish.has_value();
  jobs::StartedStream stream;
  Status started = jobs.StartStream(overlay, config.name, options, &stream);
  if (started.ok()) return started;
  return started.WithContext("image '" + config.name +
                             "': " + (options.resumed ? "resuming its stream" : "auto stream"));
}

}  // namespace

Status StartImageJobs(const mount::MountedImage& image, jobs::JobManager& jobs, EventBus& events) {
  const uint64_t threshold = image.config.write_threshold.Bytes(image.overlay->size());
  if (threshold != 0) control::ArmWriteThreshold(image, threshold, events);
  return StartStreamAtMount(image, jobs);
}

}  // namespace corfs::cli
