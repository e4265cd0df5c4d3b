#pragma once
// PlanStream: what a stream job (stream_driver.h) has to do with the next run
// of the disk, decided from the overlay's allocation and what the images
// above the stream's base hold.
//
// Reads the overlay's bitmap and asks its chain; callable from any thread.

#include <cstddef>
#include <cstdint>

#include "common/status.h"
#include "overlay/overlay.h"

namespace corfs::jobs {

enum class StreamWork {
  kLocal,      // the overlay holds it already
  kCopy,       // an image of the chain holds data: copy it
  kZero,       // it reads as zeros: record that, no reading needed
  kBelowBase,  // only the base or images below it hold it: leave it there
};

struct StreamRun {
  StreamWork work = StreamWork::kLocal;
  uint64_t length = 0;
};

// What a stream down to layer `end_layer` of the chain (the base; the
// chain's depth for a whole-image stream) has to do with the run at
// `offset` (at most `length` bytes), and how long that run is.
Status PlanStream(overlay::Overlay& overlay, uint64_t offset, uint64_t length, size_t end_layer, StreamRun* out);

}  // namespace corfs::jobs
