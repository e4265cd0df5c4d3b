#include "jobs/stream_plan.h"

#include <string>

namespace corfs::jobs {

Status PlanStream(overlay::Overlay& overlay, uint64_t offset, uint64_t length, size_t end_layer, StreamRun* out) {
  if (offset > overlay.size() || length > overlay.size() - offset) {
    return Status::Invalid("stream of " + std::to_string(length) + " bytes at " + std::to_string(offset) +
                           " is past the end of the disk (" + std::to_string(overlay.size()) + ")");
  }
  if (length == 0) return Status::Invalid("stream plan of an empty range");
  bool local = false;
  uint64_t run = 0;
  CORFS_RETURN_IF_ERROR(overlay.GetLocalRun(offset, length, &local, &run));
  if (local) {
    *out = {StreamWork::kLocal, run};
    return Status::Ok();
  }
  overlay::UpperLayersStatus upper;
  CORFS_RETURN_IF_ERROR(overlay.GetUpperLayersStatus(offset, run, end_layer, &upper));
  const uint64_t length_out = upper.status.length;
  if (upper.hides_lower_bytes) {
    // The disk reads zeros here only because an image above the base ends
    // first; once the base is the backing image its bytes would show, so
    // the zeros go into the overlay.
    *out = {StreamWork::kZero, length_out};
    return Status::Ok();
  }
  switch (upper.status.allocation) {
    case overlay::Allocation::kData: *out = {StreamWork::kCopy, length_out}; break;
    case overlay::Allocation::kZero: *out = {StreamWork::kZero, length_out}; break;
    case overlay::Allocation::kUnallocated:
      // Above a base, what no upper image holds stays with the base; in a
      // whole-image stream it is zeros to record.
      *out = {upper.has_lower_layers ? StreamWork::kBelowBase : StreamWork::kZero, length_out};
      break;
  }
  return Status::Ok();
}

}  // namespace corfs::jobs
